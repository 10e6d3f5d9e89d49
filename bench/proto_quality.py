#!/usr/bin/python3
"""proto_quality.py -- quality prototype of the ebmd energy model (PyTorch).

Evaluates the model the C trainer implements on the 13 ADBench sets with at
least 1000 rows, one-class "DTE semi-supervised" split (first
round(0.5 * n_normal) normal rows in file order train; the other normals and
all anomalies test), AUROC with the energy as the score:

  z = (x - mean) / max(std, 1e-6)          (fit on the fitting rows)
  f(z) = -0.5 z'Pz + (1/K) sum_k m_k(z),   P = inv((1-s) Cov(z) + s I) fixed
  m_k: SiLU MLP, scalar linear output (optionally zero-initialised last layer,
       so training starts at the Gaussian).   Energy E = -f.
  DSM: sigma ~ U{geometric ladder sigma_min..sigma_max, n_sigmas} per row,
       loss_i = 0.5 || sigma grad_z f(z + sigma eps) + eps ||^2, Adam, clip 10.

10% of the training rows (seeded shuffle) are held out for early stopping on
the held-out DSM loss with fixed noise draws; both the raw weights and an
EMA of the weights are tracked, and every member is kept at its final and
its best-validation state, so one run gives several variants:

  last      raw weights after the last step
  ema_last  EMA weights after the last step
  best      raw weights at the best validation loss (early stopping)
  ema_best  EMA weights at the best validation loss of the EMA weights
each for ensembles of 1..K members (average of f). Baselines on the same
split: "gauss" (base term alone, same shrinkage, i.e. shrunk Mahalanobis)
and "knn" (distance to the 5th nearest training row, sklearn
StandardScaler, PyOD's KNN default -- reproduces DTE's Table 1).

No subsampling: training is bounded by optimizer steps (steps=), not epochs,
so the big sets (shuttle: 22.8k training rows) cost the same as the small
ones; mean/std/Cov/P are always fit on all fitting rows.

Results are appended to bench/results/proto_quality.jsonl (one line per
config x dataset) and bench/results/proto_quality.md is regenerated from
all lines there.

  /usr/bin/python3 bench/proto_quality.py --configs base,h64,h128
  /usr/bin/python3 bench/proto_quality.py --configs 'mine:hidden=64-64,steps=500'
  /usr/bin/python3 bench/proto_quality.py --list        # presets
  /usr/bin/python3 bench/proto_quality.py --report      # only rewrite the .md

Config keys (preset values overridden by key=value, '-' separates widths):
  hidden=256-256  n_sigmas=8  sigma_min=0.05  sigma_max=1.0  steps=2000
  batch=256  lr=1e-3  sched=const|cos  warmup=0.0  wd=0  ema=0.999
  members=3  shrink=0.1  zero_init=1  val_frac=0.1  eval_every=50
  std_floor=floor|unit (unit: std < 1e-6 -> 1, like sklearn)  seed=0
  val_reps=4 (noise draws per validation row)  act=silu|softplus
  patience=0 (eval rounds without improvement before stopping; 0 = never)
"""
import argparse
import copy
import json
import math
import os
import sys
import time

os.environ["OPENBLAS_NUM_THREADS"] = "1"   # one single-threaded worker/core
os.environ["OMP_NUM_THREADS"] = "1"


def _tune_malloc():
    # see torch_peer.py: stops glibc returning freed activation buffers to
    # the kernel after every step (halves step time)
    import ctypes
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 30)   # M_MMAP_THRESHOLD
        libc.mallopt(-1, 1 << 30)   # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass


_tune_malloc()

import numpy as np                       # noqa: E402
import torch                             # noqa: E402
from sklearn.metrics import roc_auc_score   # noqa: E402
from sklearn.neighbors import NearestNeighbors   # noqa: E402
from sklearn.preprocessing import StandardScaler   # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DATA_DIR = "/work/shared/data/adbench"
RESULTS = os.path.join(HERE, "results")
JSONL = os.path.join(RESULTS, "proto_quality.jsonl")
MD = os.path.join(RESULTS, "proto_quality.md")

DATASETS = ["vowels", "letter", "cardio", "musk", "thyroid", "satimage-2",
            "satellite", "pendigits", "annthyroid", "mnist", "mammography",
            "magic_gamma", "shuttle"]
