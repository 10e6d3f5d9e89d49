#!/usr/bin/python3
"""drift.py -- figures of ebmd's drift test on ADBench sets: the false-alarm
rate under long runs of unchanged normal traffic, and the rows until
detection for several kinds of shift.

  nice -n 10 /usr/bin/python3 bench/drift.py [--sets annthyroid,...]
      [--build build] [--out bench/results/drift.md] [--seeds 20]

Per set (../shared/data/adbench/NAME.csv): the one-class split of
bench/split-oneclass.sh (first half of the normal rows train, the rest and
every anomaly are held out), a model trained by ebmd-train train with its
defaults, and streams built from the held-out rows:

  normal        held-out normal rows, resampled with replacement
  mean +k sd    feature F (the one with the largest spread) shifted by k
                of its standard deviations, k = 0.5, 1, 2
  scale x1.5    every feature's deviation from its mean scaled by 1.5
  anomalies p%  each row replaced by a random anomaly with probability p
  subpop        only the held-out normal rows with F above its median

Every stream row is scored by ebmd-train score (the model's real p-values);
the window and the KS test are then replayed here exactly as ebmd computes
them (src/model/drift.c: the discrete-uniform KS distance, two-sample
size w n_ref / (w + n_ref), Stephens' correction), and checked against a
real ebmd: one window is posted to a daemon and its GET drift must give
the same statistic and p-value.

False alarms: (a) the share of 300 disjoint full windows of normal rows
flagged at drift_alpha = 0.001 (and, for calibration, at 0.01 and 0.05);
(b) a run of 100,000 normal rows checked every 100 rows: the share of the
checks that report drift. Detection: a full window of normal rows, then
the shifted stream, checked every 10 rows; the rows of shifted traffic
until drift is first reported (median and 90th percentile over --seeds
runs; "never" when not within 10 windows).
"""

import argparse
import csv
import json
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADBENCH = os.path.join(ROOT, "..", "shared", "data", "adbench")
if not os.path.isdir(ADBENCH):
    ADBENCH = "/work/shared/data/adbench"
WINDOW = 1000
ALPHA = 0.001


# ---- the test, as src/model/drift.c computes it --------------------------

def ks_q(lam):
    if not lam > 0.2:
        return 1.0
    s, sign = 0.0, 1.0
    for j in range(1, 101):
        term = math.exp(-2.0 * j * j * lam * lam)
        s += sign * term
        if term < 1e-17 * abs(s):
            break
        sign = -sign
    return min(1.0, max(0.0, 2.0 * s))


def drift_test(k, n_grid):
    """k: grid indices 1..n_grid of the window; (statistic, p_value)."""
    w = len(k)
    if w == 0:
        return 0.0, 1.0
    k = sorted(k)
    d, i = 0.0, 0
    while i < w:
        j = i
        while j + 1 < w and k[j + 1] == k[i]:
            j += 1
        below = (k[i] - 1) / n_grid - i / w
        at = (j + 1) / w - k[i] / n_grid
        d = max(d, abs(below), abs(at))
        i = j + 1
    n_ref = n_grid - 1
    ne = w * n_ref / (w + n_ref)
    s = math.sqrt(ne)
    return d, ks_q((s + 0.12 + 0.11 / s) * d)


class Window:
    """The last WINDOW grid indices, with an O(1) append."""

    def __init__(self, n_grid):
        self.n_grid = n_grid
        self.ring = []
        self.head = 0

    def add(self, k):
        if len(self.ring) < WINDOW:
            self.ring.append(k)
        else:
            self.ring[self.head] = k
            self.head = (self.head + 1) % WINDOW

    def drift(self):
        if len(self.ring) < WINDOW:
            return False
        return drift_test(self.ring, self.n_grid)[1] < ALPHA


# ---- data and model ------------------------------------------------------

def read_csv(path):
    with open(path) as f:
        r = csv.reader(f)
        head = next(r)
        rows = [[float(v) for v in row] for row in r]
    return head, rows


