#!/usr/bin/python3
"""bench/quality_research.py -- fast research harness for issue 9.

Same DTE split as bench/quality (first round(0.5 * n_normal) normals in
file order train, the rest and every anomaly test; standardized on the
training rows).  Each *component* (kNN, Gaussian, prototype energies, the
C model's energies) is computed once per set and seed and cached in
bench/results/research/<set>.npz together with its energies on a held-out
split of the training normals, so combinations cost nothing.

  bench/quality_research.py compute [--sets a,b] [--seeds 1,2,3] [--ebmd build]
  bench/quality_research.py table RECIPE... [--halves]

A recipe is a component name or a combination "a+b" (tempered product:
each member divided by a robust spread of its held-out energies) or
"rank:a+b" (mean of reference ranks).  The two fixed halves of the 23
sets used for cross-validation over data sets are HALF_A / HALF_B below.

Only training rows choose anything: bandwidths, spreads and ranks come
from held-out training normals; test labels only enter the AUROC.
"""
import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import NearestNeighbors

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.environ.get("ADBENCH", "/work/shared/data/adbench")
CACHE = os.path.join(HERE, "results", "research")

SETS13 = ["vowels", "letter", "cardio", "musk", "thyroid", "satimage-2", "satellite",
          "pendigits", "annthyroid", "mnist", "mammography", "magic_gamma", "shuttle"]
SETS23 = SETS13 + ["yeast", "fault", "cardiotocography", "waveform", "spambase", "wilt",
                   "optdigits", "pageblocks", "landsat", "campaign"]
# The two fixed halves of bench/quality (sorted by rows, dealt A B B A ...).
HALF_A = ["vowels", "cardio", "fault", "waveform", "thyroid", "optdigits",
          "pageblocks", "landsat", "pendigits", "mammography", "magic_gamma"]
HALF_B = ["yeast", "letter", "cardiotocography", "musk", "spambase", "wilt",
          "satimage-2", "satellite", "annthyroid", "mnist", "campaign", "shuttle"]


def halves():
    return HALF_A, HALF_B


def load(name):
    path = os.path.join(DATA, name + ".csv")
    with open(path) as f:
        header = f.readline().strip().split(",")
    a = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
    return header, a[:, :-1], a[:, -1].astype(int)


def split(y):
    normal = np.flatnonzero(y == 0)
    n_train = round(0.5 * len(normal))
    train = normal[:n_train]
    mask = np.ones(len(y), bool)
    mask[train] = False
    return train, np.flatnonzero(mask)


# ---------------------------------------------------------------- components

def sqdist(a, b):
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.maximum(d, 0)


def lse_energy(z, c, logw, h):
    """E(z) = -log sum_j w_j exp(-||z - c_j||^2 / (2 h^2)) (h scalar or per proto)."""
    out = np.empty(len(z))
    for i in range(0, len(z), 2048):
        d2 = sqdist(z[i:i + 2048], c)
        a = logw[None, :] - d2 / (2 * np.square(h))[None, :] if np.ndim(h) else logw[None, :] - d2 / (2 * h * h)
        if np.ndim(h):
            a = a - z.shape[1] * np.log(h)[None, :]
        m = a.max(1)
        out[i:i + 2048] = -(m + np.log(np.exp(a - m[:, None]).sum(1)))
    return out


def kmeans(z, k, rng, iters=20):
    n = len(z)
    if n <= k:
        return z.copy(), np.ones(n)
    # k-means++ seeding on a subsample-free basis
    c = np.empty((k, z.shape[1]))
    c[0] = z[rng.integers(n)]
    d = ((z - c[0]) ** 2).sum(1)
    for j in range(1, k):
        p = d / d.sum()
        c[j] = z[rng.choice(n, p=p)]
        d = np.minimum(d, ((z - c[j]) ** 2).sum(1))
    for _ in range(iters):
        lab = np.concatenate([sqdist(z[i:i + 4096], c).argmin(1) for i in range(0, n, 4096)])
        cnt = np.bincount(lab, minlength=k).astype(float)
        s = np.zeros_like(c)
        np.add.at(s, lab, z)
        nz = cnt > 0
        c[nz] = s[nz] / cnt[nz, None]
    lab = np.concatenate([sqdist(z[i:i + 4096], c).argmin(1) for i in range(0, n, 4096)])
    cnt = np.bincount(lab, minlength=k).astype(float)
    keep = cnt > 0
    return c[keep], cnt[keep]


