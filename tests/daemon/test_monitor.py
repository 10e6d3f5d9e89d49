#!/usr/bin/env python3
"""Integration test of ebmd's traffic monitor (API.md section 6): drift,
its metrics, the window's life across reloads, [monitor] validation, and
the status page GET /ui rendered by a real browser (headless Chromium).

Usage: test_monitor.py EBMD EBMD_TRAIN DATA_DIR

Real data: tests/data/thyroid.csv. Its normal rows are split once (seeded)
into a training file and held-out rows; the model's reference set comes
from the training file, so held-out normal rows are exchangeable with it
and their p-values are uniform: that stream must not raise drift, while
shifted streams must within a stated number of rows.

Only the Python standard library (and chromium, when installed; the page
test fails if it is missing: scripts/install-deps.sh installs it).
Prints "N passed, M failed"; exits non-zero if anything failed.
"""

import csv
import html.parser
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request

EBMD, EBMD_TRAIN, DATA_DIR = (os.path.abspath(a) for a in sys.argv[1:4])
THYROID = os.path.join(DATA_DIR, "thyroid.csv")
WORK = tempfile.mkdtemp(prefix="ebmd-monitor-")
TOKEN = "monitor-token"
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


# ---- data --------------------------------------------------------------------

with open(THYROID) as f:
    _rows = list(csv.reader(f))
HEADER = _rows[0][:-1]
_normal = [[float(v) for v in r[:-1]] for r in _rows[1:] if r[-1] == "0"]
ANOMALIES = [[float(v) for v in r[:-1]] for r in _rows[1:] if r[-1] == "1"]
random.Random(12).shuffle(_normal)
TRAIN_ROWS, HELD_OUT = _normal[:2000], _normal[2000:]
SD = [(sum((r[j] - sum(x[j] for x in HELD_OUT) / len(HELD_OUT)) ** 2
           for r in HELD_OUT) / len(HELD_OUT)) ** 0.5
      for j in range(len(HEADER))]


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(HEADER)
        w.writerows(["%.9g" % v for v in r] for r in rows)


def train(out, seed):
    data = os.path.join(WORK, "train.csv")
    if not os.path.exists(data):
        write_csv(data, TRAIN_ROWS)
    subprocess.run([EBMD_TRAIN, "train", "--data", data, "--out", out,
                    "--hidden", "32,32", "--epochs", "20", "--seed",
                    str(seed), "--quiet"], check=True)


# ---- the daemon ----------------------------------------------------------------

class Daemon:
    def __init__(self, name, models, monitor="", server="", extra=""):
        self.conf = os.path.join(WORK, name + ".conf")
        with open(self.conf, "w") as f:
            f.write("[server]\nlisten = 127.0.0.1:0\nthreads = 2\n"
                    "max_rows = 1000\n%s\n[models]\ndir = %s\n\n"
                    "[monitor]\n%s\n%s" % (server, models, monitor, extra))
        self.lines = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen([EBMD, "--config", self.conf],
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, cwd=WORK)
        threading.Thread(target=self._read, daemon=True).start()
        m = self.wait_log(r"listening on (\S+):(\d+)", 0)
        self.base = "http://%s:%s" % (m.group(1), m.group(2))
        self.wait_log(r"ready$", 0)

    def _read(self):
        for raw in self.proc.stderr:
            with self.cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip())
                self.cond.notify_all()

    def wait_log(self, pattern, start, timeout=60.0):
        deadline = time.time() + timeout
        with self.cond:
            while True:
                for line in self.lines[start:]:
                    m = re.search(pattern, line)
                    if m:
                        return m
                left = deadline - time.time()
                if left <= 0 or self.proc.poll() is not None:
                    raise Failure("no log line /%s/; log:\n%s" % (
                        pattern, "\n".join(self.lines[-20:])))
                self.cond.wait(min(left, 0.5))

    def request(self, method, path, body=None, token=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data,
                                     method=method)
        req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def json(self, method, path, body=None, token=None, expect=200):
        status, _, data = self.request(method, path, body, token)
        check(status == expect, "%s %s: %d %r" % (method, path, status,
                                                  data[:300]))
        return json.loads(data)

    def score(self, model, rows, token=None):
        for i in range(0, len(rows), 500):
            self.json("POST", "/v1/models/%s/score" % model,
                      {"instances": rows[i:i + 500]}, token)

    def drift(self, model, token=None):
        return self.json("GET", "/v1/models/%s/drift" % model, token=token)

    def metrics(self):
        status, _, data = self.request("GET", "/metrics")
        check(status == 200, "/metrics: %d" % status)
        out = {}
        for line in data.decode().splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                out[key] = float(value)
        return out

    def reload(self):
        start = len(self.lines)
        self.proc.send_signal(signal.SIGHUP)
        self.wait_log(r"reload: serving", start)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


