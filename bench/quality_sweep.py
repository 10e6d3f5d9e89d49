#!/usr/bin/python3
"""bench/quality_sweep.py -- try ebmd-train option sets on the 13 big ADBench sets.

(The older driver: bench/quality --config NAME=ARGS --reuse now does this on
the 23 sets, with the cross-validation over data sets; this one stays for
the cached results in sweep.jsonl.)

Exploration helper for bench/quality (same DTE split, same scoring through
`ebmd-train score`), with a cache so that a config x dataset x seed runs once:

  bench/quality_sweep.py NAME -- [ebmd-train train options...]
  bench/quality_sweep.py --table NAME[,NAME...]     (print cached results)

Results go to bench/results/sweep.jsonl (one line per run: config name, its
arguments, dataset, seed, AUROC, AUPRC, training seconds). kNN (k=5) and
IsolationForest on the same split are cached in bench/results/sweep_base.json.
The printed summary per config: mean AUROC over the 13 sets (each set the
mean over seeds), the mean of the per-seed 13-set means' spread, the worst gap
to IsolationForest, and the mean training seconds per set and seed.
"""
import argparse
import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
import time

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
loader = importlib.machinery.SourceFileLoader("quality", os.path.join(HERE, "quality"))
spec = importlib.util.spec_from_loader("quality", loader)
Q = importlib.util.module_from_spec(spec)
loader.exec_module(Q)

BIG = ["vowels", "letter", "cardio", "musk", "thyroid", "satimage-2", "satellite",
       "pendigits", "annthyroid", "mnist", "mammography", "magic_gamma", "shuttle"]
DATA = Q.find_data_dir("")  # --data-dir, $EBMD_ADBENCH or ../shared next to the checkout
CACHE = "/tmp/ebmd-sweep-data"
RES = os.path.join(HERE, "results", "sweep.jsonl")
BASE = os.path.join(HERE, "results", "sweep_base.json")


def prepare(name):
    d = os.path.join(CACHE, name)
    header, x, y = Q.load(os.path.join(DATA, name + ".csv"))
    tr, te = Q.split(y)
    if not os.path.exists(os.path.join(d, "test.csv")):
        os.makedirs(d, exist_ok=True)
        Q.write_csv(os.path.join(d, "train.csv"), header, x[tr])
        Q.write_csv(os.path.join(d, "test.csv.tmp"), header, x[te])
        os.rename(os.path.join(d, "test.csv.tmp"), os.path.join(d, "test.csv"))
    return d, x, y, tr, te


def baselines():
    if os.path.exists(BASE):
        return json.load(open(BASE))
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import NearestNeighbors
    out = {}
    for name in BIG:
        _, x, y, tr, te = prepare(name)
        mu, sd = x[tr].mean(0), x[tr].std(0)
        sd[sd < 1e-12] = 1.0
        ztr, zte = (x[tr] - mu) / sd, (x[te] - mu) / sd
        knn = NearestNeighbors(n_neighbors=5).fit(ztr).kneighbors(zte)[0][:, -1]
        ifo = -IsolationForest(random_state=1).fit(ztr).score_samples(zte)
        out[name] = {"kNN": roc_auc_score(y[te], knn), "IForest": roc_auc_score(y[te], ifo)}
    json.dump(out, open(BASE, "w"), indent=1)
    return out


def done():
    got = {}
    if os.path.exists(RES):
        for line in open(RES):
            r = json.loads(line)
            got[(r["config"], r["dataset"], r["seed"])] = r
    return got


def run(trainer, name, args, seeds, datasets):
    got = done()
    for ds in datasets:
        d, x, y, tr, te = prepare(ds)
        for s in seeds:
            if (name, ds, s) in got:
                continue
            model = os.path.join("/tmp", "ebmd-sweep-%d.ebm" % os.getpid())
            t0 = time.perf_counter()
            subprocess.run([trainer, "train", "--data", os.path.join(d, "train.csv"),
                            "--out", model, "--seed", str(s), "--threads", "1",
                            "--quiet"] + args, check=True)
            t = time.perf_counter() - t0
            out = subprocess.run([trainer, "score", "--model", model, "--data",
                                  os.path.join(d, "test.csv")], check=True,
                                 capture_output=True, text=True).stdout
            os.unlink(model)
            e = np.array([float(l.split(",")[0]) for l in out.splitlines()[1:]])
            r = {"config": name, "args": args, "dataset": ds, "seed": s,
                 "auroc": roc_auc_score(y[te], e), "auprc": average_precision_score(y[te], e),
                 "train_s": t}
            with open(RES, "a") as f:
                f.write(json.dumps(r) + "\n")
            print("%-14s %-12s seed %d  AUROC %.4f  %.1fs" % (name, ds, s, r["auroc"], t),
                  file=sys.stderr, flush=True)


def table(names, seeds, per_set):
    got = done()
    base = baselines()
    knn = np.mean([base[d]["kNN"] for d in BIG])
    print("kNN mean %.4f, IForest mean %.4f" % (knn, np.mean([base[d]["IForest"] for d in BIG])))
    for name in names:
        rs = [r for (c, _, _), r in got.items() if c == name and (not seeds or r["seed"] in seeds)]
        if not rs:
            continue
        sd = sorted({r["seed"] for r in rs})
        full = [s for s in sd if all((name, d, s) in got for d in BIG)]
        per = {d: np.mean([r["auroc"] for r in rs if r["dataset"] == d]) for d in BIG
               if any(r["dataset"] == d for r in rs)}
        gaps = {d: per[d] - base[d]["IForest"] for d in per}
        worst = min(gaps, key=gaps.get)
        seedmeans = [np.mean([got[(name, d, s)]["auroc"] for d in BIG]) for s in full]
        tt = np.mean([r["train_s"] for r in rs])
        tmax = max(np.mean([r["train_s"] for r in rs if r["dataset"] == d]) for d in per)
        print("%-22s sets %2d seeds %-7s mean %.4f  (per-seed %s)  worst vs IF %s %+.3f  "
              "train %.1fs/set (max %.1f)  args %s" % (
                  name, len(per), ",".join(map(str, sd)), np.mean(list(per.values())),
                  "/".join("%.4f" % m for m in seedmeans), worst, gaps[worst], tt, tmax,
                  " ".join(rs[0]["args"])))
        if per_set:
            print("    " + "  ".join("%s %.3f(%+.3f)" % (d[:6], per[d], per[d] - base[d]["kNN"])
                                     for d in per))


def main():
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser()
    ap.add_argument("name", nargs="?")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--datasets", default=",".join(BIG))
    ap.add_argument("--table", default="")
    ap.add_argument("--per-set", action="store_true")
    a = ap.parse_args(argv)
    seeds = [int(s) for s in a.seeds.split(",")]
    if a.table:
        names = a.table.split(",")
        if a.table == "all":
            names = list(dict.fromkeys(c for c, _, _ in done()))
        table(names, None, a.per_set)
        return
    baselines()
    run(os.path.join(a.build, "src", "tool", "ebmd-train"), a.name, extra, seeds,
        a.datasets.split(","))
    table([a.name], None, True)


if __name__ == "__main__":
    main()
