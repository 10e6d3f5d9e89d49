#!/usr/bin/python3
"""ui-screenshot.py -- docs/ui.png: the status page GET /ui of a real ebmd
serving two models trained on tests/data/thyroid.csv, one fed unchanged
held-out normal rows, the other normal rows that turn into a mean shift
half-way, polled once a second so the drift statistic has a history; then
headless Chromium takes the screenshot.

  /usr/bin/python3 bench/ui-screenshot.py [--build build] [--out docs/ui.png]
"""

import argparse
import csv
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "ui.png"))
    ap.add_argument("--seconds", type=int, default=30)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="ui-shot-")
    train_tool = os.path.join(a.build, "src/tool/ebmd-train")
    rows = list(csv.reader(open(os.path.join(ROOT, "tests/data/thyroid.csv"))))
    head = rows[0][:-1]
    normal = [[float(v) for v in r[:-1]] for r in rows[1:] if r[-1] == "0"]
    random.Random(3).shuffle(normal)
    train, held = normal[:2000], normal[2000:]
    data = os.path.join(tmp, "train.csv")
    with open(data, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(head)
        w.writerows(train)
    os.makedirs(os.path.join(tmp, "models"))
    for name, seed in (("cpu", 1), ("net", 2)):
        subprocess.run([train_tool, "train", "--data", data, "--out",
                        os.path.join(tmp, "models", name + ".ebm"),
                        "--hidden", "32,32", "--epochs", "20", "--seed",
                        str(seed), "--quiet"], check=True)
    conf = os.path.join(tmp, "c.conf")
    with open(conf, "w") as f:
        f.write("[server]\nlisten = 127.0.0.1:0\nthreads = 2\n[models]\n"
                "dir = %s\n[monitor]\nwindow = 1000\nui = true\n"
                % os.path.join(tmp, "models"))
    proc = subprocess.Popen([os.path.join(a.build, "src/ebmd"), "--config",
                             conf], stderr=subprocess.PIPE, text=True)
    base = None
    for line in proc.stderr:
        if "listening on" in line:
            base = "http://" + line.split("listening on ")[1].split()[0]
        if line.rstrip().endswith("ready"):
            break
    rng = random.Random(4)

    def post(model, batch):
        req = urllib.request.Request(
            base + "/v1/models/%s/score" % model,
            json.dumps({"instances": batch}).encode(),
            {"Content-Type": "application/json"})
        urllib.request.urlopen(req).read()

    try:
        for t in range(a.seconds):
            post("cpu", [rng.choice(held) for _ in range(100)])
            shift = 0.0 if t < a.seconds // 2 else 0.3
            post("net", [[r[0] + shift] + r[1:] for r in
                         (rng.choice(held) for _ in range(100))])
            urllib.request.urlopen(base + "/ui/data").read()
            time.sleep(1.0)
        exe = shutil.which("chromium")
        subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-background-networking",
                        "--disable-component-update", "--disable-sync",
                        "--no-first-run", "--hide-scrollbars",
                        "--user-data-dir=" + os.path.join(tmp, "profile"),
                        "--virtual-time-budget=5000",
                        "--window-size=1050,720",
                        "--screenshot=" + os.path.abspath(a.out),
                        base + "/ui"], check=True, capture_output=True)
        print("wrote", a.out)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