STORE = os.path.join(WORK, "store")
os.makedirs(STORE)
train(os.path.join(STORE, "thy.ebm"), 1)
train(os.path.join(STORE, "thy2.ebm"), 2)


def models_dir(name, *models):
    d = os.path.join(WORK, name)
    os.makedirs(d, exist_ok=True)
    for m in models:
        shutil.copy(os.path.join(STORE, m + ".ebm"), os.path.join(d, m
                                                                  + ".ebm"))
    return d


WINDOW = 500
MAIN = Daemon("main", models_dir("main", "thy", "thy2"),
              "window = %d\nui = true\n" % WINDOW,
              extra="[compose.both]\nmodels = thy, thy2\n")


def normal_stream(n, seed):
    rng = random.Random(seed)
    return [rng.choice(HELD_OUT) for _ in range(n)]


# ---- drift ---------------------------------------------------------------------

@test
def no_false_alarm_on_normal_traffic():
    """20 consecutive full windows (10,000 rows) of resampled held-out
    normal rows: never drift at drift_alpha = 0.001; the statistics are
    those of a calibrated test (their p-values not piled up near 0)."""
    d = Daemon("normal", models_dir("normal", "thy"),
               "window = %d\n" % WINDOW)
    try:
        p_values = []
        for k in range(20):
            d.score("thy", normal_stream(WINDOW, 100 + k))
            r = d.drift("thy")
            check(r["count"] == WINDOW and r["window"] == WINDOW,
                  "count/window: %r" % r)
            check(not r["drift"], "window %d: false alarm %r" % (k, r))
            p_values.append(r["p_value"])
        small = sum(p < 0.05 for p in p_values)
        check(small <= 4, "%d of 20 windows below 0.05: %r" % (small,
                                                             p_values))
    finally:
        check(d.stop() == 0, "exit code")


def rows_until_drift(d, model, stream, step=50):
    """Scores `stream` step rows at a time; the number of rows scored when
    drift was first reported, or None."""
    for i in range(0, len(stream), step):
        d.score(model, stream[i:i + step])
        if d.drift(model)["drift"]:
            return i + step
    return None


@test
def shifted_streams_raise_drift():
    """After a full window of normal rows, a shifted stream raises drift
    within one window: a mean shift of f0 by 2 sd, and 20 % anomalies."""
    cases = [
        ("mean shift f0 +2 sd", lambda r, rng: [r[0] + 2 * SD[0]] + r[1:]),
        ("20% anomalies", lambda r, rng: rng.choice(ANOMALIES)
         if rng.random() < 0.2 else r),
    ]
    for k, (what, shift) in enumerate(cases):
        d = Daemon("shift%d" % k, models_dir("shift%d" % k, "thy"),
                   "window = %d\n" % WINDOW)
        try:
            d.score("thy", normal_stream(WINDOW, 7))
            check(not d.drift("thy")["drift"], "%s: drift before" % what)
            rng = random.Random(8)
            stream = [shift(r, rng) for r in normal_stream(2 * WINDOW, 9)]
            n = rows_until_drift(d, "thy", stream)
            check(n is not None and n <= WINDOW,
                  "%s: drift after %r rows (bound %d)" % (what, n, WINDOW))
            print("     %s: drift after %d rows" % (what, n))
        finally:
            check(d.stop() == 0, "exit code")