def proto_fit(zfit, zval, K, rng, mode="kmeans", grid=None):
    """Prototypes from zfit, bandwidth by held-out log-likelihood on zval."""
    if mode == "subset" and len(zfit) > K:
        c, w = zfit[rng.choice(len(zfit), K, replace=False)], np.ones(K)
    else:
        c, w = kmeans(zfit, K, rng)
    logw = np.log(w / w.sum())
    d = zfit.shape[1]
    # grid relative to the median nearest-prototype distance of held-out rows
    dn = np.sqrt(np.concatenate([sqdist(zval[i:i + 2048], c).min(1) for i in range(0, len(zval), 2048)]))
    base = max(np.median(dn), 1e-3)
    grid = base * np.exp(np.linspace(np.log(0.05), np.log(4), 25)) if grid is None else grid
    best, bh = -np.inf, grid[0]
    lls = []
    for h in grid:
        ll = np.mean(-lse_energy(zval, c, logw, h)) - d * np.log(h)
        lls.append(ll)
        if ll > best:
            best, bh = ll, h
    return c, logw, bh, base


def gauss_fit(z, shrink=0.1):
    mu = z.mean(0)
    cov = np.cov(z, rowvar=False) if z.shape[1] > 1 else np.var(z)[None, None]
    cov = (1 - shrink) * np.atleast_2d(cov) + shrink * np.eye(z.shape[1])
    P = np.linalg.inv(cov)
    return lambda q: 0.5 * np.einsum("ij,jk,ik->i", q - mu, P, q - mu)


def quantile_gauss(xtr):
    """Rank Gaussianization per feature, fitted on training rows (interp)."""
    from scipy.stats import norm
    qs = np.linspace(0, 1, 201)
    knots = np.quantile(xtr, qs, axis=0)
    g = norm.ppf(np.clip(qs, 0.5 / len(xtr), 1 - 0.5 / len(xtr)))

    def f(x):
        out = np.empty_like(x)
        for j in range(x.shape[1]):
            k = knots[:, j]
            if k[-1] - k[0] < 1e-12:
                out[:, j] = 0
                continue
            # unique knots to keep interp monotone on ties
            ku, idx = np.unique(k, return_index=True)
            gu = np.array([g[k == v].mean() for v in ku])
            lo, hi = ku[0], ku[-1]
            v = np.interp(x[:, j], ku, gu)
            # linear tails in the standardized scale beyond the range
            sd = xtr[:, j].std() + 1e-12
            v = np.where(x[:, j] < lo, gu[0] + (x[:, j] - lo) / sd, v)
            v = np.where(x[:, j] > hi, gu[-1] + (x[:, j] - hi) / sd, v)
            out[:, j] = v
        return out
    return f


def ebmd_energies(trainer, header, xtr, xte, seed, extra=()):
    """Energies of the C model on test rows and on its own reference rows."""
    with tempfile.TemporaryDirectory() as tmp:
        def wcsv(p, x):
            with open(p, "w") as f:
                f.write(",".join(header[:-1]) + "\n")
                for r in x:
                    f.write(",".join("%.9g" % v for v in r) + "\n")
        wcsv(os.path.join(tmp, "train.csv"), xtr)
        wcsv(os.path.join(tmp, "test.csv"), xte)
        m = os.path.join(tmp, "m.ebm")
        t0 = time.perf_counter()
        subprocess.run([trainer, "train", "--data", os.path.join(tmp, "train.csv"), "--out", m,
                        "--seed", str(seed), "--threads", "1", "--quiet"] + list(extra), check=True)
        t = time.perf_counter() - t0
        out = subprocess.run([trainer, "score", "--model", m, "--data", os.path.join(tmp, "test.csv")],
                             check=True, capture_output=True, text=True).stdout
        e = np.array([float(l.split(",")[0]) for l in out.splitlines()[1:]])
        out = subprocess.run([trainer, "score", "--model", m, "--data", os.path.join(tmp, "train.csv")],
                             check=True, capture_output=True, text=True).stdout
        etr = np.array([float(l.split(",")[0]) for l in out.splitlines()[1:]])
    return e, etr, t


