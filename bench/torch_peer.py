#!/usr/bin/python3
"""torch_peer.py -- training-throughput peer for ebmd's DSM and CD trainers.

Trains exactly the ebmd energy model in PyTorch and reports training rows/s:

  z = (x - mean) / max(std, 1e-6)          (fit on all rows, no holdout)
  f(z) = -0.5 z'Pz + MLP(z),  P = inv((1-s) Cov(z) + s I), s = 0.1, fixed
  MLP: SiLU hidden layers, scalar linear output.  E = -f.
  DSM: per row sigma ~ U{geometric ladder sigma_min..sigma_max, n_sigmas},
       eps ~ N(0,I), loss_i = 0.5 || sigma grad_z f(z + sigma eps) + eps ||^2,
       mean over the batch, parameter gradient by double backprop.
  CD (--objective cd), as src/train/train.c: chains from a persistent replay
       buffer (10000 rows, started uniform over the data's box widened by 1
       on each side), 5% of each batch's chains restarted from that uniform
       noise, 20 Langevin steps z' = z + 0.05 clip(grad_z f, 5) + 0.3 xi
       clamped to the box, written back to the buffer; loss = mean m(samples)
       - mean m(data) + 0.01 (mean m(data)^2 + mean m(samples)^2), m the MLP.
       The chains' input gradients need no parameter graph: "manual" uses
       the explicit expression under no_grad, "autograd" autograd.grad.
  Adam(lr 1e-3, betas 0.9/0.999), gradient-norm clip 10, shuffled every epoch,
  the last partial batch is kept.

Prints one JSON line: rows, epochs, seconds (training loop alone: no imports,
no CSV parsing, no standardisation), rows_per_s = rows * epochs / seconds.

Run with /usr/bin/python3 (Debian python3-torch 1.13 on the system OpenBLAS).
OPENBLAS_NUM_THREADS is set before torch is imported (--openblas-threads=N,
default 2 with torch.set_num_threads(1); use 1 whenever torch threads > 1:
OpenBLAS's own pool then fights torch's OpenMP pool, see the table).

Measured on this machine (2 cores, Haswell, OPENBLAS_CORETYPE from the env),
letter.csv (1600 rows, d=32), hidden 256,256, batch 256, 8 sigmas 0.05..1,
3 runs of 40 epochs each (rows/s), all variants reach the same final loss:

  variant   torch thr  OpenBLAS thr  malloc tuned  rows/s (3 runs)
  autograd  1          1             yes           55.7k 58.1k 56.9k
  autograd  1          1             no            47.1k 51.4k 46.1k
  autograd  1          2             yes           62.8k 62.7k 68.8k
  autograd  1          2             no            58.5k 46.7k 46.4k
  autograd  2          1             yes           57.5k 50.5k 54.1k
  autograd  2          1             no            47.8k 52.0k 13.4k
  autograd  2          2             yes            8.6k 20.2k 34.4k  (pools fight)
  autograd  2          2             no            16.1k 10.2k 16.6k  (pools fight)
  manual    1          1             yes           72.7k 70.1k 73.1k
  manual    1          1             no            48.9k 50.2k 47.4k
  manual    1          2             yes           76.4k 74.3k 76.2k  <- default
  manual    1          2             no            48.5k 52.0k 47.0k
  manual    2          1             yes           59.9k 60.4k 59.7k
  manual    2          1             no            50.0k 41.4k 42.6k
  manual    2          2             yes           18.5k 18.5k 21.2k  (pools fight)
  manual    2          2             no            13.6k 12.7k 18.0k  (pools fight)

"autograd" is the textbook double backprop (autograd.grad(create_graph=True)
then backward); "manual" writes grad_z f as an explicit torch expression and
lets autograd differentiate that once -- the same function and the same
parameter gradient (identical losses), but fewer, fused-friendlier ops.
"malloc tuned" raises glibc's trim/mmap thresholds (see _tune_malloc); without
it ~half the step is page faults. torch's intra-op threads barely help at
this size (elementwise ops on 256x256 are cheaper serial); the one thing the
second core is good for is the 256x256x256 GEMMs, via OpenBLAS's pool.
The fastest variant is the default.
"""
import argparse
import json
import os
import sys
import time