@test
def drift_needs_a_full_window():
    d = Daemon("partial", models_dir("partial", "thy"), "window = 400\n")
    try:
        r = d.drift("thy")
        check(r["count"] == 0 and r["statistic"] is None
              and r["p_value"] is None and r["drift"] is False,
              "empty window: %r" % r)
        d.score("thy", [ANOMALIES[i % len(ANOMALIES)] for i in range(399)])
        r = d.drift("thy")
        check(r["count"] == 399 and r["p_value"] < 1e-6 and not r["drift"],
              "399 anomalies in a window of 400: %r" % r)
        d.score("thy", ANOMALIES[:1])
        r = d.drift("thy")
        check(r["count"] == 400 and r["drift"], "full window: %r" % r)
        check(set(r) == {"model", "window", "count", "statistic", "p_value",
                         "drift", "checked_at"}, "fields %r" % sorted(r))
        check(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", r["checked_at"]),
              "checked_at %r" % r["checked_at"])
        d.json("GET", "/v1/models/nope/drift", expect=404)
        status, hdrs, _ = d.request("POST", "/v1/models/thy/drift", {})
        check(status == 405 and "GET" in hdrs.get("Allow", ""),
              "POST drift: %d" % status)
    finally:
        check(d.stop() == 0, "exit code")


@test
def window_reset_on_reload():
    """An unchanged file keeps its window on SIGHUP; a new version of the
    file (here: rebased on other rows) starts afresh, and so does the
    composition that uses it; the other model keeps its window."""
    mdir = models_dir("reload", "thy", "thy2")
    d = Daemon("reload", mdir, "window = %d\n" % WINDOW,
               extra="[compose.both]\nmodels = thy, thy2\n")
    try:
        rows = normal_stream(300, 3)
        for m in ("thy", "thy2", "both"):
            d.score(m, rows)
        d.reload()
        for m in ("thy", "thy2", "both"):
            check(d.drift(m)["count"] == 300, "%s kept: %r" % (m,
                                                           d.drift(m)))
        other = os.path.join(WORK, "rebase.csv")
        write_csv(other, HELD_OUT[:400])
        tmp = os.path.join(WORK, "thy-new.ebm")
        subprocess.run([EBMD_TRAIN, "rebase", "--model",
                        os.path.join(mdir, "thy.ebm"), "--data", other,
                        "--out", tmp], check=True, stderr=subprocess.DEVNULL)
        os.replace(tmp, os.path.join(mdir, "thy.ebm"))
        d.reload()
        info = d.json("GET", "/v1/models/thy")
        check(info["reference_size"] == 400, "rebased model served")
        check(d.drift("thy")["count"] == 0, "thy reset: %r" % d.drift("thy"))
        check(d.drift("both")["count"] == 0, "composition reset")
        check(d.drift("thy2")["count"] == 300, "thy2 kept")
        d.score("thy", rows[:10])
        check(d.drift("thy")["count"] == 10, "new window counts")
    finally:
        check(d.stop() == 0, "exit code")


@test
def metrics_match_the_endpoint():
    MAIN.score("thy", normal_stream(WINDOW + 100, 21))
    MAIN.score("both", normal_stream(50, 22))
    r = MAIN.drift("thy")
    m = MAIN.metrics()
    check(abs(m['ebmd_drift_statistic{model="thy"}'] - r["statistic"])
          < 1e-12, "statistic: %r vs %r" % (m.get(
              'ebmd_drift_statistic{model="thy"}'), r))
    check(m['ebmd_drift{model="thy"}'] == (1.0 if r["drift"] else 0.0),
          "ebmd_drift")
    check('ebmd_drift{model="both"}' in m, "composition monitored")
    rows = m['ebmd_rows_scored_total{model="thy"}']
    check(m['ebmd_p_value_count{model="thy"}'] == rows,
          "p_value count %r, rows %r" % (m['ebmd_p_value_count{model="thy"}'],
                                         rows))
    buckets = [(float(k.split('le="')[1].split('"')[0])
                if "+Inf" not in k else float("inf"), v)
               for k, v in m.items()
               if k.startswith('ebmd_p_value_bucket{model="thy"')]
    buckets.sort()
    check(len(buckets) == 11, "buckets %r" % buckets)
    check(all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])),
          "cumulative")
    check(buckets[-1][1] == rows, "+Inf bucket")
    # uniform p-values: about half of the rows at or below 0.5
    half = dict(buckets)[0.5] / rows
    check(0.35 < half < 0.65, "share of p <= 0.5: %.3f" % half)
    s = m['ebmd_p_value_sum{model="thy"}']
    check(0.35 < s / rows < 0.65, "mean p-value %.3f" % (s / rows))