def compute(name, seeds, trainer=None, only=None, ebmd_extra=None):
    os.makedirs(CACHE, exist_ok=True)
    # the C model's runs go to their own file so both can run at once
    path = os.path.join(CACHE, name + ("_ebmd" if trainer else "") + ".npz")
    store = dict(np.load(path)) if os.path.exists(path) else {}
    header, x, y = load(name)
    tr, te = split(y)
    xtr, xte = x[tr], x[te]
    store["y"] = y[te]
    mu, sd = xtr.mean(0), xtr.std(0)
    sd[sd < 1e-12] = 1.0
    ztr, zte = (xtr - mu) / sd, (xte - mu) / sd

    def want(k):
        return (only is None or any(k.startswith(o) for o in only)) and k not in store

    if want("knn"):
        nn = NearestNeighbors(n_neighbors=5).fit(ztr)
        store["knn"] = nn.kneighbors(zte)[0][:, -1]
    for seed in seeds:
        if trainer:
            if want("ebmd_s%d" % seed):
                e, etr, t = ebmd_energies(trainer, header, xtr, xte, seed, ebmd_extra or ())
                sfx = "_s%d" % seed
                store["ebmd" + sfx], store["ebmd" + sfx + "_train"], store["ebmd" + sfx + "_t"] = e, etr, np.array([t])
                print("%s ebmd seed %d %.1fs auc %.4f" % (name, seed, t, roc_auc_score(y[te], e)), file=sys.stderr)
                np.savez(path, **store)
            continue
        rng = np.random.default_rng(seed)
        perm = rng.permutation(len(ztr))
        n_ref = max(50, min(5000, int(0.1 * len(ztr))))
        n_val = max(1, int(0.1 * len(ztr)))
        ref, val, fit = perm[:n_ref], perm[n_ref:n_ref + n_val], perm[n_ref + n_val:]
        sfx = "_s%d" % seed
        t0 = time.perf_counter()
        if want("gauss" + sfx):
            g = gauss_fit(ztr[np.concatenate([fit, val])])
            store["gauss" + sfx], store["gauss" + sfx + "_ref"] = g(zte), g(ztr[ref])
        if want("knnref" + sfx):
            nn = NearestNeighbors(n_neighbors=5).fit(ztr[np.concatenate([fit, val])])
            store["knnref" + sfx] = nn.kneighbors(zte)[0][:, -1]
            store["knnref" + sfx + "_ref"] = nn.kneighbors(ztr[ref])[0][:, -1]
        for K in (512, 2048):
            for mode in ("kmeans", "subset"):
                key = "proto%s%d%s" % ("" if mode == "kmeans" else "sub", K, sfx)
                if want(key):
                    t0 = time.perf_counter()
                    c, logw, h, base = proto_fit(ztr[fit], ztr[val], K, np.random.default_rng(seed), mode)
                    store[key] = lse_energy(zte, c, logw, h)
                    store[key + "_ref"] = lse_energy(ztr[ref], c, logw, h)
                    store[key + "_h"] = np.array([h, base, len(c), time.perf_counter() - t0])
                    print("%s %s h=%.3g (base %.3g) %d protos %.1fs" % (name, key, h, base, len(c),
                          time.perf_counter() - t0), file=sys.stderr)
        if want("qproto2048" + sfx) or want("qgauss" + sfx):
            qg = quantile_gauss(xtr[np.concatenate([fit, val])])
            qtr, qte = qg(xtr), qg(xte)
            qmu, qsd = qtr[np.concatenate([fit, val])].mean(0), qtr[np.concatenate([fit, val])].std(0)
            qsd[qsd < 1e-12] = 1
            qtr, qte = (qtr - qmu) / qsd, (qte - qmu) / qsd
            if want("qgauss" + sfx):
                g = gauss_fit(qtr[np.concatenate([fit, val])])
                store["qgauss" + sfx], store["qgauss" + sfx + "_ref"] = g(qte), g(qtr[ref])
            if want("qproto2048" + sfx):
                c, logw, h, base = proto_fit(qtr[fit], qtr[val], 2048, np.random.default_rng(seed))
                store["qproto2048" + sfx] = lse_energy(qte, c, logw, h)
                store["qproto2048" + sfx + "_ref"] = lse_energy(qtr[ref], c, logw, h)
    np.savez(path, **store)
    return store


# ---------------------------------------------------------------- recipes

def robust_spread(e):
    q = np.quantile(e, [0.25, 0.75])
    s = q[1] - q[0]
    return s if s > 1e-12 else (e.std() + 1e-12)


def member(store, comp, seed):
    """(test energies, reference energies) of one component for a seed."""
    if comp == "knn":
        return store["knn"], None
    key = comp + "_s%d" % seed
    if comp == "ebmd":
        # the C model's reference rows are not exported; use its energies on
        # every training row (slightly optimistic spread, rank only)
        return store[key], store[key + "_train"]
    return store[key], store[key + "_ref"]


def recipe_scores(store, recipe, seed):
    rank = recipe.startswith("rank:")
    parts = recipe[5:].split("+") if rank else recipe.split("+")
    total = 0
    for p in parts:
        wt = 1.0
        if "*" in p:
            w, p = p.split("*")
            wt = float(w)
        e, r = member(store, p, seed)
        if len(parts) == 1:
            return e
        if rank:
            rs = np.sort(r)
            total = total + wt * np.searchsorted(rs, e) / len(rs)
        else:
            total = total + wt * e / robust_spread(r)
    return total