# DTE Table 1 (semi-supervised), KNN column, for reference in the report
KNN_PUBLISHED = {"vowels": 82.21, "letter": 35.43, "cardio": 92.0,
                 "musk": 100.0, "thyroid": 98.68, "satimage-2": 99.71,
                 "satellite": 82.24, "pendigits": 99.87, "annthyroid": 92.81,
                 "mnist": 93.85, "mammography": 87.58, "magic_gamma": 83.27,
                 "shuttle": 99.91}

DEFAULTS = dict(hidden="256-256", n_sigmas=8, sigma_min=0.05, sigma_max=1.0,
                steps=2000, batch=256, lr=1e-3, sched="const", warmup=0.0,
                wd=0.0, ema=0.999, members=3, shrink=0.1, zero_init=1,
                val_frac=0.1, eval_every=50, std_floor="floor", seed=0,
                val_reps=4, act="silu", patience=0, clip=10.0)

# Presets: each is DEFAULTS updated with these keys.
PRESETS = {
    "base": {},
    "h64": {"hidden": "64-64"},
    "h128": {"hidden": "128-128"},
    "h512": {"hidden": "512-512"},
    "h256x3": {"hidden": "256-256-256"},
    "sig1_0.1": {"n_sigmas": 1, "sigma_min": 0.1, "sigma_max": 0.1},
    "sig1_0.3": {"n_sigmas": 1, "sigma_min": 0.3, "sigma_max": 0.3},
    "sig1_0.5": {"n_sigmas": 1, "sigma_min": 0.5, "sigma_max": 0.5},
    "sig1_1.0": {"n_sigmas": 1, "sigma_min": 1.0, "sigma_max": 1.0},
    "sig8_0.01": {"sigma_min": 0.01},
    "sig8_0.1_2": {"sigma_min": 0.1, "sigma_max": 2.0},
    "sig4_0.2_1": {"n_sigmas": 4, "sigma_min": 0.2, "sigma_max": 1.0},
    "steps500": {"steps": 500},
    "steps1000": {"steps": 1000},
    "steps4000": {"steps": 4000},
    "steps8000": {"steps": 8000},
    "nozero": {"zero_init": 0},
    "shrink0.01": {"shrink": 0.01},
    "shrink0.3": {"shrink": 0.3},
    "shrink0.001": {"shrink": 0.001},
    "cos": {"sched": "cos", "warmup": 0.05},
    "lr3e-4": {"lr": 3e-4},
    "lr3e-3": {"lr": 3e-3},
    "ema0.99": {"ema": 0.99},
    "m5": {"members": 5},
    "unitstd": {"std_floor": "unit"},
    "b128": {"batch": 128},
    "b512": {"batch": 512},
    "wd1e-4": {"wd": 1e-4},
    "softplus": {"act": "softplus"},
}


# ---------------------------------------------------------------- config

def parse_config(spec):
    """'name' (preset), 'name:k=v,k=v' (preset or new name + overrides) or
    'k=v,...' (anonymous). Returns (name, cfg dict)."""
    name, _, over = spec.partition(":")
    if "=" in name and not over:
        name, over = spec.replace(",", "_"), spec
    cfg = dict(DEFAULTS)
    cfg.update(PRESETS.get(name, {}))
    if not over and name not in PRESETS:
        raise SystemExit("unknown preset %r (try --list)" % name)
    for kv in filter(None, over.split(",")):
        k, _, v = kv.partition("=")
        if k not in DEFAULTS:
            raise SystemExit("unknown config key %r" % k)
        t = type(DEFAULTS[k])
        cfg[k] = t(float(v)) if t is int else t(v)
    return name, cfg


# ---------------------------------------------------------------- data

def load_split(name):
    a = np.loadtxt(os.path.join(DATA_DIR, name + ".csv"), delimiter=",",
                   skiprows=1, dtype=np.float64, ndmin=2)
    x, y = a[:, :-1], a[:, -1].astype(int)
    normal = np.flatnonzero(y == 0)
    n_tr = round(0.5 * len(normal))          # Python round: halves to even
    tr_idx = normal[:n_tr]
    te_mask = np.ones(len(y), bool)
    te_mask[tr_idx] = False
    return x[tr_idx], x[te_mask], y[te_mask]