def write_csv(path, head, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(head)
        w.writerows(["%.9g" % v for v in r] for r in rows)


def p_values(build, model, head, rows, tmp, tag):
    path = os.path.join(tmp, tag + ".csv")
    write_csv(path, head, rows)
    out = subprocess.run([os.path.join(build, "src/tool/ebmd-train"),
                          "score", "--model", model, "--data", path],
                         check=True, capture_output=True, text=True).stdout
    return [float(r["p_value"]) for r in csv.DictReader(out.splitlines())]


def grid(p, n_grid):
    return min(n_grid, max(1, round(p * n_grid)))


# ---- the check against a real ebmd -----------------------------------------

def check_daemon(build, model, head, rows, n_grid, expect_p):
    tmp = tempfile.mkdtemp(prefix="drift-daemon-")
    try:
        os.makedirs(os.path.join(tmp, "m"))
        shutil.copy(model, os.path.join(tmp, "m", "x.ebm"))
        conf = os.path.join(tmp, "c.conf")
        with open(conf, "w") as f:
            f.write("[server]\nlisten = 127.0.0.1:0\nthreads = 1\n"
                    "max_rows = 1000\n[models]\ndir = %s\n[monitor]\n"
                    "window = %d\n" % (os.path.join(tmp, "m"), WINDOW))
        proc = subprocess.Popen([os.path.join(build, "src/ebmd"), "--config",
                                 conf], stderr=subprocess.PIPE, text=True)
        base = None
        for line in proc.stderr:
            if "listening on" in line:
                base = "http://" + line.split("listening on ")[1].split()[0]
            if line.rstrip().endswith("ready"):
                break
        try:
            body = json.dumps({"instances": rows[:WINDOW]}).encode()
            req = urllib.request.Request(base + "/v1/models/x/score", body,
                                         {"Content-Type": "application/json"})
            got = json.load(urllib.request.urlopen(req))
            served = [r["p_value"] for r in got["results"]]
            assert all(abs(a - b) < 1e-6 for a, b in zip(served, expect_p)), \
                "daemon and ebmd-train score disagree"
            r = json.load(urllib.request.urlopen(base + "/v1/models/x/drift"))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        d, p = drift_test([grid(v, n_grid) for v in expect_p[:WINDOW]], n_grid)
        assert abs(r["statistic"] - d) < 1e-12 and abs(r["p_value"] - p) \
            < 1e-9 * max(1.0, p), (r, d, p)
        return r
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- one set ---------------------------------------------------------------

def run_set(name, build, seeds, tmp, split):
    data = os.path.join(ADBENCH, name + ".csv")
    if split == "random":
        # the same split on a copy whose normal rows are shuffled (seeded)
        head, rows = read_csv(data)
        normal = [r for r in rows if r[-1] == 0]
        random.Random(1).shuffle(normal)
        data = os.path.join(tmp, name + "-shuffled.csv")
        write_csv(data, head, normal + [r for r in rows if r[-1] != 0])
    train_csv = os.path.join(tmp, name + "-train.csv")
    test_csv = os.path.join(tmp, name + "-test.csv")
    subprocess.run(["sh", os.path.join(ROOT, "bench/split-oneclass.sh"), data,
                    train_csv, test_csv], check=True)
    model = os.path.join(tmp, name + ".ebm")
    t0 = time.time()
    subprocess.run([os.path.join(build, "src/tool/ebmd-train"), "train",
                    "--data", train_csv, "--out", model, "--quiet",
                    "--seed", "1"], check=True)
    t_train = time.time() - t0
    info = json.loads(subprocess.run(
        [os.path.join(build, "src/tool/ebmd-train"), "inspect", model],
        check=True, capture_output=True, text=True).stdout)
    n_grid = info["reference_size"] + 1
    head, test = read_csv(test_csv)
    feats = head[:-1]
    normal = [r[:-1] for r in test if r[-1] == 0]
    anomalies = [r[:-1] for r in test if r[-1] == 1]
    d = len(feats)
    mean = [statistics.fmean(r[j] for r in normal) for j in range(d)]
    sd = [statistics.pstdev([r[j] for r in normal]) for j in range(d)]
    f = max(range(d), key=lambda j: sd[j] / (abs(mean[j]) + 1e-12)
            if sd[j] > 0 else -1)
    med = statistics.median(r[f] for r in normal)

    rng = random.Random(1)
    # p-values of every held-out normal row and of each transformed copy:
    # streams then resample those (row by row, with replacement).
    p_normal = p_values(build, model, feats, normal, tmp, name + "-n")
    check = check_daemon(build, model, feats, normal, n_grid, p_normal)
    shifted = {}
    for k in (0.5, 1.0, 2.0):
        rows = [r[:f] + [r[f] + k * sd[f]] + r[f + 1:] for r in normal]
        shifted["mean %+g sd" % k] = p_values(
            build, model, feats, rows, tmp, name + "-m%g" % k)
    rows = [[mean[j] + 1.5 * (r[j] - mean[j]) for j in range(d)]
            for r in normal]
    shifted["scale x1.5"] = p_values(build, model, feats, rows, tmp,
                                     name + "-s")
    p_anom = p_values(build, model, feats, anomalies, tmp, name + "-a")
    upper = [p for r, p in zip(normal, p_normal) if r[f] > med]
    shifted["subpopulation"] = upper

    def mixed(share):
        return lambda: (rng.choice(p_anom) if rng.random() < share
                        else rng.choice(p_normal))
    draws = {k: (lambda v=v: rng.choice(v)) for k, v in shifted.items()}
    draws["anomalies 5%"] = mixed(0.05)
    draws["anomalies 20%"] = mixed(0.20)

    # (a) disjoint windows of normal traffic
    flagged = {0.001: 0, 0.01: 0, 0.05: 0}
    n_windows = 300
    for _ in range(n_windows):
        k = [grid(rng.choice(p_normal), n_grid) for _ in range(WINDOW)]
        p = drift_test(k, n_grid)[1]
        for a in flagged:
            flagged[a] += p < a
    # (b) a long run checked every 100 rows
    win = Window(n_grid)
    checks = alarms = 0
    for i in range(100000):
        win.add(grid(rng.choice(p_normal), n_grid))
        if (i + 1) % 100 == 0 and i + 1 >= WINDOW:
            checks += 1
            alarms += win.drift()
    # detection
    detect = {}
    for what, draw in draws.items():
        rows_needed = []
        for s in range(seeds):
            win = Window(n_grid)
            for _ in range(WINDOW):
                win.add(grid(rng.choice(p_normal), n_grid))
            found = None
            for i in range(10 * WINDOW):
                win.add(grid(draw(), n_grid))
                if (i + 1) % 10 == 0 and win.drift():
                    found = i + 1
                    break
            rows_needed.append(found)
        detect[what] = rows_needed
    return {"name": name, "n_train": len(read_csv(train_csv)[1]),
            "n_normal": len(normal), "n_anomalies": len(anomalies),
            "n_ref": n_grid - 1, "d": d, "train_s": t_train,
            "feature": feats[f], "windows": n_windows, "flagged": flagged, "checks": checks,
            "alarms": alarms, "detect": detect, "daemon": check}


def fmt_rows(v):
    found = [x for x in v if x is not None]
    if len(found) < len(v) / 2:
        return "never (%d/%d)" % (len(found), len(v))
    found.sort()
    med = statistics.median([x if x is not None else math.inf for x in v])
    p90 = sorted(x if x is not None else math.inf for x in v)[
        min(len(v) - 1, int(0.9 * len(v)))]
    return "%s / %s" % ("%d" % med if med != math.inf else "never",
                        "%d" % p90 if p90 != math.inf else "never")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default="annthyroid,cardio,pendigits,shuttle")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--out", default=os.path.join(ROOT,
                                                  "bench/results/drift.md"))
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--split", choices=("file", "random"), default="file",
                    help="file: bench/split-oneclass.sh as is (the first "
                    "half of the normal rows in file order train); random: "
                    "the same on normal rows shuffled first")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="drift-bench-")
    results = []
    try:
        for name in a.sets.split(","):
            r = run_set(name, a.build, a.seeds, tmp, a.split)
            results.append(r)
            print(json.dumps({k: v for k, v in r.items()}, default=str),
                  file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    kinds = list(results[0]["detect"])
    out = ["# Drift detection on ADBench sets", "",
           "`nice -n 10 /usr/bin/python3 bench/drift.py --sets %s --seeds %d"
           " --split %s` (%s). Window %d rows, drift_alpha %g; model: "
           "`ebmd-train train` defaults on the one-class split%s." % (
               a.sets, a.seeds, a.split, time.strftime("%Y-%m-%d"), WINDOW,
               ALPHA, "" if a.split == "file" else
               " of the set with its normal rows shuffled first"), "",
           "## False alarms under unchanged normal traffic", "",
           "| set | d | n_ref | held-out normal | windows flagged at 0.001 / "
           "0.01 / 0.05 (of %d) | checks with drift, 100k-row run (every 100"
           " rows) |" % results[0]["windows"], "|---|---|---|---|---|---|"]
    for r in results:
        fl = r["flagged"]
        out.append("| %s | %d | %d | %d | %d / %d / %d | %d of %d |" % (
            r["name"], r["d"], r["n_ref"], r["n_normal"], fl[0.001],
            fl[0.01], fl[0.05], r["alarms"], r["checks"]))
    out += ["", "## Rows of shifted traffic until drift is reported", "",
            "Median / 90th percentile over %d runs (checked every 10 rows, "
            "after a full window of normal rows; 'never': not within 10 "
            "windows)." % a.seeds, "",
            "| shift | " + " | ".join(r["name"] for r in results) + " |",
            "|---|" + "---|" * len(results)]
    for k in kinds:
        out.append("| %s | " % k + " | ".join(
            fmt_rows(r["detect"][k]) for r in results) + " |")
    out += ["", "Feature F of the mean shifts and the subpopulation (the "
            "one with the largest relative spread): " +
            ", ".join("%s: %s" % (r["name"], r["feature"])
                      for r in results) + ".",
            "", "Checked against a real ebmd on one window per set "
            "(statistic and p-value equal to 1e-12): " +
            ", ".join("%s %.4f" % (r["name"], r["daemon"]["statistic"])
                      for r in results) + "."]
    text = "\n".join(out) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