def table(recipes, seeds, sets=SETS23, show=True):
    res = {}
    for name in sets:
        path = os.path.join(CACHE, name + ".npz")
        if not os.path.exists(path):
            continue
        st = dict(np.load(path))
        for extra in ("_ebmd", "_v", "_v2", "_k4", "_w1", "_w5"):
            pe = os.path.join(CACHE, name + extra + ".npz")
            if os.path.exists(pe):
                st.update(np.load(pe))
        for rc in recipes:
            try:
                aucs = [roc_auc_score(st["y"], recipe_scores(st, rc, s)) for s in seeds]
            except KeyError:
                continue
            res[(name, rc)] = aucs
    return res


def summarize(res, recipes, seeds, per_set=False):
    A, B = halves()
    names = [s for s in SETS23 if all((s, r) in res for r in recipes)]
    if per_set:
        print("%-17s" % "set" + "".join("%12s" % r[:12] for r in recipes))
        for s in names:
            print("%-17s" % s + "".join("%12.4f" % np.mean(res[(s, r)]) for r in recipes))
    print("%-40s %7s %7s %7s %7s %7s %8s %8s" % ("recipe", "n", "mean23", "mean13", "halfA", "halfB",
                                                  "seed-sd", "min-knn"))
    for r in recipes:
        m = {s: np.mean(res[(s, r)]) for s in names}
        ps = [np.mean([res[(s, r)][i] for s in names]) for i in range(len(seeds))]
        worst = min(names, key=lambda s: m[s] - np.mean(res[(s, "knn")])) if all((s, "knn") in res for s in names) else None
        print("%-40s %7d %7.4f %7.4f %7.4f %7.4f %7.4f %8s" % (
            r, len(names), np.mean(list(m.values())),
            np.mean([m[s] for s in names if s in SETS13]) if any(s in SETS13 for s in names) else np.nan,
            np.mean([m[s] for s in names if s in A]), np.mean([m[s] for s in names if s in B]),
            np.std(ps), "%s%+.3f" % (worst[:6], m[worst] - np.mean(res[(worst, "knn")])) if worst else ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd")
    ap.add_argument("recipes", nargs="*")
    ap.add_argument("--sets", default="")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--ebmd", default="")
    ap.add_argument("--only", default="")
    ap.add_argument("--per-set", action="store_true")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    sets = a.sets.split(",") if a.sets else SETS23
    if a.cmd == "compute":
        trainer = os.path.join(ROOT, a.ebmd, "src", "tool", "ebmd-train") if a.ebmd else None
        for s in sets:
            compute(s, seeds, trainer, a.only.split(",") if a.only else None)
    elif a.cmd == "table":
        recipes = ["knn"] + [r for r in a.recipes if r != "knn"]
        res = table(recipes, seeds, sets)
        summarize(res, recipes, seeds, a.per_set)
    elif a.cmd == "cv":
        # cross-validation over data sets: the recipe best on one half is
        # reported on the other
        recipes = [r for r in a.recipes if r != "knn"]
        res = table(["knn"] + recipes, seeds, sets)
        A, B = halves()
        names = [s for s in SETS23 if all((s, r) in res for r in ["knn"] + recipes)]
        m = lambda r, ss: np.mean([np.mean(res[(s, r)]) for s in names if s in ss])
        ca = max(recipes, key=lambda r: m(r, A))
        cb = max(recipes, key=lambda r: m(r, B))
        oof = {s: np.mean(res[(s, cb if s in A else ca)]) for s in names}
        inf = {s: np.mean(res[(s, ca if s in A else cb)]) for s in names}
        knn = {s: np.mean(res[(s, "knn")]) for s in names}
        print("%d sets; chosen on A: %s (A %.4f, B %.4f); chosen on B: %s (B %.4f, A %.4f)" % (
            len(names), ca, m(ca, A), m(ca, B), cb, m(cb, B), m(cb, A)))
        worst = min(names, key=lambda s: oof[s] - knn[s])
        print("in-fold %.4f, out-of-fold %.4f, kNN %.4f (OOF %+.4f; worst %s %+.3f)" % (
            np.mean(list(inf.values())), np.mean(list(oof.values())), np.mean(list(knn.values())),
            np.mean(list(oof.values())) - np.mean(list(knn.values())), worst, oof[worst] - knn[worst]))
    elif a.cmd == "halves":
        A, B = halves()
        print("A:", ",".join(A))
        print("B:", ",".join(B))


if __name__ == "__main__":
    main()
