#!/usr/bin/python3
"""bench/weigh_research.py -- the screen behind --proto-net-weight auto (issue 9).

Which label-free criterion, computed from training rows only, would choose
the weight lambda of the network next to the prototypes per data set?

  bench/weigh_research.py compute [--seeds 1,2] [--jobs 2] [--build build]
  bench/weigh_research.py table [--seeds 1,2] [--grid 0,0.25,0.5,1,2,4]

compute: on bench/quality's split, 10% of the training rows are held out
(seeded); the prototypes alone (P, --proto-net-weight 0) and the cd network
alone (C, --protos 0) are trained on the rest; both score the test rows,
the held-out rows and perturbed copies of them:
  sw8, sw4, sw2  three copies each, 1/8, 1/4, 1/2 of the features (at least
                 one) swapped in from random training rows;
  noise0.5/1.0   Gaussian noise of norm about 0.5 / 1.0;
  shift3         one random feature moved by 3 standard deviations.
Energies go to bench/results/weigh/<set>.<seed>.npz (not in git).

table: E_lambda = E_P / s_P + lambda E_C / s_C (s = IQR on the held-out
rows). For each fixed lambda, each criterion (the lambda of the grid with
the best mean AUROC of held-out rows against the named perturbations), and
the per-set oracle: the means on the halves, the 23 and the 13; then the
criteria and fixed weights cross-validated over the halves (chosen on one,
reported on the other).
"""
import argparse
import importlib.machinery
import importlib.util
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.metrics import roc_auc_score

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(HERE, "results", "weigh")
_spec = importlib.util.spec_from_loader(
    "quality", importlib.machinery.SourceFileLoader("quality", os.path.join(HERE, "quality")))
q = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(q)

PERTS = ["sw8", "sw4", "sw2", "noise0.5", "noise1.0", "shift3"]


def perturb(xh, xf, rng):
    d = xh.shape[1]
    sd = xf.std(0)
    sd[sd < 1e-12] = 1
    out = {}
    for f in (8, 4, 2):
        k = max(1, int(round(d / f)))
        x = np.concatenate([xh] * 3)
        for i in range(len(x)):
            j = rng.choice(d, k, replace=False)
            x[i, j] = xf[rng.integers(len(xf), size=k), j]
        out["sw%d" % f] = x
    for s in (0.5, 1.0):
        out["noise%.1f" % s] = xh + rng.normal(0, 1, xh.shape) * sd * s / np.sqrt(d)
    x = xh.copy()
    j = rng.integers(d, size=len(xh))
    x[np.arange(len(xh)), j] += 3 * sd[j] * rng.choice([-1, 1], len(xh))
    out["shift3"] = x
    return out


def score(trainer, model, path):
    text = subprocess.run([trainer, "score", "--model", model, "--data", path], check=True,
                          capture_output=True, text=True).stdout
    return np.array([float(l.split(",")[0]) for l in text.splitlines()[1:]])


def compute_one(trainer, data, ds, seed):
    path = os.path.join(OUT, "%s.%d.npz" % (ds, seed))
    if os.path.exists(path):
        return
    header, x, y = q.load(os.path.join(data, ds + ".csv"))
    tr, te = q.split(y)
    rng = np.random.default_rng(1000 + seed)
    perm = rng.permutation(tr)
    nh = max(20, int(round(0.1 * len(tr))))
    hold, fit = perm[:nh], perm[nh:]
    files = {"test": x[te], "hold": x[hold]}
    files.update(perturb(x[hold], x[fit], rng))
    res = {"y": y[te]}
    with tempfile.TemporaryDirectory() as tmp:
        q.write_csv(os.path.join(tmp, "train.csv"), header, x[fit])
        for k, v in files.items():
            q.write_csv(os.path.join(tmp, k + ".csv"), header, v)
        for name, args in (("P", ["--proto-net-weight", "0"]), ("C", ["--protos", "0"])):
            m = os.path.join(tmp, name + ".ebm")
            subprocess.run([trainer, "train", "--data", os.path.join(tmp, "train.csv"), "--out", m,
                            "--seed", str(seed), "--threads", "1", "--quiet"] + args, check=True)
            for k in files:
                res[name + "_" + k] = score(trainer, m, os.path.join(tmp, k + ".csv"))
    np.savez(path, **res)
    print("computed", ds, seed, flush=True)