@test
def auth_applies_to_drift_not_to_metrics():
    tok = os.path.join(WORK, "token")
    with open(tok, "w") as f:
        f.write(TOKEN + "\n")
    os.chmod(tok, 0o600)
    d = Daemon("auth", models_dir("auth", "thy"), "ui = true\n",
               server="auth_token_file = %s\n" % tok)
    try:
        status, _, _ = d.request("GET", "/v1/models/thy/drift")
        check(status == 401, "drift without token: %d" % status)
        d.drift("thy", token=TOKEN)
        check(d.request("GET", "/metrics")[0] == 200, "metrics open")
        check(d.request("GET", "/ui")[0] == 200, "ui open")
        check(d.request("GET", "/ui/data")[0] == 200, "ui data open")
    finally:
        check(d.stop() == 0, "exit code")


@test
def monitoring_off_and_ui_off():
    d = Daemon("off", models_dir("off", "thy"), "window = 0\n")
    try:
        d.score("thy", normal_stream(100, 5))
        r = d.drift("thy")
        check(r["window"] == 0 and r["count"] == 0 and not r["drift"]
              and r["statistic"] is None, "off: %r" % r)
        m = d.metrics()
        check(not any(k.startswith("ebmd_drift") for k in m),
              "no drift gauges when off")
        check(m['ebmd_p_value_count{model="thy"}'] == 0, "nothing recorded")
        for path in ("/ui", "/ui/data"):
            status, _, body = d.request("GET", path)
            check(status == 404 and b"[monitor] ui = true" in body,
                  "%s without ui: %d %r" % (path, status, body[:200]))
    finally:
        check(d.stop() == 0, "exit code")


@test
def check_config_validates_monitor():
    for text, want in [
            ("window = 2000000\n",
             r"bad\.conf:2: \[monitor\] window: expected an integer in "
             r"0\.\.1000000, got '2000000'"),
            ("drift_alpha = 1\n",
             r"bad\.conf:2: \[monitor\] drift_alpha: expected a number "
             r"strictly between 0 and 1, got '1'"),
            ("ui = sometimes\n", r"bad\.conf:2: \[monitor\] ui: expected"),
            ("windw = 10\n", r"bad\.conf:2: \[monitor\] unknown key 'windw'")]:
        path = os.path.join(WORK, "bad.conf")
        with open(path, "w") as f:
            f.write("[monitor]\n" + text)
        p = subprocess.run([EBMD, "--config", path, "--check-config"],
                           capture_output=True, text=True, cwd=WORK)
        check(p.returncode != 0 and re.search(want, p.stderr),
              "%r: exit %d, %r" % (text, p.returncode, p.stderr[-300:]))


# ---- the status page --------------------------------------------------------------

class DomModels(html.parser.HTMLParser):
    """Per model card: its bar counts and the numbers shown."""

    def __init__(self):
        super().__init__()
        self.models = {}
        self.current = None
        self.field = None
        self.svg = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = a.get("class", "")
        if tag == "div" and "model" in cls.split() and "data-model" in a:
            self.current = self.models.setdefault(
                a["data-model"], {"p-bar": 0, "score-bar": 0, "ref-line": 0,
                                  "history": 0})
        elif self.current is not None:
            if tag == "svg" and cls == "history":
                self.current["history"] += 1
            for c in ("p-bar", "score-bar", "ref-line"):
                if c in cls.split():
                    self.current[c] += 1
            if tag == "span" and cls.startswith("v-"):
                self.field = cls[2:]

    def handle_data(self, data):
        if self.current is not None and self.field is not None:
            self.current[self.field] = data
            self.field = None


