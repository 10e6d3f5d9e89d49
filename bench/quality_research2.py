#!/usr/bin/python3
"""Prototype-energy variants on the cached split (issue 9 research, part 2).

For each set and seed: k-means centres (random rows, 10 Lloyd passes, as
src/train/proto.c), the held-out-likelihood bandwidth on the C grid
(0.02..8 x median nearest-centre distance, 31 values), then variants:
  kde_f<F>    bandwidth F x the likelihood choice
  vkde_a<A>   per-centre bandwidth h_j = h (r_j / median r)^A, r_j the
              distance of centre j to its 5th nearest centre, h by
              likelihood again
Writes <set>_v.npz next to the cache of quality_research.py.
"""
import os, sys, time
import numpy as np
import scipy.sparse as sp
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import importlib.util
spec = importlib.util.spec_from_file_location("qr", os.path.join(os.path.dirname(os.path.abspath(__file__)), "quality_research.py"))
qr = importlib.util.module_from_spec(spec); spec.loader.exec_module(qr)

GRID = np.exp(np.linspace(np.log(0.02), np.log(8.0), 31))
FS = tuple(float(v) for v in os.environ.get("QR_FS", "1.0").split(","))  # 0.35 .. 1.4 measured on the 13: flat (+-0.0003)
AS = tuple(float(v) for v in os.environ.get("QR_AS", "0.5,1.0").split(","))
SFX = os.environ.get("QR_SFX", "_v")
KMAX = int(os.environ.get("QR_K", "2048"))


def kmeans(z, k, rng, iters=10):
    n = len(z)
    if n <= k:
        return z.copy(), np.ones(n)
    c = z[rng.permutation(n)[:k]].copy()
    for it in range(iters + 1):
        lab = np.concatenate([( (c * c).sum(1)[None, :] - 2 * z[i:i + 4096] @ c.T).argmin(1) for i in range(0, n, 4096)])
        cnt = np.bincount(lab, minlength=k).astype(float)
        if it == iters:
            break
        M = sp.csr_matrix((np.ones(n), (lab, np.arange(n))), shape=(k, n))
        s = M @ z
        nz = cnt > 0
        c[nz] = s[nz] / cnt[nz, None]
    keep = cnt > 0
    return c[keep], cnt[keep]


def lse(D, logw, h):
    """rows of squared distances D -> -log sum w exp(-D/2h^2) (+ d log h per centre if h is a vector)."""
    a = logw[None, :] - D / (2 * np.square(h))[None, :] if np.ndim(h) else logw[None, :] - D / (2 * h * h)
    m = a.max(1)
    return m + np.log(np.exp(a - m[:, None]).sum(1))


def pick_h(Dv, logw, d, base, hvec=None):
    best, bh = -np.inf, None
    for g in GRID:
        h = base * g
        if hvec is None:
            ll = lse(Dv, logw, h).mean() - d * np.log(h)
        else:
            hh = h * hvec
            ll = lse(Dv, logw - d * np.log(hh), hh).mean()
        if ll > best:
            best, bh = ll, h
    return bh


def run(name, seeds):
    out = os.path.join(qr.CACHE, name + SFX + ".npz")
    store = dict(np.load(out)) if os.path.exists(out) else {}
    header, x, y = qr.load(name)
    tr, te = qr.split(y)
    xtr, xte = x[tr], x[te]
    mu, sd = xtr.mean(0), xtr.std(0)
    sd[sd < 1e-12] = 1.0
    ztr, zte = (xtr - mu) / sd, (xte - mu) / sd
    d = ztr.shape[1]
    z0tr, z0te = ztr, zte
    for seed in seeds:
        ztr, zte = z0tr, z0te
        if "kde_h_s%d" % seed in store:
            continue
        t0 = time.perf_counter()
        rng = np.random.default_rng(seed)
        perm = rng.permutation(len(ztr))
        n_ref = max(50, min(5000, int(0.1 * len(ztr))))
        n_val = max(1, int(0.1 * len(ztr)))
        ref, val, fit = perm[:n_ref], perm[n_ref:n_ref + n_val], perm[n_ref + n_val:]
        WH = os.environ.get("QR_WHITEN")
        if WH:
            # Mahalanobis metric: z -> z L, L L' = ((1-s) Cov + s I)^-1
            sh = float(WH)
            cov = np.cov(ztr[np.concatenate([fit, val])], rowvar=False)
            L = np.linalg.cholesky(np.linalg.inv((1 - sh) * cov + sh * np.eye(d)))
            ztr, zte = ztr @ L, zte @ L
        c, w = kmeans(ztr[fit], KMAX, rng)
        logw = np.log(w / w.sum())
        Dv = qr.sqdist(ztr[val][:2000], c)
        base = max(np.median(np.sqrt(Dv.min(1))), 1e-3)
        h = pick_h(Dv, logw, d, base)
        Dt = np.concatenate([qr.sqdist(zte[i:i + 2048], c) for i in range(0, len(zte), 2048)]).astype(np.float32)
        Dr = qr.sqdist(ztr[ref], c)
        for f in FS:
            k = ("kde_f%.2g_s%d" % (f, seed) if f != 1.0 else "kde_f1.0_s%d" % seed) if SFX == "_v" else "kde%s_s%d" % (SFX, seed)
            store[k] = -lse(Dt, logw, f * h)
            store[k + "_ref"] = -lse(Dr, logw, f * h)
        Dc = qr.sqdist(c, c)
        np.fill_diagonal(Dc, np.inf)
        r = np.sqrt(np.sort(Dc, 1)[:, min(4, len(c) - 2)])
        r = np.maximum(r / np.median(r), 1e-3)
        for a in AS:
            hv = r ** a
            hh = pick_h(Dv, logw, d, base, hv) * hv
            lw = logw - d * np.log(hh)
            k = "vkde_a%.2g%s_s%d" % (a, "" if SFX == "_v" else SFX, seed)
            store[k] = -lse(Dt, lw, hh)
            store[k + "_ref"] = -lse(Dr, lw, hh)
        store["kde_h_s%d" % seed] = np.array([h, base, len(c), time.perf_counter() - t0])
        print("%s seed %d h %.3g base %.3g (%d centres) %.1fs" % (name, seed, h, base, len(c), time.perf_counter() - t0), file=sys.stderr, flush=True)
    np.savez(out, **store)


if __name__ == "__main__":
    sets = sys.argv[1].split(",") if len(sys.argv) > 1 and sys.argv[1] else qr.SETS23
    seeds = [int(s) for s in (sys.argv[2] if len(sys.argv) > 2 else "1,2,3").split(",")]
    for s in sets:
        run(s, seeds)