_OB = [a.split("=", 1)[1] for a in sys.argv if a.startswith("--openblas-threads=")]
os.environ["OPENBLAS_NUM_THREADS"] = _OB[-1] if _OB else "2"   # before torch


def _tune_malloc():
    """Keep freed tensor memory in the heap (glibc mallopt).

    The DSM step allocates and frees many 256 KiB activation buffers. With
    glibc's defaults (128 KiB trim/mmap thresholds) freed memory goes back
    to the kernel and every new buffer page-faults again: about half of the
    step was system time. Same effect as MALLOC_MMAP_THRESHOLD_ /
    MALLOC_TRIM_THRESHOLD_ in the environment, or jemalloc/tcmalloc.
    """
    import ctypes
    try:
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)
        libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
        return True
    except (OSError, AttributeError):
        return False


MALLOC_TUNED = "--no-malloc-tune" not in sys.argv and _tune_malloc()

import numpy as np   # noqa: E402
import torch         # noqa: E402


def load_csv(path):
    """Returns the features as float32 (label column dropped, if named)."""
    with open(path) as fh:
        header = fh.readline().strip().split(",")
    data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64,
                      ndmin=2)
    if header and header[-1].strip().lower() == "label":
        data = data[:, :-1]
    return data


def make_mlp(d, hidden):
    layers, prev = [], d
    for h in hidden:
        layers += [torch.nn.Linear(prev, h), torch.nn.SiLU()]
        prev = h
    layers.append(torch.nn.Linear(prev, 1))
    return torch.nn.Sequential(*layers)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--hidden", default="256,256")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--n-sigmas", type=int, default=8)
    ap.add_argument("--sigma-min", type=float, default=0.05)
    ap.add_argument("--sigma-max", type=float, default=1.0)
    ap.add_argument("--prec-shrink", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch.set_num_threads (default 1; see the table)")
    ap.add_argument("--openblas-threads", type=int, default=2,
                    help="OPENBLAS_NUM_THREADS, set before torch is imported; "
                    "pass as --openblas-threads=N (default 2)")
    ap.add_argument("--no-malloc-tune", action="store_true",
                    help="leave glibc malloc's trim/mmap thresholds alone")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--objective", default="dsm", choices=["dsm", "cd"])
    ap.add_argument("--cd-steps", type=int, default=20)
    ap.add_argument("--cd-step-size", type=float, default=0.05)
    ap.add_argument("--cd-noise", type=float, default=0.3)
    ap.add_argument("--cd-buffer", type=int, default=10000)
    ap.add_argument("--cd-reinit", type=float, default=0.05)
    ap.add_argument("--cd-energy-reg", type=float, default=0.01)
    ap.add_argument("--variant", default="manual",
                    choices=["autograd", "manual"],
                    help="autograd: grad_z f by torch.autograd.grad with "
                    "create_graph=True, then backward (double backprop); "
                    "manual: grad_z f written out as an explicit torch "
                    "expression (same function, same gradients), then one "
                    "backward")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = np.random.default_rng(args.seed)

    x = load_csv(args.data)
    n, d = x.shape
    mean = x.mean(0)
    std = np.maximum(x.std(0), 1e-6)
    z_all = (x - mean) / std
    s = args.prec_shrink
    cov = np.cov(z_all, rowvar=False, bias=True).reshape(d, d)
    prec = np.linalg.inv((1 - s) * cov + s * np.eye(d))
    prec = 0.5 * (prec + prec.T)
    z_all = torch.from_numpy(z_all.astype(np.float32))
    P = torch.from_numpy(prec.astype(np.float32))

    hidden = [int(h) for h in args.hidden.split(",") if h]
    net = make_mlp(d, hidden)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr, betas=(0.9, 0.999))
    params = list(net.parameters())
    if args.n_sigmas > 1:
        ladder = np.geomspace(args.sigma_min, args.sigma_max, args.n_sigmas)
    else:
        ladder = np.array([args.sigma_min])
    ladder = torch.tensor(ladder, dtype=torch.float32)

    linears = [mod for mod in net if isinstance(mod, torch.nn.Linear)]

    def grad_f(zn):
        """grad_z f at zn, differentiable w.r.t. the parameters."""
        if args.variant == "autograd":
            zn.requires_grad_(True)
            f = -0.5 * ((zn @ P) * zn).sum(1) + net(zn).squeeze(1)
            g, = torch.autograd.grad(f.sum(), zn, create_graph=True)
            return g
        # manual: forward keeping pre-activations, then the input gradient
        # of m by the chain rule; silu'(a) = s (1 + a (1 - s)), s = sigmoid(a)
        h, dacts = zn, []
        for lin in linears[:-1]:
            a = torch.nn.functional.linear(h, lin.weight, lin.bias)
            sg = torch.sigmoid(a)
            h = a * sg
            dacts.append(sg * (1 + a * (1 - sg)))
        g = linears[-1].weight          # 1 x h_L, broadcast over the batch
        for lin, da in zip(reversed(linears[:-1]), reversed(dacts)):
            g = (g * da) @ lin.weight
        return g - zn @ P               # grad base = -P z (P symmetric)

    def chain_grad(zs):
        """grad_z f for the Langevin chains: no parameter graph needed."""
        if args.variant == "autograd":
            with torch.enable_grad():
                zs = zs.detach().requires_grad_(True)
                f = -0.5 * ((zs @ P) * zs).sum(1) + net(zs).squeeze(1)
                g, = torch.autograd.grad(f.sum(), zs)
            return g
        with torch.no_grad():
            return grad_f(zs)

    B = args.batch
    last_loss = float("nan")
    if args.objective == "cd":
        lo = z_all.min(0).values - 1.0
        hi = z_all.max(0).values + 1.0
        nb = args.cd_buffer
        buf = lo + (hi - lo) * torch.rand(nb, d)
        slots = torch.randperm(nb)
        pos = 0
        reg = args.cd_energy_reg
        t0 = time.perf_counter()
        for _ in range(args.epochs):
            perm = torch.randperm(n)
            for i in range(0, n, B):
                zb = z_all[perm[i:i + B]]
                m = zb.shape[0]
                idx = slots[(pos + torch.arange(m)) % nb]
                zs = buf[idx].clone()
                fresh = torch.rand(m) < args.cd_reinit
                zs[fresh] = lo + (hi - lo) * torch.rand(int(fresh.sum()), d)
                for _k in range(args.cd_steps):
                    g = chain_grad(zs).clamp_(-5.0, 5.0)
                    zs = zs + args.cd_step_size * g + args.cd_noise * torch.randn(m, d)
                    zs = torch.maximum(torch.minimum(zs, hi), lo)
                buf[idx] = zs
                md = net(zb).squeeze(1)
                ms = net(zs).squeeze(1)
                loss = ms.mean() - md.mean() + reg * (md.pow(2).mean() + ms.pow(2).mean())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 10.0)
                opt.step()
                pos = (pos + B) % nb
            last_loss = loss.item()
        secs = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(args.epochs if args.objective == "dsm" else 0):
        perm = torch.randperm(n)
        for i in range(0, n, B):
            zb = z_all[perm[i:i + B]]
            m = zb.shape[0]
            sig = ladder[torch.randint(len(ladder), (m,))].unsqueeze(1)
            eps = torch.randn(m, d)
            g = grad_f(zb + sig * eps)
            loss = 0.5 * (sig * g + eps).pow(2).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 10.0)
            opt.step()
        last_loss = loss.item()
    if args.objective == "dsm":
        secs = time.perf_counter() - t0

    print(json.dumps({
        "impl": "torch", "torch": torch.__version__, "objective": args.objective,
        "variant": args.variant, "malloc_tuned": MALLOC_TUNED, "threads": args.threads,
        "openblas_threads": int(os.environ["OPENBLAS_NUM_THREADS"]),
        "rows": n, "d": d, "hidden": hidden, "batch": B,
        "epochs": args.epochs, "seconds": round(secs, 4),
        "rows_per_s": round(n * args.epochs / secs, 1),
        "final_loss": round(last_loss, 5)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