def chromium(*args):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    check(exe is not None, "chromium is not installed "
          "(scripts/install-deps.sh installs it)")
    profile = tempfile.mkdtemp(prefix="chromium-", dir=WORK)
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--no-first-run", "--disable-extensions",
           "--user-data-dir=" + profile, "--virtual-time-budget=5000",
           *args]
    p = subprocess.run(cmd, capture_output=True, timeout=120)
    check(p.returncode == 0, "chromium exit %d: %r" % (p.returncode,
                                                      p.stderr[-500:]))
    return p.stdout.decode("utf-8", "replace")


def precision4(v):
    """JavaScript's Number(v).toPrecision(4) for 1e-6 <= |v| < 1e21."""
    s = "%.4g" % v
    if "e" in s:
        return s
    digits = len(s.replace("-", "").replace(".", "").lstrip("0"))
    if "." not in s and digits < 4:
        s += "." + "0" * (4 - digits)
    elif digits < 4:
        s += "0" * (4 - digits)
    return s


@test
def status_page_in_a_browser():
    status, hdrs, body = MAIN.request("GET", "/ui")
    check(status == 200 and hdrs["Content-Type"].startswith("text/html"),
          "GET /ui: %d" % status)
    page = body.decode()
    # self-contained: nothing fetched but /ui/data
    check(not re.search(r"<(link|img|iframe|script[^>]*\bsrc)\b|@import|url\(",
                        page), "the page loads external resources")
    check(re.findall(r"fetch\(\"([^\"]+)\"", page) == ["/ui/data"],
          "the page fetches only /ui/data")
    dom = chromium("--dump-dom", MAIN.base + "/ui")
    p = DomModels()
    p.feed(dom)
    check(set(p.models) == {"thy", "thy2", "both"},
          "models on the page: %r" % sorted(p.models))
    for name, card in p.models.items():
        check(card["p-bar"] == 20 and card["score-bar"] == 20
              and card["ref-line"] == 1 and card["history"] == 1,
              "%s: histograms %r" % (name, card))
        r = MAIN.drift(name)
        if r["count"] > 0:
            check(card["statistic"] == precision4(r["statistic"])
                  and card["p_value"] == precision4(r["p_value"]),
                  "%s: page %r/%r, endpoint %r" % (
                      name, card["statistic"], card["p_value"], r))
        check(card["count"] == "%d / %d" % (r["count"], r["window"]),
              "%s: count %r vs %r" % (name, card["count"], r))
        info = MAIN.metrics()
        check(card["rows"] == "%d" % info[
            'ebmd_rows_scored_total{model="%s"}' % name], "rows")
    # no rows, only aggregates: no feature value of the traffic is shown
    data = MAIN.json("GET", "/ui/data")
    check(set(data["models"][0]) == {"model", "rows", "anomalies", "drift",
                                     "p_hist", "score_hist", "history",
                                     "rows_per_s", "anomalies_per_s"},
          "aggregate fields %r" % sorted(data["models"][0]))


def main():
    passed = failed = 0
    only = [n for n in os.environ.get("EBMD_TESTS", "").split(",") if n]
    for fn in TESTS:
        if only and fn.__name__ not in only:
            continue
        t0 = time.time()
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 (any failure is reported)
            failed += 1
            print("FAIL %s (%.1f s): %s" % (fn.__name__, time.time() - t0,
                                            exc), flush=True)
            if not isinstance(exc, Failure):
                traceback.print_exc()
        else:
            passed += 1
            print("ok   %s (%.1f s)" % (fn.__name__, time.time() - t0),
                  flush=True)
    if MAIN.stop() != 0:
        failed += 1
        print("FAIL main daemon exit code")
    print("%d passed, %d failed" % (passed, failed))
    if failed == 0:
        shutil.rmtree(WORK, ignore_errors=True)
    else:
        print("left", WORK, "for inspection")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        if MAIN.proc.poll() is None:
            MAIN.proc.kill()