def baselines(xtr, xte, yte):
    sc = StandardScaler().fit(xtr)
    ztr, zte = sc.transform(xtr), sc.transform(xte)
    nn = NearestNeighbors(n_neighbors=5).fit(ztr)
    dist, _ = nn.kneighbors(zte)
    return {"knn": roc_auc_score(yte, dist[:, -1])}


class Standardizer:
    def __init__(self, x, shrink, floor):
        self.mean = x.mean(0)
        sd = x.std(0)
        if floor == "unit":
            sd = np.where(sd < 1e-6, 1.0, sd)
        self.std = np.maximum(sd, 1e-6)
        z = self(x)
        d = x.shape[1]
        cov = np.cov(z, rowvar=False, bias=True).reshape(d, d)
        prec = np.linalg.inv((1 - shrink) * cov + shrink * np.eye(d))
        self.P = 0.5 * (prec + prec.T)

    def __call__(self, x):
        return (x - self.mean) / self.std


# ---------------------------------------------------------------- model

class MLP(torch.nn.Module):
    """m(z): act hidden layers, scalar linear output. grad() gives grad_z m
    as an explicit torch expression (differentiable w.r.t. the params)."""

    def __init__(self, d, hidden, act, zero_init):
        super().__init__()
        dims = [d] + hidden
        self.lins = torch.nn.ModuleList(
            torch.nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.out = torch.nn.Linear(dims[-1], 1)
        if zero_init:
            torch.nn.init.zeros_(self.out.weight)
            torch.nn.init.zeros_(self.out.bias)
        self.act = act

    def _act(self, a):
        s = torch.sigmoid(a)
        if self.act == "silu":
            return a * s, s * (1 + a * (1 - s))
        return torch.nn.functional.softplus(a), s

    def forward(self, z):
        h = z
        for lin in self.lins:
            h, _ = self._act(lin(h))
        return self.out(h)[:, 0]

    def grad(self, z):
        h, ds = z, []
        for lin in self.lins:
            h, da = self._act(lin(h))
            ds.append(da)
        g = self.out.weight
        for lin, da in zip(reversed(self.lins), reversed(ds)):
            g = (g * da) @ lin.weight
        return g


def dsm_loss(net, P, z, sig, eps):
    """Mean over rows of 0.5 || sigma grad_z f(z + sigma eps) + eps ||^2."""
    zn = z + sig * eps
    g = net.grad(zn) - zn @ P
    return 0.5 * (sig * g + eps).pow(2).sum(1).mean()


def train_member(cfg, ztr, zval, P, seed, deadline=None):
    d = ztr.shape[1]
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    hidden = [int(h) for h in cfg["hidden"].split("-")]
    net = MLP(d, hidden, cfg["act"], cfg["zero_init"])
    ema = copy.deepcopy(net)
    for p in ema.parameters():
        p.requires_grad_(False)
    params = list(net.parameters())
    opt = torch.optim.AdamW(params, lr=cfg["lr"], betas=(0.9, 0.999),
                            weight_decay=cfg["wd"]) if cfg["wd"] > 0 else \
        torch.optim.Adam(params, lr=cfg["lr"], betas=(0.9, 0.999))
    steps, B = cfg["steps"], cfg["batch"]
    warm = int(cfg["warmup"] * steps)

    def lr_at(t):
        if t < warm:
            return cfg["lr"] * (t + 1) / warm
        if cfg["sched"] == "cos":
            u = (t - warm) / max(1, steps - warm)
            return cfg["lr"] * 0.5 * (1 + math.cos(math.pi * u))
        return cfg["lr"]

    if cfg["n_sigmas"] > 1:
        ladder = np.geomspace(cfg["sigma_min"], cfg["sigma_max"],
                              cfg["n_sigmas"])
    else:
        ladder = np.array([cfg["sigma_min"]])
    ladder_t = torch.tensor(ladder, dtype=torch.float32)
    Pt = torch.from_numpy(P.astype(np.float32))
    Z = torch.from_numpy(ztr.astype(np.float32))
    n = len(Z)

    # fixed validation noise: val_reps draws per row, sigmas cycling the ladder
    vr = max(1, min(cfg["val_reps"], 4096 // max(1, len(zval))))
    vg = np.random.default_rng(12345)
    Zv = torch.from_numpy(np.repeat(zval, vr, 0).astype(np.float32))
    sv = torch.from_numpy(ladder[np.arange(len(Zv)) % len(ladder)]
                          .astype(np.float32))[:, None]
    ev = torch.from_numpy(vg.standard_normal(Zv.shape).astype(np.float32))

    def val_loss(model):
        with torch.no_grad():
            tot = 0.0
            for i in range(0, len(Zv), 4096):
                j = slice(i, i + 4096)
                tot += float(dsm_loss(model, Pt, Zv[j], sv[j], ev[j])) \
                    * len(Zv[j])
            return tot / len(Zv)

    best = {"raw": (val_loss(net), 0, copy.deepcopy(net.state_dict())),
            "ema": (val_loss(ema), 0, copy.deepcopy(ema.state_dict()))}
    hist = []
    perm, pos = rng.permutation(n), 0
    decay = cfg["ema"]
    since = 0
    t = 0
    for t in range(1, steps + 1):
        if pos + B > n:
            perm, pos = rng.permutation(n), 0
        idx = perm[pos:pos + B] if B <= n else rng.integers(0, n, B)
        pos += B
        zb = Z[torch.from_numpy(idx)]
        m = len(zb)
        sig = ladder_t[torch.from_numpy(rng.integers(0, len(ladder), m))][:, None]
        eps = torch.from_numpy(rng.standard_normal((m, d)).astype(np.float32))
        for gparam in opt.param_groups:
            gparam["lr"] = lr_at(t - 1)
        loss = dsm_loss(net, Pt, zb, sig, eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg["clip"] > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg["clip"])
        opt.step()
        if decay > 0:
            # bias-corrected warm start: average over min(decay, (1+t)/(10+t))
            dt = min(decay, (1 + t) / (10 + t))
            with torch.no_grad():
                for pe, pr in zip(ema.parameters(), net.parameters()):
                    pe.mul_(dt).add_(pr, alpha=1 - dt)
        else:
            ema.load_state_dict(net.state_dict())
        if t % cfg["eval_every"] == 0 or t == steps:
            vl = {"raw": val_loss(net), "ema": val_loss(ema)}
            hist.append((t, float(loss), vl["raw"], vl["ema"]))
            improved = False
            for k, model in (("raw", net), ("ema", ema)):
                if vl[k] < best[k][0]:
                    best[k] = (vl[k], t, copy.deepcopy(model.state_dict()))
                    improved = improved or k == "ema"
            since = 0 if improved else since + 1
            if cfg["patience"] and since >= cfg["patience"]:
                break
            if deadline and time.time() > deadline:
                break
    out = {}
    for k, model in (("last", net), ("ema_last", ema)):
        out[k] = copy.deepcopy(model).eval()
    for k, src in (("best", "raw"), ("ema_best", "ema")):
        mdl = MLP(d, hidden, cfg["act"], 0)
        mdl.load_state_dict(best[src][2])
        out[k] = mdl.eval()
    info = {"steps_run": t, "best_step": best["raw"][1],
            "ema_best_step": best["ema"][1],
            "val_best": best["raw"][0], "ema_val_best": best["ema"][0],
            "hist": hist[-3:]}
    return out, info


def energies(model, P, z):
    Pt = torch.from_numpy(P.astype(np.float32))
    Z = torch.from_numpy(z.astype(np.float32))
    with torch.no_grad():
        m = model(Z).double().numpy()
    base = -0.5 * np.einsum("ij,jk,ik->i", z, P, z)
    del Pt
    return base, m


def auroc(y, score):
    score = np.nan_to_num(score, nan=np.inf, posinf=1e300, neginf=-1e300)
    return float(roc_auc_score(y, score))


# ---------------------------------------------------------------- runner

def run_one(args):
    name, cname, cfg = args
    torch.set_num_threads(1)
    t0 = time.time()
    xtr, xte, yte = load_split(name)
    res = {"dataset": name, "config": cname, "cfg": cfg,
           "n_train": len(xtr), "d": xtr.shape[1]}
    res.update(baselines(xtr, xte, yte))
    rng = np.random.default_rng(cfg["seed"] + 777)
    perm = rng.permutation(len(xtr))
    n_val = max(1, int(round(cfg["val_frac"] * len(xtr))))
    val, fit = xtr[perm[:n_val]], xtr[perm[n_val:]]
    st = Standardizer(fit, cfg["shrink"], cfg["std_floor"])
    zfit, zval, zte = st(fit), st(val), st(xte)
    base_te, _ = None, None
    base_te = -0.5 * np.einsum("ij,jk,ik->i", zte, st.P, zte)
    res["gauss"] = auroc(yte, -base_te)
    ms = {k: [] for k in ("last", "ema_last", "best", "ema_best")}
    infos = []
    t_train = 0.0
    for k in range(cfg["members"]):
        t1 = time.time()
        models, info = train_member(cfg, zfit, zval, st.P,
                                    seed=cfg["seed"] * 1000 + k)
        t_train += time.time() - t1
        infos.append(info)
        for v, mdl in models.items():
            _, m = energies(mdl, st.P, zte)
            ms[v].append(m)
    res["variants"] = {}
    for v, lst in ms.items():
        for K in sorted({1, min(3, len(lst)), len(lst)}):
            f = base_te + np.mean(lst[:K], 0)
            res["variants"]["%s/%d" % (v, K)] = auroc(yte, -f)
    res["members_info"] = infos
    res["train_s"] = t_train
    res["total_s"] = time.time() - t0
    return res


def run(configs, datasets, jobs):
    import multiprocessing as mp
    tasks = []
    # biggest first for load balance
    size = {d: i for i, d in enumerate(DATASETS)}
    for cname, cfg in configs:
        for name in sorted(datasets, key=lambda d: -size.get(d, 0)):
            tasks.append((name, cname, cfg))
    os.makedirs(RESULTS, exist_ok=True)
    ctx = mp.get_context("fork")
    with ctx.Pool(jobs, maxtasksperchild=4) as pool, open(JSONL, "a") as fh:
        for res in pool.imap_unordered(run_one, tasks):
            fh.write(json.dumps(res) + "\n")
            fh.flush()
            v = res["variants"]
            M = res["cfg"]["members"]
            print("%-10s %-12s knn %.4f gauss %.4f | last/1 %.4f ema_best/1 "
                  "%.4f ema_best/%d %.4f | %.1fs" % (
                      res["config"], res["dataset"], res["knn"], res["gauss"],
                      v["last/1"], v["ema_best/1"], M,
                      v["ema_best/%d" % M], res["train_s"]), flush=True)


# ---------------------------------------------------------------- report

def load_results():
    rows = {}
    if not os.path.exists(JSONL):
        return rows
    with open(JSONL) as fh:
        for line in fh:
            r = json.loads(line)
            rows[(r["config"], r["dataset"])] = r   # latest wins
    return rows


def report(primary="ema_best"):
    rows = load_results()
    configs = []
    for (c, _) in rows:
        if c not in configs:
            configs.append(c)
    out = ["# proto_quality: ebmd energy model (PyTorch prototype), "
           "one-class split, AUROC", "",
           "Generated by `bench/proto_quality.py` from `proto_quality.jsonl` "
           "(rerun: `/usr/bin/python3 bench/proto_quality.py --configs "
           "NAME[,NAME...]`, `--report` rewrites this file). 13 ADBench sets "
           "with >= 1000 rows, DTE semi-supervised split (first half of the "
           "normals in file order train, the rest + all anomalies test). "
           "10% of training rows held out for early stopping; mean/std/Cov "
           "fit on the other 90%. No subsampling (training is bounded by "
           "optimizer steps). Each training process is single-threaded, two "
           "run side by side on the 2 cores; times are per dataset, summed "
           "over members, and noisy (other jobs share the machine).", "",
           "Variants: `last` raw weights at the end; `ema_last` EMA weights "
           "at the end; `best` / `ema_best` raw / EMA weights at their best "
           "held-out DSM loss; `/K` = ensemble of the first K members "
           "(average of f).", ""]
    full = [c for c in configs
            if all((c, d) in rows for d in DATASETS)]
    if not full:
        out.append("(no complete config yet)")
    if full:
        r0 = rows[(full[0], DATASETS[0])]
        knn = np.mean([rows[(full[0], d)]["knn"] for d in DATASETS])
        out += ["Baselines (mean over 13): kNN k=5 %.4f (DTE Table 1: %.4f)."
                % (knn, np.mean(list(KNN_PUBLISHED.values())) / 100), ""]
        del r0
        out += ["## Summary per configuration", "",
                "Columns: mean AUROC over 13 sets and thyroid AUROC for the "
                "main variants; gauss = base term alone with the config's "
                "shrinkage; time = mean training seconds per dataset (all "
                "members).", "",
                "| config | changes vs base | gauss mean | last/1 | ema_last/1 "
                "| best/1 | ema_best/1 | ema_best/K | K | thyroid ema_best/1 "
                "| thyroid ema_best/K | best of all (variant) | train s/set |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for c in full:
            rs = [rows[(c, d)] for d in DATASETS]
            cfg = rs[0]["cfg"]
            K = cfg["members"]
            diff = ",".join("%s=%s" % (k, v) for k, v in cfg.items()
                            if DEFAULTS.get(k) != v) or "-"
            mean = lambda key: np.mean([r["variants"][key] for r in rs])
            allv = {k: mean(k) for k in rs[0]["variants"]}
            bestv = max(allv, key=allv.get)
            thy = rows[(c, "thyroid")]["variants"]
            out.append("| %s | %s | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f "
                       "| %d | %.4f | %.4f | %.4f (%s) | %.0f |" % (
                           c, diff, np.mean([r["gauss"] for r in rs]),
                           allv["last/1"], allv["ema_last/1"], allv["best/1"],
                           allv["ema_best/1"], allv["ema_best/%d" % K], K,
                           thy["ema_best/1"], thy["ema_best/%d" % K],
                           allv[bestv], bestv,
                           np.mean([r["train_s"] for r in rs])))
        out += ["", "## Per dataset", "",
                "Each config's `ema_best/K` (full ensemble, EMA, early "
                "stopping); baselines first.", ""]
        hdr = "| dataset | n_train | d | kNN | kNN (DTE) | gauss(s=0.1) | " + \
            " | ".join(full) + " |"
        out += [hdr, "|" + "---|" * (6 + len(full))]
        for d in DATASETS:
            r = rows[(full[0], d)]
            g = next((rows[(c, d)]["gauss"] for c in full
                      if rows[(c, d)]["cfg"]["shrink"] == 0.1 and
                      rows[(c, d)]["cfg"]["std_floor"] == "floor"),
                     float("nan"))
            cells = ["%.4f" % rows[(c, d)]["variants"][
                "ema_best/%d" % rows[(c, d)]["cfg"]["members"]] for c in full]
            out.append("| %s | %d | %d | %.4f | %.4f | %.4f | %s |" % (
                d, r["n_train"], r["d"], r["knn"], KNN_PUBLISHED[d] / 100,
                g, " | ".join(cells)))
        means = ["%.4f" % np.mean([rows[(c, d)]["variants"][
            "ema_best/%d" % rows[(c, d)]["cfg"]["members"]] for d in DATASETS])
            for c in full]
        out.append("| **mean** | | | %.4f | %.4f | | %s |" % (
            knn, np.mean(list(KNN_PUBLISHED.values())) / 100,
            " | ".join(means)))
        out += ["", "## Early stopping (where the best held-out loss fell)",
                "", "Mean over datasets and members of the step with the "
                "best EMA validation loss / steps run.", "",
                "| config | ema_best_step | best_step (raw) | steps run |",
                "|---|---|---|---|"]
        for c in full:
            infos = [i for d in DATASETS for i in rows[(c, d)]["members_info"]]
            out.append("| %s | %.0f | %.0f | %.0f |" % (
                c, np.mean([i["ema_best_step"] for i in infos]),
                np.mean([i["best_step"] for i in infos]),
                np.mean([i["steps_run"] for i in infos])))
    partial = [c for c in configs if c not in full]
    if partial:
        out += ["", "Incomplete configs (not all 13 sets run): " +
                ", ".join(partial)]
    notes = os.path.join(RESULTS, "proto_quality_notes.md")
    if os.path.exists(notes):
        out += ["", open(notes).read().rstrip()]
    with open(MD, "w") as fh:
        fh.write("\n".join(out) + "\n")
    print("wrote", MD)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default="base",
                    help="comma-free list separated by ';' or presets "
                    "separated by ','")
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--report", action="store_true")
    args = ap.parse_args()
    if args.list:
        print("defaults:", json.dumps(DEFAULTS))
        for k, v in PRESETS.items():
            print("%-12s %s" % (k, json.dumps(v)))
        return
    if args.report:
        report()
        return
    specs = args.configs.split(";") if ";" in args.configs or \
        "=" in args.configs else args.configs.split(",")
    configs = [parse_config(s.strip()) for s in specs if s.strip()]
    run(configs, args.datasets.split(","), args.jobs)
    report()


if __name__ == "__main__":
    main()
