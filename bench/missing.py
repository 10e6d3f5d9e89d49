#!/usr/bin/python3
"""bench/missing.py -- missing values: calibration and AUROC with holes.

For each ADBench set (../shared/data/adbench), the one-class split of
bench/quality (train on the first half of the normal rows in file order,
test on the other normal rows and every anomaly), ebmd-train's DEFAULT
trainer (only --seed), then `ebmd-train score` on the test rows with k
features missing (empty cells), k = 0..3:

  - missing sets: for each k, SETS fixed sets of k distinct features drawn
    at random (seeded), the test rows assigned to them round-robin, so
    every set is profiled over the reference rows once;
  - calibration: share of the held-out NORMAL test rows with
    p_value < alpha for alpha = 0.01, 0.05, 0.1 (nominal: alpha);
  - AUROC over all test rows: at k = 0 ranked by energy (as `eval`), with
    holes ranked by p_value, ties by score (as `eval` does with holes).

Writes a Markdown table to OUT (default bench/results/missing.md) and
prints it. Needs numpy and scikit-learn (Debian's, /usr/bin/python3) and
a built ebmd-train.

  nice -n 10 bench/missing.py --build build --sets thyroid,cardio,...
"""
import argparse
import math
import os
import random
import subprocess
import sys
import tempfile
import time

import numpy as np
from sklearn.metrics import roc_auc_score

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ALPHAS = (0.01, 0.05, 0.1)


def read(path):
    with open(path) as f:
        header = f.readline().strip().split(",")
        rows = [l.strip().split(",") for l in f if l.strip()]
    return header, rows


def write(path, header, rows):
    with open(path, "w") as f:
        f.write(",".join(header) + "\n")
        for r in rows:
            f.write(",".join(r) + "\n")


def score(trainer, model, path):
    out = subprocess.run([trainer, "score", "--model", model, "--data", path],
                         check=True, capture_output=True, text=True).stdout
    e, s, p = [], [], []
    for line in out.splitlines()[1:]:
        c = line.split(",")
        e.append(float(c[0]))
        s.append(float(c[1]))
        p.append(float(c[2]))
    return np.array(e), np.array(s), np.array(p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared",
                                                   "data", "adbench"))
    ap.add_argument("--sets", default="thyroid,cardio,satellite,mammography,"
                    "pendigits")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--missing-sets", type=int, default=4, dest="n_sets")
    ap.add_argument("--out", default=os.path.join(HERE, "results",
                                                  "missing.md"))
    a = ap.parse_args()
    trainer = os.path.join(a.build, "src", "tool", "ebmd-train")
    lines = ["| dataset | d | n_ref | k missing | p<0.01 | p<0.05 | p<0.1 "
             "| AUROC | AUROC k=0 | score s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.sets.split(","):
            header, rows = read(os.path.join(a.data, name + ".csv"))
            assert header[-1] == "label"
            normal = [i for i, r in enumerate(rows) if float(r[-1]) == 0]
            n_train = round(0.5 * len(normal))
            train = set(normal[:n_train])
            test = [r for i, r in enumerate(rows) if i not in train]
            write(os.path.join(tmp, "train.csv"), header,
                  [rows[i] for i in sorted(train)])
            model = os.path.join(tmp, "m.ebm")
            subprocess.run([trainer, "train", "--data",
                            os.path.join(tmp, "train.csv"), "--out", model,
                            "--seed", str(a.seed), "--threads", "1",
                            "--quiet"], check=True)
            info = subprocess.run([trainer, "inspect", model], check=True,
                                  capture_output=True, text=True).stdout
            import json
            n_ref = json.loads(info)["reference_size"]
            d = len(header) - 1
            y = np.array([int(float(r[-1])) for r in test])
            rng = random.Random(a.seed)
            auroc0 = None
            for k in range(4):
                sets = [sorted(rng.sample(range(d), k))
                        for _ in range(a.n_sets)] if k else [[]]
                holed = []
                for i, r in enumerate(test):
                    r = list(r)
                    for j in sets[i % len(sets)]:
                        r[j] = ""
                    holed.append(r)
                path = os.path.join(tmp, "test%d.csv" % k)
                write(path, header, holed)
                t0 = time.perf_counter()
                e, s, p = score(trainer, model, path)
                dt = time.perf_counter() - t0
                pn = p[y == 0]
                shares = [float(np.mean(pn < al)) for al in ALPHAS]
                if k == 0:
                    key = e
                else:
                    key = 1 - p + np.arctan(s) / math.pi * 0.9 / (n_ref + 1)
                auc = roc_auc_score(y, key)
                if k == 0:
                    auroc0 = auc
                lines.append("| %s | %d | %d | %d | %.3f | %.3f | %.3f | %.3f "
                             "| %.3f | %.1f |" % (name, d, n_ref, k, *shares,
                                                  auc, auroc0, dt))
                print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if a.out:
        with open(a.out, "w") as f:
            f.write("# Missing values: calibration and AUROC with holes\n\n")
            f.write("`bench/missing.py %s` (ebmd-train's default trainer, "
                    "seed %d, %d fixed missing sets per k, rows assigned "
                    "round-robin; shares are of the held-out normal test "
                    "rows)\n\n" % (" ".join(sys.argv[1:]), a.seed, a.n_sets))
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