def iqr(v):
    s = np.subtract(*np.percentile(v, [75, 25]))
    return s if s > 0 else (v.std() or 1.0)


def energy(r, part, lam):
    return r["P_" + part] / iqr(r["P_hold"]) + lam * r["C_" + part] / iqr(r["C_hold"])


def self_auroc(r, lam, pert):
    h, p = energy(r, "hold", lam), energy(r, pert, lam)
    return roc_auc_score(np.r_[np.zeros(len(h)), np.ones(len(p))], np.r_[h, p])


def table(seeds, grid):
    runs = {(ds, s): dict(np.load(os.path.join(OUT, "%s.%d.npz" % (ds, s))))
            for ds in q.BROAD for s in seeds}
    test = {k: [roc_auc_score(r["y"], energy(r, "test", l)) for l in grid] for k, r in runs.items()}
    crit = {k: {p: [self_auroc(r, l, p) for l in grid] for p in PERTS} for k, r in runs.items()}
    picks = {"fixed %g" % l: {k: i for k in runs} for i, l in enumerate(grid)}
    picks["oracle (test labels)"] = {k: int(np.argmax(test[k])) for k in runs}
    named = {p: [p] for p in PERTS}
    named.update({"sw8+noise0.5": ["sw8", "noise0.5"], "sw8+sw4+sw2": ["sw8", "sw4", "sw2"],
                  "all": PERTS})
    for c, ps in named.items():
        picks["self " + c] = {k: int(np.argmax(np.mean([crit[k][p] for p in ps], 0))) for k in runs}

    def half(pick, sets):
        return np.mean([test[ds, s][pick[ds, s]] for ds in sets for s in seeds])

    print("| rule | half A | half B | 23 | 13 |\n|---|---|---|---|---|")
    for n, pick in picks.items():
        print("| %s | %.4f | %.4f | %.4f | %.4f |" % (n, half(pick, q.HALF_A), half(pick, q.HALF_B),
                                                   half(pick, q.BROAD), half(pick, q.BIG13)))
    cands = {n: p for n, p in picks.items() if not n.startswith("oracle")}
    ha = {n: half(p, q.HALF_A) for n, p in cands.items()}
    hb = {n: half(p, q.HALF_B) for n, p in cands.items()}
    ca, cb = max(ha, key=ha.get), max(hb, key=hb.get)
    oof = (len(q.HALF_A) * ha[cb] + len(q.HALF_B) * hb[ca]) / len(q.BROAD)
    print("\nchosen on A: %s (B %.4f); chosen on B: %s (A %.4f); out of fold %.4f; fixed 1: %.4f"
          % (ca, hb[ca], cb, ha[cb], oof, half(picks["fixed 1"], q.BROAD)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["compute", "table"])
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--data-dir", default="")
    ap.add_argument("--grid", default="0,0.25,0.5,1,2,4")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    if a.what == "compute":
        os.makedirs(OUT, exist_ok=True)
        trainer = q.need_trainer(a.build)
        data = q.find_data_dir(a.data_dir)
        sets = sorted(q.BROAD, key=lambda d: -os.path.getsize(os.path.join(data, d + ".csv")))
        with ThreadPoolExecutor(a.jobs) as ex:
            list(ex.map(lambda w: compute_one(trainer, data, *w), [(d, s) for s in seeds for d in sets]))
    else:
        table(seeds, [float(v) for v in a.grid.split(",")])


if __name__ == "__main__":
    sys.exit(main())
