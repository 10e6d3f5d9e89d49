#!/usr/bin/env python3
"""Integration test of ebmd: the real daemon on 127.0.0.1 (port 0), with
models trained at test time by the real ebmd-train, driven over HTTP.

Usage: test_daemon.py EBMD EBMD_TRAIN DATA_DIR

Covers API.md sections 2 and 3: every status code with its error body and
the precedence between them, named and positional rows, explanations,
repair, compositions (ad hoc and from the configuration), metrics, reload
on SIGHUP (a corrupt file keeps the old version, a new file is served, a
deleted one is not), the inotify watch, and a graceful SIGTERM with
requests in flight.

Only the Python standard library. Prints "N passed, M failed" and exits
non-zero if anything failed.

Environment:
  EBMD_TESTS=name,...  run only these tests (function names)
  EBMD_WRAP="CMD ..."  run every ebmd under CMD (e.g. valgrind; see
                       scripts/valgrind-daemon.sh); a wrapper that fails
                       ebmd's exit code (--error-exitcode) fails the test
  EBMD_SLOW=N          multiply the bounds on how long ebmd may take to
                       start, answer, log or exit by N (default 1, or 20
                       with EBMD_WRAP); lower bounds stay as they are
"""

import csv
import http.client
import json
import math
import os
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

EBMD, EBMD_TRAIN, DATA_DIR = (os.path.abspath(a) for a in sys.argv[1:4])
THYROID = os.path.join(DATA_DIR, "thyroid.csv")
TOKEN = "s3cret-token"
WRAP = shlex.split(os.environ.get("EBMD_WRAP", ""))
SLOW = float(os.environ.get("EBMD_SLOW", "20" if WRAP else "1"))
# Under sanitizers everything is slower.
START_TIMEOUT = 60.0 * SLOW


def slow(seconds):
    """An upper bound on how long ebmd may take, scaled by EBMD_SLOW."""
    return seconds * SLOW

TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def close(a, b, rel=1e-5, abs_=1e-4):
    return abs(a - b) <= max(abs_, rel * max(abs(a), abs(b)))


# ---------------------------------------------------------------------------
# The daemon under test
# ---------------------------------------------------------------------------

class Daemon:
    """One ebmd process; its stderr is collected line by line."""

    def __init__(self, workdir, name, conf_text, args=(), env_extra=None,
                 nofile=None):
        self.conf = os.path.join(workdir, name + ".conf")
        with open(self.conf, "w") as f:
            f.write(conf_text)
        self.lines = []
        self.cond = threading.Condition()
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        env.pop("JOURNAL_STREAM", None)
        env.pop("WATCHDOG_USEC", None)
        env.pop("WATCHDOG_PID", None)
        env.update(env_extra or {})
        def limits():
            if nofile is not None:  # (soft, hard) open-file limit
                resource.setrlimit(resource.RLIMIT_NOFILE, nofile)
        self.proc = subprocess.Popen(
            [*WRAP, EBMD, "--config", self.conf, *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, cwd=workdir, env=env,
            preexec_fn=limits if nofile is not None else None)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        m = self.wait_log(r"listening on (\S+):(\d+)", 0, START_TIMEOUT)
        self.host, self.port = m.group(1), int(m.group(2))
        self.wait_log(r"ready$", 0, START_TIMEOUT)

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)  # EOF
            self.cond.notify_all()

    def mark(self):
        with self.cond:
            return len(self.lines)

    def wait_log(self, pattern, start=0, timeout=20.0):
        """First line matching pattern at index >= start."""
        rx = re.compile(pattern)
        timeout = slow(timeout)
        deadline = time.time() + timeout
        i = start
        with self.cond:
            while True:
                while i < len(self.lines):
                    line = self.lines[i]
                    i += 1
                    if line is None:
                        raise Failure("ebmd exited while waiting for %r; "
                                      "log:\n%s" % (pattern, self.log()))
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.time()
                if left <= 0:
                    raise Failure("no log line %r within %.0f s; log:\n%s"
                                  % (pattern, timeout, self.log()))
                self.cond.wait(left)

    def log(self):
        with self.cond:
            return "\n".join(l for l in self.lines[-40:] if l is not None)

    def request(self, method, path, body=None, headers=None, timeout=60):
        """(status, headers dict (lower-case keys), body bytes)."""
        conn = http.client.HTTPConnection(self.host, self.port,
                                          timeout=slow(timeout))
        try:
            hdrs = dict(headers or {})
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                hdrs.setdefault("Content-Type", "application/json")
            elif isinstance(body, str):
                body = body.encode()
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            data = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, data
        finally:
            conn.close()

    def json(self, method, path, body=None, headers=None, expect=200):
        status, hdrs, data = self.request(method, path, body, headers)
        check(status == expect, "%s %s: expected %d, got %d: %s"
              % (method, path, expect, status, data[:300]))
        check(hdrs.get("content-type", "").startswith("application/json"),
              "%s %s: Content-Type %r" % (method, path,
                                          hdrs.get("content-type")))
        return json.loads(data)

    def error(self, method, path, body=None, headers=None, status=400,
              code=None, message=None):
        """Expects an error reply with the JSON error body."""
        doc = self.json(method, path, body, headers, expect=status)
        check(set(doc) == {"error"} and set(doc["error"]) == {"code",
                                                               "message"},
              "error body shape: %r" % doc)
        check(re.fullmatch(r"[a-z][a-z0-9_]*", doc["error"]["code"]),
              "code is not snake_case: %r" % doc)
        if code is not None:
            check(doc["error"]["code"] == code,
                  "expected code %s, got %r" % (code, doc))
        if message is not None:
            check(re.search(message, doc["error"]["message"]),
                  "message %r does not match %r"
                  % (doc["error"]["message"], message))
        return doc["error"]

    def metrics(self):
        status, hdrs, data = self.request("GET", "/metrics")
        check(status == 200, "/metrics: %d" % status)
        check(hdrs.get("content-type", "").startswith(
            "text/plain; version=0.0.4"),
              "/metrics Content-Type %r" % hdrs.get("content-type"))
        values = {}
        for line in data.decode().splitlines():
            if line.startswith("#") or not line.strip():
                continue
            key, _, value = line.rpartition(" ")
            values[key] = float(value)
        return values

    def signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self):
        """SIGHUP, then wait until the new catalog is published."""
        start = self.mark()
        self.signal(signal.SIGHUP)
        self.wait_log(r"reload: serving", start)

    def stop(self, timeout=60):
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(slow(timeout))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise Failure("ebmd did not exit within %d s of SIGTERM" % timeout)


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------

WORK = tempfile.mkdtemp(prefix="ebmd-test-")
STORE = os.path.join(WORK, "store")   # trained models, copied from here
os.makedirs(STORE)


def train(out, seed, data=THYROID):
    # small network models (--protos 0): the daemon's mechanics, not
    # detection, are under test, and several tests time heavy requests
    subprocess.run([EBMD_TRAIN, "train", "--data", data, "--out", out,
                    "--hidden", "16,16", "--epochs", "3", "--seed", str(seed),
                    "--protos", "0"],
                   check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def derived_csv(path, header, n_cols):
    """thyroid.csv with another header and/or fewer feature columns."""
    with open(THYROID) as f, open(path, "w", newline="") as g:
        r = csv.reader(f)
        w = csv.writer(g)
        next(r)
        w.writerow(header[:n_cols])
        for row in r:
            w.writerow(row[:n_cols])


def models_dir(name, *models):
    d = os.path.join(WORK, name)
    os.makedirs(d, exist_ok=True)
    for m in models:
        shutil.copy(os.path.join(STORE, m + ".ebm"), os.path.join(d, m
                                                                  + ".ebm"))
    return d


def conf(models, extra_server="", extra=""):
    return ("[server]\nlisten = 127.0.0.1:0\nthreads = 2\nmax_rows = 50\n"
            "max_body_bytes = 65536\n%s\n[models]\ndir = %s\n%s\n"
            % (extra_server, models, extra))


with open(THYROID) as f:
    HEADER = next(csv.reader(f))
    ROWS = [[float(v) for v in row[:6]] for row, _ in
            zip(csv.reader(f), range(400))]
FEATURES = HEADER[:6]
NORMAL = ROWS[:5]
FAR = [[5.0, 1.0, 1.0, 1.0, 1.0, 1.0], [-3.0, 2.5, 0.5, -1.0, 4.0, 0.0]]

print("training models in", WORK, flush=True)
train(os.path.join(STORE, "thy.ebm"), 1)
train(os.path.join(STORE, "thy2.ebm"), 2)
train(os.path.join(STORE, "thy3.ebm"), 3)
derived_csv(os.path.join(WORK, "five.csv"), HEADER, 5)
train(os.path.join(STORE, "five.ebm"), 1, os.path.join(WORK, "five.csv"))
derived_csv(os.path.join(WORK, "renamed.csv"),
            ["g%d" % i for i in range(6)], 6)
train(os.path.join(STORE, "renamed.ebm"), 1, os.path.join(WORK,
                                                          "renamed.csv"))

MAIN_DIR = models_dir("models", "thy", "thy2", "five", "renamed")
MAIN = Daemon(WORK, "main", conf(MAIN_DIR, extra="""
[compose.both]
models = thy, thy2
weights = 1, 0.5
"""))


def score(d, model, rows, **kw):
    body = {"instances": rows}
    body.update(kw)
    return d.json("POST", "/v1/models/%s/score" % model, body)


# ---------------------------------------------------------------------------
# Health and metadata
# ---------------------------------------------------------------------------

@test
def health_and_ready():
    check(MAIN.json("GET", "/healthz") == {"status": "ok"}, "healthz body")
    # Four model files; the composition is not counted.
    check(MAIN.json("GET", "/readyz") == {"status": "ready", "models": 4},
          "readyz body")
    status, _, body = MAIN.request("HEAD", "/healthz")
    check(status == 200 and body == b"", "HEAD /healthz")


@test
def model_info():
    info = MAIN.json("GET", "/v1/models/thy")
    for key in ("name", "version", "features", "feature_names", "alpha",
                "reference_size", "objective", "hidden", "created",
                "checksum", "loaded_at"):
        check(key in info, "model info lacks %s: %r" % (key, info))
    check(info["name"] == "thy", "name")
    check(info["version"] == info["checksum"][:12], "version")
    check(re.fullmatch(r"[0-9a-f]{32}", info["checksum"]), "checksum")
    check(info["features"] == 6 and info["feature_names"] == FEATURES,
          "features %r" % info)
    check(0 < info["alpha"] < 1, "alpha")
    check(info["hidden"] == [16, 16], "hidden")
    iso = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
    check(re.fullmatch(iso, info["created"]), "created")
    check(re.fullmatch(iso, info["loaded_at"]), "loaded_at")
    listing = MAIN.json("GET", "/v1/models")
    names = [m["name"] for m in listing["models"]]
    check(sorted(names) == ["both", "five", "renamed", "thy", "thy2"],
          "listing %r" % names)
    check([m for m in listing["models"] if m["name"] == "thy"][0] == info,
          "listing and single info differ")


@test
def composition_info():
    info = MAIN.json("GET", "/v1/models/both")
    thy = MAIN.json("GET", "/v1/models/thy")
    thy2 = MAIN.json("GET", "/v1/models/thy2")
    check(info["objective"] == "product", "objective")
    check(info["models"] == ["thy", "thy2"], "models")
    check(info["weights"] == [1, 0.5], "weights")
    check(info["hidden"] == [], "hidden")
    check(info["features"] == 6, "features")
    check(info["reference_size"] == thy["reference_size"]
          + thy2["reference_size"], "union reference set")
    check(info["alpha"] == min(thy["alpha"], thy2["alpha"]), "alpha")


# ---------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------

@test
def score_positional_and_named():
    a = score(MAIN, "thy", NORMAL + FAR)
    check(a["model"] == "thy", "model")
    check(a["version"] == MAIN.json("GET", "/v1/models/thy")["version"],
          "version")
    check(len(a["results"]) == len(NORMAL) + len(FAR), "one result per row")
    for r in a["results"]:
        check(set(r) == {"energy", "score", "p_value", "anomaly"},
              "result keys %r" % r)
        check(0 < r["p_value"] <= 1, "p_value range")
        check(r["anomaly"] == (r["p_value"] < a["alpha"]), "anomaly flag")
    check(all(r["anomaly"] for r in a["results"][len(NORMAL):]),
          "far rows flagged: %r" % a["results"][len(NORMAL):])
    named = [dict(zip(FEATURES, row)) for row in NORMAL + FAR]
    named[0] = dict(reversed(list(named[0].items())))  # any key order
    b = score(MAIN, "thy", named)
    check(a["results"] == b["results"], "named rows score differently")
    mixed = score(MAIN, "thy", [NORMAL[0], named[1]])
    check(mixed["results"] == a["results"][:2], "mixed rows")


@test
def score_alpha():
    a = score(MAIN, "thy", FAR, alpha=0.5)
    check(a["alpha"] == 0.5, "request alpha in force")
    info = MAIN.json("GET", "/v1/models/thy")
    check(score(MAIN, "thy", FAR)["alpha"] == info["alpha"], "file alpha")


@test
def explain_sums_to_score():
    rows = NORMAL[:3] + FAR
    out = score(MAIN, "thy", rows, explain=True)
    for row, r in zip(rows, out["results"]):
        c = r["contributions"]
        check(len(c) == 6, "one contribution per feature")
        check(abs(sum(c) - r["score"]) <= max(0.01 * abs(r["score"]), 1e-3),
              "contributions sum %g, score %g" % (sum(c), r["score"]))
    plain = score(MAIN, "thy", rows)
    check("contributions" not in plain["results"][0], "no explain")
    both = score(MAIN, "both", FAR, explain=True)
    for r in both["results"]:
        check(abs(sum(r["contributions"]) - r["score"])
              <= max(0.01 * abs(r["score"]), 1e-3), "product explain")


@test
def missing_values():
    """API.md section 6: null features are profiled out."""
    rows = NORMAL[:3] + FAR
    plain = score(MAIN, "thy", rows)
    holed = [list(r) for r in rows]
    holed[1][2] = None
    holed[3][0] = None
    holed[3][4] = None
    out = score(MAIN, "thy", holed)
    for i in (0, 2, 4):
        check(out["results"][i] == plain["results"][i],
              "row %d without null changed: %r" % (i, out["results"][i]))
    for i, missing in ((1, [2]), (3, [0, 4])):
        r = out["results"][i]
        check(set(r) == {"energy", "score", "p_value", "anomaly", "missing",
                         "imputed"}, "result keys %r" % r)
        check(r["missing"] == missing, "missing %r" % r)
        check(len(r["imputed"]) == len(missing)
              and all(math.isfinite(v) for v in r["imputed"]),
              "imputed %r" % r)
        check(0 < r["p_value"] <= 1, "p_value range")
        check(r["anomaly"] == (r["p_value"] < out["alpha"]), "anomaly")
        # energy and score are those of the completed row.
        done = list(holed[i])
        for j, v in zip(r["missing"], r["imputed"]):
            done[j] = v
        full = score(MAIN, "thy", [done])["results"][0]
        check(close(full["energy"], r["energy"], 1e-4, 1e-3)
              and close(full["score"], r["score"], 1e-4, 1e-3),
              "completed row scores %r, holed row %r" % (full, r))
    # The same answer for named rows and through the jansson path alone.
    named = dict(zip(FEATURES, holed[1]))
    again = score(MAIN, "thy", [named, holed[1]])["results"]
    # Named and positional in one request: the same bits. Across requests
    # of other sizes BLAS may sum in another order (last bits only).
    check(again[0] == again[1], "named and positional holed row differ: %r"
          % again)
    ref = out["results"][1]
    check(again[0]["missing"] == ref["missing"]
          and all(close(again[0][k], ref[k], 1e-5, 1e-5)
                  for k in ("energy", "score"))
          and all(close(a, b, 1e-5, 1e-5)
                  for a, b in zip(again[0]["imputed"], ref["imputed"])),
          "holed row in another batch differs: %r vs %r" % (again[0], ref))
    # A missing feature leaves the far row far: the other features decide.
    check(out["results"][3]["anomaly"], "far row with holes not flagged")
    # Explanations of the completed row still sum to score.
    ex = score(MAIN, "thy", holed, explain=True)["results"]
    for r in ex:
        c = r["contributions"]
        check(len(c) == 6 and abs(sum(c) - r["score"])
              <= max(0.01 * abs(r["score"]), 1e-3),
              "contributions %r, score %g" % (c, r["score"]))
    check(ex[1]["imputed"] == out["results"][1]["imputed"], "explain imputes")
    # Compositions, ad hoc and configured.
    comp = MAIN.json("POST", "/v1/score", {"models": ["thy", "thy2"],
                                           "instances": holed[:2]})
    check(comp["results"][1]["missing"] == [2], "ad-hoc product %r" % comp)
    both = score(MAIN, "both", holed[:2])["results"]
    check(both[1]["missing"] == [2] and "missing" not in both[0],
          "configured product %r" % both)
    # Every feature missing: 422 naming the row; absent is not null.
    MAIN.error("POST", "/v1/models/thy/score",
               {"instances": [NORMAL[0], [None] * 6]}, status=422,
               code="all_missing", message=r"^instances\[1\]")
    partial = dict(named)
    del partial[FEATURES[0]]
    MAIN.error("POST", "/v1/models/thy/score", {"instances": [partial]},
               status=422, code="missing_feature")


@test
def repair():
    rows = FAR + NORMAL[:2]
    out = MAIN.json("POST", "/v1/models/thy/repair",
                    {"instances": rows, "steps": 100, "step_size": 0.1,
                     "fixed": [0, "f3"]})
    check(out["model"] == "thy", "model")
    check(len(out["results"]) == len(rows), "one result per row")
    moved = False
    for row, r in zip(rows, out["results"]):
        for key in ("repaired", "delta", "energy_before", "energy_after",
                    "p_value_before", "p_value_after"):
            check(key in r, "repair lacks %s" % key)
        check(r["energy_after"] <= r["energy_before"],
              "energy rose: %r" % r)
        check(r["p_value_after"] >= r["p_value_before"], "p_value fell")
        for j in (0, 3):
            check(r["delta"][j] == 0 and close(r["repaired"][j], row[j],
                                               1e-6, 1e-6),
                  "fixed feature %d moved: %r" % (j, r))
        for j in range(6):
            check(close(r["repaired"][j] - row[j], r["delta"][j], 1e-4,
                        1e-4), "delta != repaired - instance")
        moved |= r["energy_after"] < r["energy_before"]
    check(moved, "no row improved")
    # Defaults apply without steps/step_size/fixed.
    d = MAIN.json("POST", "/v1/models/both/repair", {"instances": FAR})
    check(all(r["energy_after"] <= r["energy_before"]
              for r in d["results"]), "product repair")


@test
def composition_arithmetic():
    e1 = [r["energy"] for r in score(MAIN, "thy", NORMAL + FAR)["results"]]
    e2 = [r["energy"] for r in score(MAIN, "thy2", NORMAL + FAR)["results"]]
    adhoc = MAIN.json("POST", "/v1/score",
                      {"models": ["thy", "thy2"], "weights": [1, 0.5],
                       "instances": NORMAL + FAR})
    check(adhoc["models"] == ["thy", "thy2"] and "model" not in adhoc,
          "models instead of model")
    for a, b, p in zip(e1, e2, adhoc["results"]):
        check(close(p["energy"], a + 0.5 * b),
              "product energy %g != %g + 0.5 * %g" % (p["energy"], a, b))
    named = score(MAIN, "both", NORMAL + FAR)
    check(named["model"] == "both", "named composition")
    for p, q in zip(adhoc["results"], named["results"]):
        check(close(p["energy"], q["energy"]) and close(p["score"],
                                                         q["score"]),
              "named and ad-hoc compositions differ")
    check(named["version"] == adhoc["version"], "same product, same version")
    # Default weights are all 1.
    ones = MAIN.json("POST", "/v1/score", {"models": ["thy", "thy2"],
                                           "instances": FAR})
    for a, b, p in zip(e1[len(NORMAL):], e2[len(NORMAL):], ones["results"]):
        check(close(p["energy"], a + b), "default weights")


# ---------------------------------------------------------------------------
# Errors: every status code, its body, and the precedence
# ---------------------------------------------------------------------------

@test
def errors_400():
    p = "/v1/models/thy/score"
    MAIN.error("POST", p, "{not json", {"Content-Type": "application/json"},
               400, "invalid_json")
    MAIN.error("POST", p, "", {"Content-Type": "application/json"}, 400,
               "invalid_json")
    MAIN.error("POST", p, {"rows": [NORMAL[0]]}, status=400,
               code="missing_field", message=r"^instances")
    MAIN.error("POST", p, {"instances": "x"}, status=400, code="wrong_type")
    # null is a missing feature in score rows (missing_values) and a 400
    # everywhere else.
    MAIN.error("POST", "/v1/models/thy/repair",
               {"instances": [[1, 2, None, 4, 5, 6]]},
               status=400, message=r"instances\[0\]\[2\]")
    MAIN.error("POST", p, {"instances": [NORMAL[0]], "alpha": None},
               status=400, message="^alpha")
    MAIN.error("POST", "/v1/score", {"models": ["thy"], "weights": [None],
                                     "instances": [NORMAL[0]]},
               status=400, message=r"^weights\[0\]")
    MAIN.error("POST", p, {"instances": [[1, 2, 3, 4, 5, "6"]]},
               status=400, message=r"instances\[0\]\[5\]")
    MAIN.error("POST", p, {"instances": [NORMAL[0], [1, 2, 3, 4, 5, "NaN"]]},
               status=400, message=r"instances\[1\]\[5\]")
    MAIN.error("POST", p, '{"instances": [[1, 2, 3, 4, 5, 1e39]]}',
               {"Content-Type": "application/json"}, 400,
               message=r"instances\[0\]\[5\].*32-bit float")
    MAIN.error("POST", p, '{"instances": [[1, 2, 3, 4, 5, 1e999]]}',
               {"Content-Type": "application/json"}, 400)
    MAIN.error("POST", p, {"instances": [NORMAL[0]], "alpha": "0.1"},
               status=400, message="^alpha")
    MAIN.error("POST", p, {"instances": [NORMAL[0]], "explain": "yes"},
               status=400, message="^explain")
    MAIN.error("POST", "/v1/models/thy/repair",
               {"instances": [NORMAL[0]], "steps": 2.5}, status=400,
               message="^steps")
    MAIN.error("POST", "/v1/score", {"instances": [NORMAL[0]]}, status=400,
               code="missing_field", message="^models")


@test
def errors_404_405():
    MAIN.error("GET", "/nope", status=404, code="not_found")
    MAIN.error("GET", "/v1/models/", status=404, code="not_found")
    MAIN.error("POST", "/v1/models/thy/explode", {"instances": [[1]]},
               status=404, code="not_found")
    e = MAIN.error("GET", "/v1/models/nope", status=404)
    check(e["code"] != "not_found" or "nope" in e["message"],
          "unknown model message")
    check("nope" in e["message"], "names the model")
    MAIN.error("POST", "/v1/models/nope/score", {"instances": [NORMAL[0]]},
               status=404, message="nope")
    MAIN.error("POST", "/v1/score", {"models": ["thy", "nope"],
                                     "instances": [NORMAL[0]]},
               status=404, message=r"models\[1\].*nope")
    for method, path, allow in (
            ("POST", "/healthz", "GET"), ("DELETE", "/v1/models", "GET"),
            ("GET", "/v1/models/thy/score", "POST"),
            ("PUT", "/v1/score", "POST"), ("POST", "/v1/models/thy", "GET"),
            ("PATCH", "/metrics", "GET")):
        status, hdrs, body = MAIN.request(method, path)
        check(status == 405, "%s %s: %d" % (method, path, status))
        check(allow in hdrs.get("allow", ""), "%s %s: Allow %r"
              % (method, path, hdrs.get("allow")))
        check(json.loads(body)["error"]["code"] == "method_not_allowed",
              "405 body")


@test
def errors_413_415():
    p = "/v1/models/thy/score"
    MAIN.error("POST", p, {"instances": [NORMAL[0]] * 51}, status=413,
               message="51 rows")
    MAIN.json("POST", p, {"instances": [NORMAL[0]] * 50})
    big = json.dumps({"instances": [NORMAL[0]] * 10,
                      "pad": "x" * 70000})
    MAIN.error("POST", p, big, {"Content-Type": "application/json"}, 413)
    # Far beyond the limit: refused without being read (any body), JSON.
    MAIN.error("POST", p, "x" * 400000, {"Content-Type": "application/json"},
               413, "body_too_large")
    MAIN.error("POST", p, json.dumps({"instances": [NORMAL[0]]}),
               {"Content-Type": "text/plain"}, 415,
               "unsupported_media_type")
    MAIN.error("POST", p, json.dumps({"instances": [NORMAL[0]]}),
               {"Content-Type": "application/x-www-form-urlencoded"}, 415)
    MAIN.json("POST", p, json.dumps({"instances": [NORMAL[0]]}),
              {"Content-Type": "application/json; charset=utf-8"})
    MAIN.json("POST", p, json.dumps({"instances": [NORMAL[0]]}))  # none


@test
def errors_422():
    p = "/v1/models/thy/score"
    MAIN.error("POST", p, {"instances": [NORMAL[0], [1, 2, 3]]}, status=422,
               message=r"^instances\[1\]: expected 6 features, got 3")
    row = dict(zip(FEATURES, NORMAL[0]))
    MAIN.error("POST", p, {"instances": [dict(row, bogus=1)]}, status=422,
               message="bogus")
    del row["f2"]
    MAIN.error("POST", p, {"instances": [row]}, status=422, message="f2")
    MAIN.error("POST", p, {"instances": []}, status=422,
               code="empty_instances")
    for alpha in (0, 1, -0.1, 2):
        MAIN.error("POST", p, {"instances": [NORMAL[0]], "alpha": alpha},
                   status=422, message="^alpha")
    r = "/v1/models/thy/repair"
    for steps in (0, 1001):
        MAIN.error("POST", r, {"instances": [NORMAL[0]], "steps": steps},
                   status=422, message="^steps")
    for size in (0, -1, 1.5):
        MAIN.error("POST", r, {"instances": [NORMAL[0]], "step_size": size},
                   status=422, message="^step_size")
    MAIN.error("POST", r, {"instances": [NORMAL[0]], "fixed": [6]},
               status=422, message=r"^fixed\[0\]")
    MAIN.error("POST", r, {"instances": [NORMAL[0]], "fixed": ["zz"]},
               status=422, message="zz")
    s = "/v1/score"
    MAIN.error("POST", s, {"models": ["thy", "thy2"], "weights": [1, 0],
                           "instances": [NORMAL[0]]}, status=422,
               message=r"^weights\[1\]")
    MAIN.error("POST", s, {"models": ["thy"], "weights": [-1],
                           "instances": [NORMAL[0]]}, status=422)
    MAIN.error("POST", s, {"models": ["thy", "thy2"], "weights": [1],
                           "instances": [NORMAL[0]]}, status=422)
    MAIN.error("POST", s, {"models": [], "instances": [NORMAL[0]]},
               status=422)
    MAIN.error("POST", s, {"models": ["thy", "five"],
                           "instances": [NORMAL[0]]}, status=422,
               code="incompatible_models")
    MAIN.error("POST", s, {"models": ["thy", "renamed"],
                           "instances": [NORMAL[0]]}, status=422,
               code="incompatible_models")
    # A model may appear once (API.md); 64 times "thy" used to be scored.
    MAIN.error("POST", s, {"models": ["thy", "thy2", "thy"],
                           "instances": [NORMAL[0]]}, status=422,
               code="duplicate_model", message=r"^models\[2\]: 'thy'")
    MAIN.error("POST", s, {"models": ["thy"] * 64,
                           "instances": [NORMAL[0]]}, status=422,
               code="duplicate_model")
    # The rows are checked before the product's reference set is scored:
    # a weight of 1e38 makes every reference energy overflow, but the
    # short row is what the answer names.
    MAIN.error("POST", s, {"models": ["thy", "thy2"], "weights": [1e38, 1],
                           "instances": [[1, 2, 3]]}, status=422,
               code="wrong_feature_count")
    MAIN.error("POST", s, {"models": ["thy", "thy2"], "weights": [1e38, 1],
                           "instances": [NORMAL[0]]}, status=422,
               code="invalid_models", message="not finite")


@test
def precedence():
    # 404 (path) before 405
    status, _, _ = MAIN.request("DELETE", "/nope")
    check(status == 404, "404 path before 405: %d" % status)
    # 413 (rows) before 415 before 400
    MAIN.error("POST", "/v1/models/thy/score",
               json.dumps({"instances": [[1]] * 51}),
               {"Content-Type": "text/plain"}, 413)
    MAIN.error("POST", "/v1/models/thy/score", "{bad",
               {"Content-Type": "text/plain"}, 415)
    # 400 before 404 (model) before 422
    MAIN.error("POST", "/v1/models/nope/score", "{bad",
               {"Content-Type": "application/json"}, 400)
    MAIN.error("POST", "/v1/models/nope/score", {"instances": []},
               status=404)
    MAIN.error("POST", "/v1/score", {"models": ["nope"], "weights": [-1],
                                     "instances": []}, status=404)


# ---------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------

@test
def metrics_move():
    before = MAIN.metrics()
    score(MAIN, "thy", NORMAL + FAR)
    MAIN.error("POST", "/v1/models/thy/score", {"instances": []},
               status=422)
    after = MAIN.metrics()
    rows = 'ebmd_rows_scored_total{model="thy"}'
    anom = 'ebmd_anomalies_total{model="thy"}'
    ok = ('ebmd_requests_total{endpoint="/v1/models/{name}/score",'
          'code="200"}')
    bad = ('ebmd_requests_total{endpoint="/v1/models/{name}/score",'
           'code="422"}')
    count = ('ebmd_request_duration_seconds_count'
             '{endpoint="/v1/models/{name}/score"}')
    check(after[rows] - before.get(rows, 0) == len(NORMAL + FAR),
          "rows scored")
    check(after[anom] - before.get(anom, 0) >= len(FAR), "anomalies")
    check(after[ok] - before.get(ok, 0) == 1, "requests_total 200")
    check(after[bad] - before.get(bad, 0) == 1, "requests_total 422")
    check(after[count] - before[count] == 2, "histogram count")
    inf = ('ebmd_request_duration_seconds_bucket'
           '{endpoint="/v1/models/{name}/score",le="+Inf"}')
    check(after[inf] == after[count], "+Inf bucket == count")
    check('ebmd_request_duration_seconds_sum'
          '{endpoint="/v1/models/{name}/score"}' in after, "histogram sum")
    check(after["ebmd_models_loaded"] == 4, "models_loaded")
    check(after['ebmd_model_reloads_total{result="ok"}'] >= 4, "reloads ok")
    check('ebmd_model_reloads_total{result="error"}' in after,
          "reloads error")


# ---------------------------------------------------------------------------
# Authentication
# ---------------------------------------------------------------------------

@test
def auth_token():
    token_file = os.path.join(WORK, "token")
    with open(token_file, "w") as f:
        f.write("  %s \nsecond line ignored\n" % TOKEN)
    os.chmod(token_file, 0o600)
    empty = models_dir("empty-auth")
    d = Daemon(WORK, "auth", conf(
        models_dir("auth-models", "thy"),
        "auth_token_file = %s" % token_file))
    e = Daemon(WORK, "auth-empty", conf(empty,
                                        "auth_token_file = %s" % token_file))
    try:
        good = {"Authorization": "Bearer " + TOKEN}
        d.error("GET", "/v1/models", status=401, code="unauthorized")
        status, hdrs, _ = d.request("GET", "/v1/models")
        check("bearer" in hdrs.get("www-authenticate", "").lower(),
              "WWW-Authenticate")
        d.error("GET", "/v1/models",
                headers={"Authorization": "Bearer wrong"}, status=401)
        d.error("GET", "/v1/models",
                headers={"Authorization": "Bearer " + TOKEN + "x"},
                status=401)
        d.error("GET", "/v1/models",
                headers={"Authorization": "Basic " + TOKEN}, status=401)
        d.error("POST", "/v1/models/thy/score", {"instances": [NORMAL[0]]},
                status=401)
        d.json("GET", "/v1/models", headers=good)
        d.json("POST", "/v1/models/thy/score", {"instances": [NORMAL[0]]},
               headers=good)
        # health and metrics stay open
        d.json("GET", "/healthz")
        d.json("GET", "/readyz")
        d.metrics()
        # 404 path and 405 before 401
        d.error("GET", "/v1/nothing", status=404)
        status, _, _ = d.request("GET", "/v1/score")
        check(status == 405, "405 before 401: %d" % status)
        # 401 before 503, 503 before 413
        e.error("GET", "/v1/models", status=401)
        e.error("GET", "/v1/models", headers=good, status=503)
        e.error("POST", "/v1/models/thy/score",
                {"instances": [[1]] * 51}, headers=good, status=503)
        check(TOKEN not in d.log() and TOKEN not in e.log(),
              "the token was logged")
        check("auth_token_file" not in d.log(),
              "a warning about a token file of mode 0600:\n" + d.log())
    finally:
        check(d.stop() == 0, "auth daemon exit code")
        check(e.stop() == 0, "auth-empty daemon exit code")


@test
def token_file_mode_warning():
    """A token file that group or others can access is warned about at
    start-up and on every reload while it stays so; never the token."""
    token_file = os.path.join(WORK, "token-loose")
    with open(token_file, "w") as f:
        f.write(TOKEN + "\n")
    os.chmod(token_file, 0o644)
    warn = (r"warn.*\[server\] auth_token_file '%s' has mode %%s: group or "
            r"others can access it" % re.escape(token_file))
    d = Daemon(WORK, "token-mode", conf(models_dir("token-mode", "thy"),
                                        "auth_token_file = %s" % token_file))
    try:
        d.wait_log(warn % "0644", 0, 1)
        good = {"Authorization": "Bearer " + TOKEN}
        d.json("GET", "/v1/models", headers=good)
        # Fixed: no warning on reload.
        os.chmod(token_file, 0o600)
        start = d.mark()
        d.reload()
        with d.cond:
            after = [l for l in d.lines[start:] if l is not None]
        check(not any("auth_token_file" in l for l in after),
              "warning after chmod 600: %r" % after)
        # Group-writable is as bad as readable.
        os.chmod(token_file, 0o620)
        start = d.mark()
        d.reload()
        d.wait_log(warn % "0620", start, 1)
        d.json("GET", "/v1/models", headers=good)
        check(TOKEN not in d.log(), "the token was logged")
    finally:
        check(d.stop() == 0, "token-mode daemon exit code")
    # --check-config says so too, on stderr.
    code, out, err = run_ebmd("--config", d.conf, "--check-config")
    check(code == 0 and re.search(warn % "0620", err),
          "--check-config: %d %r" % (code, err))
    check(TOKEN not in out + err, "--check-config printed the token")


# ---------------------------------------------------------------------------
# Slow and hostile clients
# ---------------------------------------------------------------------------

def raw_connect(d):
    return socket.create_connection((d.host, d.port), timeout=slow(10))


def closed_by_server(sock, timeout):
    """Seconds until the server closes sock (reads and drops what it
    sends), or None if it is still open after timeout."""
    t0 = time.time()
    sock.settimeout(0.05)
    while time.time() - t0 < slow(timeout):
        try:
            if sock.recv(65536) == b"":
                return time.time() - t0
        except socket.timeout:
            continue
        except OSError:  # reset
            return time.time() - t0
    return None


def read_response(sock, timeout=10):
    """(status, headers dict, body) of one HTTP response on a raw socket;
    the server closes the connection after it."""
    sock.settimeout(slow(timeout))
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d+) ", lines[0]) if lines else None
    check(m, "no HTTP status line in %r" % data[:200])
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return int(m.group(1)), hdrs, body


def sent_slowly(sock, data, interval, stop):
    """Sends data one byte per interval until done, stop is set, or the
    server closes."""
    for i in range(len(data)):
        if stop.is_set():
            return
        try:
            sock.send(data[i:i + 1])
        except OSError:
            return
        stop.wait(interval)


@test
def idle_and_slow_connections_do_not_block():
    """220 idle connections and 20 sending one byte a second leave a
    normal client's requests as prompt as ever."""
    d = Daemon(WORK, "crowd", conf(
        models_dir("crowd", "thy"),
        "request_timeout_ms = 5000\nidle_timeout_ms = 5000"))
    idle, trickling, threads = [], [], []
    stop = threading.Event()
    try:
        body = {"instances": [NORMAL[0]]}
        base = d.json("POST", "/v1/models/thy/score", body)
        for _ in range(220):
            idle.append(raw_connect(d))
        partial = (b"POST /v1/models/thy/score HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Type: application/json\r\n")
        for _ in range(20):
            s = raw_connect(d)
            trickling.append(s)
            t = threading.Thread(target=sent_slowly,
                                 args=(s, partial, 1.0, stop), daemon=True)
            t.start()
            threads.append(t)
        # The daemon counts them from accept, idle or not.
        deadline = time.time() + slow(10)
        while True:
            n_open = d.metrics()["ebmd_connections_open"]
            if n_open >= 241 or time.time() > deadline:
                break
            time.sleep(0.05)
        check(n_open >= 241, "ebmd_connections_open %r, wanted >= 241"
              % n_open)
        worst = 0.0
        for _ in range(30):
            t0 = time.time()
            doc = d.json("POST", "/v1/models/thy/score", body)
            worst = max(worst, time.time() - t0)
            check(doc["results"] == base["results"], "a different answer")
        print("     240 bad connections open: worst of 30 requests %.3f s"
              % worst)
        check(worst < slow(0.5), "a request took %.3f s" % worst)
        check(d.proc.poll() is None, "ebmd died")
    finally:
        stop.set()
        for s in idle + trickling:
            s.close()
        for t in threads:
            t.join()
        check(d.stop() == 0, "crowd daemon exit code")


@test
def slow_request_dropped_after_request_timeout():
    """A request must be read completely within request_timeout_ms from
    its first byte, however the bytes trickle in (line, headers or body);
    an idle connection is governed by idle_timeout_ms instead."""
    d = Daemon(WORK, "slow", conf(
        models_dir("slow", "thy"),
        "request_timeout_ms = 1000\nidle_timeout_ms = 2500"))
    stop = threading.Event()
    try:
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 200
        s1 = raw_connect(d)
        body_req = (b"POST /v1/models/thy/score HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Type: application/json\r\n"
                    b"Content-Length: 300\r\n\r\n")
        s2 = raw_connect(d)
        s2.sendall(body_req)
        s3 = raw_connect(d)  # sends nothing
        t1 = threading.Thread(target=sent_slowly,
                              args=(s1, head, 0.25, stop), daemon=True)
        t2 = threading.Thread(target=sent_slowly,
                              args=(s2, b" " * 300, 0.25, stop), daemon=True)
        t1.start()
        t2.start()
        results = {}

        def watch(name, sock, timeout):
            results[name] = closed_by_server(sock, timeout)

        ws = [threading.Thread(target=watch, args=a) for a in
              (("headers", s1, 5), ("body", s2, 5), ("idle", s3, 5))]
        for w in ws:
            w.start()
        for w in ws:
            w.join()
        stop.set()
        t1.join()
        t2.join()
        for name in ("headers", "body"):
            t = results[name]
            check(t is not None and 0.8 <= t <= slow(2.0),
                  "slow %s: closed after %r s, wanted about 1 s"
                  % (name, t))
        t = results["idle"]
        check(t is not None and 2.2 <= t <= slow(4.0),
              "idle: closed after %r s, wanted about 2.5 s" % t)
        m = d.metrics()
        check(m['ebmd_connections_dropped_total{reason="request_timeout"}']
              == 2 and
              m['ebmd_connections_dropped_total{reason="idle_timeout"}'] == 1,
              "drop counters: %r" % {k: v for k, v in m.items()
                                     if "dropped" in k})
        # A normal client on a keep-alive connection is not affected.
        conn = http.client.HTTPConnection(d.host, d.port, timeout=10)
        for _ in range(3):
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            data = r.read()
            check(r.status == 200 and json.loads(data) == {"status": "ok"},
                  "keep-alive request: %d %r" % (r.status, data))
        conn.close()
        for sock in (s1, s2, s3):
            sock.close()
    finally:
        stop.set()
        check(d.stop() == 0, "slow daemon exit code")


@test
def long_answer_not_charged_to_neighbours():
    """While one worker is blocked in a long answer it reads nothing; a
    request that was arriving meanwhile is not dropped for it."""
    d = Daemon(WORK, "blocked", conf(
        models_dir("blocked", "thy"),
        "threads = 1\nrequest_timeout_ms = %d" % int(150 * SLOW))
        .replace("threads = 2\n", "")
        .replace("max_rows = 50", "max_rows = 10000")
        .replace("max_body_bytes = 65536", "max_body_bytes = 67108864"))
    try:
        heavy = json.dumps({"instances": (ROWS * 25)[:10000 if SLOW == 1
                                                    else 1000],
                            "explain": True})
        body = json.dumps({"instances": (ROWS * 10)[:4000]}).encode()
        a = raw_connect(d)
        a.sendall(b"POST /v1/models/thy/score HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/json\r\nConnection: close\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body))
        b_result = []
        tb = threading.Thread(target=lambda: b_result.append(d.request(
            "POST", "/v1/models/thy/score", heavy,
            {"Content-Type": "application/json"})[0]))
        tb.start()
        # The heavy request is read within milliseconds; its answer takes
        # far longer than request_timeout_ms, and meanwhile the rest of
        # the first request arrives.
        time.sleep(0.05)
        ta = threading.Thread(target=a.sendall, args=(body,))
        ta.start()
        status, _, data = read_response(a, 120)
        ta.join()
        tb.join()
        a.close()
        check(status == 200 and len(json.loads(data)["results"]) == 4000,
              "the request arriving during the long answer: %d" % status)
        check(b_result == [200], "the long answer: %r" % b_result)
        m = d.metrics()
        check(m['ebmd_connections_dropped_total{reason="request_timeout"}']
              == 0, "a request_timeout drop")
    finally:
        check(d.stop() == 0, "blocked daemon exit code")


@test
def unread_response_dropped():
    """A client that stops reading its responses is dropped once they have
    made no progress for request_timeout_ms (more than the socket buffers
    hold: seven pipelined requests of 10000 rows, about 6 MB)."""
    d = Daemon(WORK, "unread", conf(
        models_dir("unread", "thy"),
        "request_timeout_ms = 800").replace("max_rows = 50",
                                            "max_rows = 10000")
        .replace("max_body_bytes = 65536", "max_body_bytes = 67108864"))
    try:
        body = json.dumps({"instances": (ROWS * 25)[:10000]}).encode()
        req = (b"POST /v1/models/thy/score HTTP/1.1\r\nHost: x\r\n"
               b"Content-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body) + body)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect((d.host, d.port))

        def send():
            try:
                s.sendall(req * 7)
            except OSError:
                pass  # dropped while sending: fine

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        key = 'ebmd_connections_dropped_total{reason="write_timeout"}'
        deadline = time.time() + slow(60)
        while d.metrics()[key] == 0 and time.time() < deadline:
            time.sleep(0.2)
        check(d.metrics()[key] == 1, "no write_timeout drop within 60 s")
        data = b""
        s.settimeout(10)
        while True:
            try:
                chunk = s.recv(1 << 20)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
        s.close()
        sender.join(10)
        n = data.count(b"HTTP/1.1 200 OK")
        check(1 <= n < 7, "%d of the 7 responses started" % n)
        # A client that reads is not affected.
        doc = d.json("POST", "/v1/models/thy/score", body.decode())
        check(len(doc["results"]) == 10000, "10000 results")
    finally:
        check(d.stop() == 0, "unread daemon exit code")


@test
def header_and_body_limits():
    """Request line and headers over max_header_bytes: a JSON 431 and the
    connection closed; at the limit: served. Bodies over max_body_bytes:
    a JSON 413 (read up to the hard cap, refused from the head beyond)."""
    d = Daemon(WORK, "limits", conf(models_dir("limits", "thy"),
                                    "max_header_bytes = 4096"))
    try:
        # Far over: 64 KiB of one header.
        s = raw_connect(d)
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "
                      + b"a" * 65536 + b"\r\n\r\n")
        except OSError:
            pass  # closed while sending: allowed
        status, hdrs, body = read_response(s)
        s.close()
        check(status == 431, "64 KiB header: %d" % status)
        check(hdrs.get("connection") == "close"
              and hdrs.get("content-type") == "application/json",
              "431 headers %r" % hdrs)
        err = json.loads(body)["error"]
        check(err["code"] == "headers_too_large"
              and "max_header_bytes (4096 bytes)" in err["message"],
              "431 body %r" % err)
        # Many small headers count as much as one big one.
        s = raw_connect(d)
        s.sendall(b"GET /healthz HTTP/1.1\r\n"
                  + b"".join(b"X-H%d: v\r\n" % i for i in range(1000))
                  + b"\r\n")
        status, _, _ = read_response(s)
        s.close()
        check(status == 431, "1000 headers: %d" % status)
        # Exactly at the limit (line ends included) is served; one byte
        # more is not.
        line = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
        pad = 4096 - len(line) - len(b"X: \r\n\r\n")
        for extra, want in ((0, 200), (1, 431)):
            s = raw_connect(d)
            s.sendall(line + b"X: " + b"a" * (pad + extra) + b"\r\n\r\n")
            s.shutdown(socket.SHUT_WR)
            status, _, _ = read_response(s)
            s.close()
            check(status == want, "headers of %d bytes: %d, wanted %d"
                  % (4096 + extra, status, want))
        # Bodies: max_body_bytes is 65536 in these tests.
        p = "/v1/models/thy/score"
        doc = json.dumps({"instances": [NORMAL[0]]})
        exact = doc[:-1] + " " * (65536 - len(doc)) + "}"
        check(len(exact) == 65536, "test body size")
        d.json("POST", p, exact, {"Content-Type": "application/json"})
        d.error("POST", p, exact + " ", {"Content-Type": "application/json"},
                413, "body_too_large", "65537 bytes")
        d.error("POST", p, "x" * 400000, {"Content-Type": "application/json"},
                413, "body_too_large", "declares 400000 bytes")
        m = d.metrics()
        check(m['ebmd_connections_dropped_total{reason="headers_too_large"}']
              == 3, "431 counter %r"
              % m['ebmd_connections_dropped_total{reason="headers_too_large"}'])
        check(d.proc.poll() is None, "ebmd died")
    finally:
        check(d.stop() == 0, "limits daemon exit code")


def post_raw(d, path, body, headers=(), chunk=None, send_body=True):
    """One POST on a raw socket: (status, headers, body). With chunk, the
    body goes Transfer-Encoding: chunked in pieces of that size. The body is
    sent from a thread while the answer is read (ebmd may answer and close
    before it has all been sent)."""
    s = raw_connect(d)
    head = ["POST %s HTTP/1.1" % path, "Host: x",
            "Content-Type: application/json", *headers]
    if chunk is None:
        head.append("Content-Length: %d" % len(body))
        payload = body
    else:
        head.append("Transfer-Encoding: chunked")
        payload = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + chunk]),
                                                 body[i:i + chunk])
                           for i in range(0, len(body), chunk)) + b"0\r\n\r\n"
    s.sendall(("\r\n".join(head) + "\r\n\r\n").encode())

    def send():
        try:
            if send_body:
                s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # ebmd closed first: allowed once it has answered
    t = threading.Thread(target=send)
    t.start()
    try:
        return read_response(s, 30)
    finally:
        t.join()
        s.close()


def check_json_error(what, got, status, code=None, message=None):
    st, hdrs, body = got
    check(st == status, "%s: status %d, wanted %d: %r" % (what, st, status,
                                                        body[:200]))
    check(hdrs.get("content-type", "").startswith("application/json"),
          "%s: Content-Type %r, body %r" % (what, hdrs.get("content-type"),
                                            body[:200]))
    err = json.loads(body)["error"]
    check(set(err) == {"code", "message"}, "%s: %r" % (what, err))
    if code is not None:
        check(err["code"] == code, "%s: code %r" % (what, err))
    if message is not None:
        check(re.search(message, err["message"]), "%s: message %r"
              % (what, err["message"]))
    return hdrs


@test
def bodies_beyond_the_hard_cap_are_json():
    """Every size of body over max_body_bytes (65536 here) is a JSON 413:
    1x+1 and 2x (read, then refused), 10x (refused from the head without
    being read, Connection: close), with Content-Length or chunked, and
    with Expect: 100-continue; and the precedence of API.md section 2 still
    holds: 404 (path), 405, 401, 503 come before it."""
    tok = os.path.join(WORK, "hardcap.token")
    with open(tok, "w") as f:
        f.write(TOKEN + "\n")
    os.chmod(tok, 0o600)
    d = Daemon(WORK, "hardcap", conf(models_dir("hardcap", "thy"),
                                     "auth_token_file = %s" % tok))
    empty = Daemon(WORK, "hardcap-empty", conf(models_dir("hardcap-empty")))
    auth = ("Authorization: Bearer " + TOKEN,)
    p = "/v1/models/thy/score"
    doc = json.dumps({"instances": [NORMAL[0]]})
    def body(n):
        return (doc[:-1] + " " * (n - len(doc)) + "}").encode()
    try:
        for n in (65537, 131072, 655360):
            for chunk in (None, 8192):
                what = "%d bytes%s" % (n, ", chunked" if chunk else "")
                check_json_error(what, post_raw(d, p, body(n), auth, chunk),
                                 413, "body_too_large",
                                 r"at most 65536 are accepted")
        hdrs = check_json_error("10x", post_raw(d, p, body(655360), auth),
                                413, "body_too_large",
                                r"declares 655360 bytes")
        check(hdrs.get("connection") == "close", "10x: %r" % hdrs)
        check_json_error("10x chunked", post_raw(d, p, body(655360), auth,
                                                 65536),
                         413, "body_too_large", r"chunked body of at least")
        # Tiny chunks: the framing is not counted, only the data.
        st, _, _ = post_raw(d, p, body(65536), auth, 16)
        check(st == 200, "64 KiB in 16-byte chunks (framing > cap): %d" % st)
        # 100-continue: answered at once, the body never sent.
        check_json_error("10x, Expect: 100-continue", post_raw(
            d, p, body(655360), auth + ("Expect: 100-continue",),
            send_body=False), 413, "body_too_large")
        # Precedence: the head's answers first, whatever the size.
        big = body(655360)
        check_json_error("10x, unknown path", post_raw(d, "/nope", big, auth),
                         404, "not_found")
        hdrs = check_json_error("10x, GET-only path", post_raw(
            d, "/v1/models/thy", big, auth), 405, "method_not_allowed")
        check(hdrs.get("allow") == "GET, HEAD", "405 Allow: %r" % hdrs)
        hdrs = check_json_error("10x, no token", post_raw(d, p, big), 401,
                                "unauthorized")
        check("www-authenticate" in hdrs, "401 header: %r" % hdrs)
        check_json_error("10x, wrong token", post_raw(
            d, p, big, ("Authorization: Bearer nope",)), 401)
        check_json_error("10x, not ready", post_raw(empty, p, big), 503,
                         "not_ready")
        check_json_error("10x, /v1/score", post_raw(d, "/v1/score", big,
                                                    auth), 413)
        # Nothing poisoned: the next request is served.
        st, _, data = post_raw(d, p, doc.encode(), auth)
        check(st == 200, "after the refusals: %d %r" % (st, data[:200]))
        m = d.metrics()
        check(m['ebmd_requests_total{endpoint="/v1/models/{name}/score",'
                'code="413"}'] >= 9, "413s counted: %r" % {
                    k: v for k, v in m.items() if "413" in k})
        check(d.proc.poll() is None and empty.proc.poll() is None,
              "ebmd died")
    finally:
        check(d.stop() == 0, "exit code")
        check(empty.stop() == 0, "exit code (empty)")


@test
def connection_cap_counts_idle_connections():
    """max_connections counts connections from accept: idle ones hold
    their place until idle_timeout_ms closes them."""
    d = Daemon(WORK, "cap", conf(
        models_dir("cap", "thy"),
        "threads = 1\nmax_connections = 4\nidle_timeout_ms = 800",
        ).replace("threads = 2\n", ""))
    socks = []
    try:
        for _ in range(4):
            socks.append(raw_connect(d))
        d.wait_log(r"warn.*worker 0: 4 connections open \(its share of "
                   r"max_connections\)", 0, 5)
        t0 = time.time()
        d.json("GET", "/healthz")
        waited = time.time() - t0
        check(0.5 <= waited <= slow(3.0),
              "a fifth connection was answered after %.2f s, wanted about "
              "0.8 s (when the idle ones are closed)" % waited)
        for s in socks:
            check(closed_by_server(s, 1) is not None,
                  "an idle connection is still open")
        m = d.metrics()
        check(m['ebmd_connections_dropped_total{reason="idle_timeout"}']
              >= 4, "idle drops %r" % m)
    finally:
        for s in socks:
            s.close()
        check(d.stop() == 0, "cap daemon exit code")


@test
def out_of_descriptors_does_not_spin():
    """With the open-file limit too low for max_connections, ebmd says so;
    when accept() then fails (EMFILE) it pauses accepting instead of
    spinning, and serves again once descriptors are free."""
    d = Daemon(WORK, "nofile", conf(models_dir("nofile", "thy"),
                                    "idle_timeout_ms = 60000"),
               nofile=(64, 64))
    socks = []
    try:
        # (64, or a little less: valgrind keeps some for itself.)
        m = d.wait_log(r"warn.*max_connections = 1024, but the open-file "
                       r"limit is (\d+) \(hard limit \1\)", 0, 1)
        check(40 <= int(m.group(1)) <= 64, "limit %s" % m.group(1))
        for _ in range(100):
            socks.append(raw_connect(d))
        d.wait_log(r"warn.*cannot accept a connection: Too many open files",
                   0, 5)

        def cpu():
            with open("/proc/%d/stat" % d.proc.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf(
                "SC_CLK_TCK")

        c0, t0 = cpu(), time.time()
        time.sleep(1.0)
        used = (cpu() - c0) / (time.time() - t0)
        check(used < 0.3, "ebmd used %.0f%% of a CPU while out of "
              "descriptors" % (100 * used))
        for s in socks:
            s.close()
        socks = []
        t0 = time.time()
        d.json("GET", "/healthz")
        check(time.time() - t0 < slow(2), "served %.2f s after descriptors were "
              "freed" % (time.time() - t0))
    finally:
        for s in socks:
            s.close()
        check(d.stop() == 0, "nofile daemon exit code")


# ---------------------------------------------------------------------------
# Reloads
# ---------------------------------------------------------------------------

@test
def launch_only_keys_kept_on_reload():
    """The HTTP server is built with the [server] limits: a SIGHUP that
    changes them says so and keeps the old values in force."""
    models = models_dir("launch-only", "thy")
    d = Daemon(WORK, "launch-only", conf(models))
    try:
        big = json.dumps({"instances": [NORMAL[0]], "pad": "x" * 70000})
        hdrs = {"Content-Type": "application/json"}
        d.error("POST", "/v1/models/thy/score", big, hdrs, 413)
        with open(d.conf, "w") as f:
            f.write(conf(models, "request_timeout_ms = 900\n"
                                 "idle_timeout_ms = 900\n"
                                 "max_connections = 7\n"
                                 "max_header_bytes = 2048")
                    .replace("max_rows = 50", "max_rows = 60")
                    .replace("max_body_bytes = 65536",
                             "max_body_bytes = 1048576"))
        start = d.mark()
        d.reload()
        for key in ("max_body_bytes", "request_timeout_ms", "idle_timeout_ms",
                    "max_connections", "max_header_bytes"):
            d.wait_log(r"warn.*\[server\] %s changed; it takes effect at "
                       r"the next restart" % key, start, 1)
        with d.cond:
            after = [l for l in d.lines[start:] if l is not None]
        check(not any("max_rows changed" in l for l in after),
              "max_rows is reloadable: %r" % after)
        d.error("POST", "/v1/models/thy/score", big, hdrs, 413,
                message="at most 65536")
        # max_rows did change (50 -> 60).
        score(d, "thy", [NORMAL[0]] * 60)
    finally:
        check(d.stop() == 0, "launch-only daemon exit code")


@test
def log_level_changed_while_serving():
    """[log] level changes on SIGHUP while the workers serve (and read the
    level on every request): the new level is in force at once, and under
    ThreadSanitizer (scripts/test.sh's TSan build) the change is no data
    race (the daemon would exit 66 at the end)."""
    models = models_dir("loglevel", "thy")
    text = conf(models) + "[log]\nlevel = %s\n"
    d = Daemon(WORK, "loglevel", text % "info")
    stop = threading.Event()
    errors = []

    def load():
        while not stop.is_set():
            try:
                status, _, _ = d.request("POST", "/v1/models/thy/score",
                                         {"instances": [NORMAL[0]]})
                if status != 200:
                    errors.append(status)
            except OSError as exc:
                errors.append(repr(exc))

    threads = [threading.Thread(target=load) for _ in range(2)]
    try:
        for t in threads:
            t.start()
        # (info at least: reload() waits for an info line)
        for level in ("debug", "info", "debug", "info", "debug"):
            with open(d.conf, "w") as f:
                f.write(text % level)
            start = d.mark()
            d.reload()
            if level == "debug":
                d.wait_log(r"debug: .*POST /v1/models/thy/score -> 200",
                           start)
        stop.set()
        for t in threads:
            t.join()
        check(not errors, "requests failed meanwhile: %r" % errors[:5])
        with open(d.conf, "w") as f:
            f.write(text % "info")
        d.reload()
        start = d.mark()
        score(d, "thy", [NORMAL[0]])
        d.json("GET", "/healthz")
        with d.cond:
            after = [l for l in d.lines[start:] if l is not None]
        check(not any("debug:" in l for l in after),
              "debug lines at level info: %r" % after)
    finally:
        stop.set()
        for t in threads:
            if t.is_alive():
                t.join()
        check(d.stop() == 0, "exit code (66: a ThreadSanitizer report)")


@test
def empty_then_sighup():
    empty = models_dir("late")
    d = Daemon(WORK, "late", conf(empty))
    try:
        d.json("GET", "/healthz")
        d.error("GET", "/readyz", status=503)
        d.error("GET", "/v1/models", status=503)
        d.error("POST", "/v1/models/thy/score", {"instances": [NORMAL[0]]},
                status=503)
        shutil.copy(os.path.join(STORE, "thy.ebm"),
                    os.path.join(empty, "thy.ebm"))
        d.reload()
        check(d.json("GET", "/readyz")["models"] == 1, "ready after SIGHUP")
        score(d, "thy", NORMAL)
    finally:
        check(d.stop() == 0, "exit code")


@test
def sighup_corrupt_new_deleted():
    dirpath = models_dir("reload", "thy")
    d = Daemon(WORK, "reload", conf(dirpath))
    try:
        v1 = d.json("GET", "/v1/models/thy")["version"]
        s1 = score(d, "thy", FAR)["results"]
        m0 = d.metrics()
        err = 'ebmd_model_reloads_total{result="error"}'
        ok = 'ebmd_model_reloads_total{result="ok"}'
        # Truncate in place: the old version keeps serving.
        path = os.path.join(dirpath, "thy.ebm")
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data[:len(data) // 2])
        start = d.mark()
        d.reload()
        d.wait_log(r"model 'thy'.*keeping version", start)
        check(d.json("GET", "/v1/models/thy")["version"] == v1,
              "old version replaced by a corrupt file")
        check(score(d, "thy", FAR)["results"] == s1, "old version scores")
        m1 = d.metrics()
        check(m1[err] == m0[err] + 1, "reload error counted")
        check(m1["ebmd_models_loaded"] == 1, "still one model")
        # Bytes after the declared end are refused too.
        with open(path, "wb") as f:
            f.write(data + b"\0")
        d.reload()
        check(d.metrics()[err] == m0[err] + 2, "trailing bytes refused")
        check(d.json("GET", "/v1/models/thy")["version"] == v1, "kept")
        # A good new version replaces it.
        shutil.copy(os.path.join(STORE, "thy3.ebm"), path)
        d.reload()
        v3 = d.json("GET", "/v1/models/thy")["version"]
        check(v3 != v1, "new version served")
        check(d.metrics()[ok] == m0[ok] + 1, "reload ok counted")
        # Unchanged files are not reloaded.
        d.reload()
        check(d.metrics()[ok] == m0[ok] + 1, "unchanged file reloaded")
        # A new file appears.
        shutil.copy(os.path.join(STORE, "thy2.ebm"),
                    os.path.join(dirpath, "extra.ebm"))
        d.reload()
        d.json("GET", "/v1/models/extra")
        check(d.json("GET", "/readyz")["models"] == 2, "two models")
        # A deleted file stops being served.
        os.unlink(os.path.join(dirpath, "extra.ebm"))
        d.reload()
        d.error("GET", "/v1/models/extra", status=404)
        check(d.metrics()["ebmd_models_loaded"] == 1, "one model again")
    finally:
        check(d.stop() == 0, "exit code")


@test
def watch_directory():
    dirpath = models_dir("watched", "thy")
    d = Daemon(WORK, "watch", conf(dirpath, extra="watch = true"))
    try:
        tmp = os.path.join(dirpath, ".incoming.tmp")
        shutil.copy(os.path.join(STORE, "thy2.ebm"), tmp)
        os.rename(tmp, os.path.join(dirpath, "fresh.ebm"))
        deadline = time.time() + 20
        while time.time() < deadline:
            status, _, _ = d.request("GET", "/v1/models/fresh")
            if status == 200:
                break
            time.sleep(0.1)
        check(status == 200, "new file not picked up by the watch")
    finally:
        check(d.stop() == 0, "exit code")


def wait_status(d, path, want, timeout=20):
    """Polls GET path until it answers `want`; the last status."""
    deadline = time.time() + slow(timeout)
    while True:
        status, _, data = d.request("GET", path)
        if status == want or time.time() > deadline:
            return status, data
        time.sleep(0.05)


def model_version(d, name):
    status, _, data = d.request("GET", "/v1/models/" + name)
    return json.loads(data)["version"] if status == 200 else None


def store_version(name):
    """The version ebmd reports for STORE/name.ebm (its checksum's start)."""
    out = subprocess.run([EBMD_TRAIN, "inspect", os.path.join(STORE, name
                                                              + ".ebm")],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["version"]


@test
def watch_survives_directory_removed_and_recreated():
    """rm -rf of the watched directory, then mkdir and new files: picked up
    without SIGHUP (the watch is re-armed when the directory is back); the
    same after the directory is moved away and a new one made; and SIGHUP
    re-arms it at once."""
    dirpath = models_dir("rewatched", "thy")
    d = Daemon(WORK, "rewatch", conf(dirpath, extra="watch = true"))
    try:
        start = d.mark()
        shutil.rmtree(dirpath)
        d.wait_log(r"models directory '.*rewatched' went away", start)
        os.makedirs(dirpath)
        shutil.copy(os.path.join(STORE, "thy2.ebm"),
                    os.path.join(dirpath, "back.ebm"))
        status, _ = wait_status(d, "/v1/models/back", 200)
        check(status == 200, "file in the recreated directory not picked up "
              "by the watch: %d; log:\n%s" % (status, d.log()))
        # Later files too (the new directory itself is watched).
        shutil.copy(os.path.join(STORE, "thy3.ebm"),
                    os.path.join(dirpath, "later.ebm"))
        status, _ = wait_status(d, "/v1/models/later", 200)
        check(status == 200, "later file in the recreated directory: %d"
              % status)
        # Moved away: the watch must not follow the old directory.
        start = d.mark()
        os.rename(dirpath, dirpath + ".old")
        d.wait_log(r"went away", start)
        os.makedirs(dirpath)
        d.wait_log(r"is back; watching it again", start)
        shutil.copy(os.path.join(STORE, "thy.ebm"),
                    os.path.join(dirpath, "moved.ebm"))
        status, _ = wait_status(d, "/v1/models/moved", 200)
        check(status == 200, "file in the new directory after a move: %d"
              % status)
        shutil.copy(os.path.join(STORE, "thy.ebm"),
                    os.path.join(dirpath + ".old", "stale.ebm"))
        # SIGHUP while the directory is gone and back: watching again at
        # once, and not twice (one reload per change).
        start = d.mark()
        shutil.rmtree(dirpath)
        d.wait_log(r"went away", start)
        os.makedirs(dirpath)
        d.reload()
        shutil.copy(os.path.join(STORE, "thy2.ebm"),
                    os.path.join(dirpath, "after_hup.ebm"))
        status, _ = wait_status(d, "/v1/models/after_hup", 200)
        check(status == 200, "file after SIGHUP re-armed the watch: %d"
              % status)
        status, _, _ = d.request("GET", "/v1/models/stale")
        check(status == 404, "the moved-away directory is still watched")
    finally:
        check(d.stop() == 0, "exit code")


@test
def watch_kubernetes_volume_update():
    """A ConfigMap/Secret volume: every file is a symlink into ..data,
    itself a symlink to a timestamped directory; an update writes a new
    directory and swaps ..data with one rename. ebmd (watch = true, no
    SIGHUP) serves the new version, never an error, and a new key (a new
    symlink) appears."""
    dirpath = os.path.join(WORK, "configmap")
    os.makedirs(dirpath)

    def publish(stamp, models):
        ts = os.path.join(dirpath, "..2026_12_02_14_%s.000000001" % stamp)
        os.makedirs(ts)
        for name, src in models.items():
            shutil.copy(os.path.join(STORE, src + ".ebm"),
                        os.path.join(ts, name + ".ebm"))
        tmp = os.path.join(dirpath, "..data_tmp")
        os.symlink(os.path.basename(ts), tmp)
        old = (os.readlink(os.path.join(dirpath, "..data"))
               if os.path.lexists(os.path.join(dirpath, "..data")) else None)
        os.replace(tmp, os.path.join(dirpath, "..data"))
        for name in models:
            link = os.path.join(dirpath, name + ".ebm")
            if not os.path.lexists(link):
                os.symlink(os.path.join("..data", name + ".ebm"), link)
        if old is not None:
            shutil.rmtree(os.path.join(dirpath, old))

    publish("00", {"web": "thy"})
    d = Daemon(WORK, "configmap", conf(dirpath, extra="watch = true"))
    try:
        v1, v2 = store_version("thy"), store_version("thy2")
        check(model_version(d, "web") == v1, "initial version")
        publish("01", {"web": "thy2"})
        deadline = time.time() + slow(20)
        seen = []
        while time.time() < deadline:
            v = model_version(d, "web")
            if not seen or seen[-1] != v:
                seen.append(v)
            if v == v2:
                break
            time.sleep(0.02)
        check(seen[-1] == v2, "..data swap not picked up: %r; log:\n%s"
              % (seen, d.log()))
        check(seen == [v1, v2], "versions served during the swap: %r" % seen)
        # A new key: kubelet adds its symlink after the swap.
        publish("02", {"web": "thy2", "db": "thy3"})
        status, _ = wait_status(d, "/v1/models/db", 200)
        check(status == 200, "new key of the volume not picked up: %d"
              % status)
        # Only a symlink, made on its own (no rename, no close of a file).
        os.symlink(os.path.join("..data", "web.ebm"),
                   os.path.join(dirpath, "alias.ebm"))
        status, _ = wait_status(d, "/v1/models/alias", 200)
        check(status == 200, "a new symlink alone not picked up: %d" % status)
        m = d.metrics()
        check(m['ebmd_model_reloads_total{result="error"}'] == 0,
              "load errors during volume updates: %r"
              % m['ebmd_model_reloads_total{result="error"}'])
    finally:
        check(d.stop() == 0, "exit code")


@test
def watch_temp_file_then_rename():
    """rsync's way: a hidden temporary file written slowly (longer than
    the debounce), then renamed over the model. No SIGHUP; the half-written
    file is never loaded (no load error), and the new version replaces the
    old in one step."""
    dirpath = models_dir("rsynced", "thy")
    d = Daemon(WORK, "rsync", conf(dirpath, extra="watch = true"))
    try:
        v1, v2 = store_version("thy"), store_version("thy2")
        with open(os.path.join(STORE, "thy2.ebm"), "rb") as f:
            data = f.read()
        tmp = os.path.join(dirpath, ".thy.ebm.Xa8Hq2")
        with open(tmp, "wb") as f:
            f.write(data[:len(data) // 2])
            f.flush()
            time.sleep(0.6)   # three debounce periods
        # rsync closes, sets times and mode, then renames.
        with open(tmp, "ab") as f:
            f.write(data[len(data) // 2:])
        os.utime(tmp, (1700000000, 1700000000))
        os.chmod(tmp, 0o644)
        time.sleep(0.4)
        check(model_version(d, "thy") == v1, "old version while the "
              "temporary file is written")
        os.rename(tmp, os.path.join(dirpath, "thy.ebm"))
        deadline = time.time() + slow(20)
        while time.time() < deadline and model_version(d, "thy") != v2:
            time.sleep(0.02)
        check(model_version(d, "thy") == v2, "renamed file not picked up")
        m = d.metrics()
        check(m['ebmd_model_reloads_total{result="error"}'] == 0,
              "a half-written file was loaded: %r errors"
              % m['ebmd_model_reloads_total{result="error"}'])
        check(m['ebmd_model_reloads_total{result="ok"}'] == 2,
              "loads: %r (the first and the renamed file)"
              % m['ebmd_model_reloads_total{result="ok"}'])
    finally:
        check(d.stop() == 0, "exit code")


# ---------------------------------------------------------------------------
# Command line and systemd notifications
# ---------------------------------------------------------------------------

def run_ebmd(*args):
    p = subprocess.run([*WRAP, EBMD, *args], stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=slow(120))
    return p.returncode, p.stdout, p.stderr


@test
def command_line():
    code, out, _ = run_ebmd("--version")
    check(code == 0 and out.startswith("ebmd "), "--version: %r" % out)
    code, out, _ = run_ebmd("--help")
    check(code == 0 and "--check-config" in out, "--help")
    code, _, err = run_ebmd("--bogus")
    check(code == 2 and "--bogus" in err, "unknown flag: %d %r" % (code, err))
    code, _, err = run_ebmd("--config")
    check(code == 2, "missing value: %d" % code)
    bad = os.path.join(WORK, "bad.conf")
    with open(bad, "w") as f:
        f.write("[server]\nlisten = 127.0.0.1:0\n[models]\naplha = 0.1\n")
    code, _, err = run_ebmd("--config", bad, "--check-config")
    check(code == 1 and "bad.conf:4" in err and "aplha" in err,
          "config error names file, line, key: %d %r" % (code, err))
    code, _, err = run_ebmd("--config", bad)
    check(code == 1 and "aplha" in err, "bad config refused at start")


@test
def check_config():
    good = os.path.join(WORK, "check-good.conf")
    with open(good, "w") as f:
        f.write(conf(MAIN_DIR, extra="[compose.both]\nmodels = thy, thy2\n"))
    code, out, err = run_ebmd("--config", good, "--check-config")
    check(code == 0, "check-config: %d %s" % (code, err))
    thy = MAIN.json("GET", "/v1/models/thy")
    line = [l for l in out.splitlines() if " thy " in l + " "][0]
    check(thy["version"] in line and "6 features" in line
          and "%d reference rows" % thy["reference_size"] in line,
          "check-config line for thy: %r" % line)
    check(re.search(r"composition both .* 6 features", out),
          "composition listed: %r" % out)
    # --models overrides the file; a corrupt model is an error.
    broken = models_dir("broken", "thy")
    with open(os.path.join(broken, "bad.ebm"), "wb") as f:
        f.write(b"EBMMODEL not really")
    code, out, err = run_ebmd("--config", good, "--models", broken,
                              "--check-config")
    check(code == 1 and "bad" in err, "corrupt model: %d %r" % (code, err))
    check("model thy " in out, "good model still listed: %r" % out)
    # A composition of a model that is not there is an error.
    code, _, err = run_ebmd("--config", good, "--models",
                            models_dir("only-thy", "thy"), "--check-config")
    check(code == 1 and "thy2" in err, "composition error: %r" % err)
    # So is a listen address that is not HOST:PORT, given on the command
    # line.
    code, _, err = run_ebmd("--config", good, "--listen", "nowhere",
                            "--check-config")
    check(code != 0 and "nowhere" in err, "--listen: %d %r" % (code, err))


@test
def journal_priority_prefix():
    """Under systemd (stderr is JOURNAL_STREAM), lines start with <N>."""
    bad = os.path.join(WORK, "bad-journal.conf")
    with open(bad, "w") as f:
        f.write("[sever]\n")
    r, w = os.pipe()
    st = os.fstat(w)
    env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
    p = subprocess.Popen([*WRAP, EBMD, "--config", bad], stderr=w, env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    os.close(w)
    with os.fdopen(r) as f:
        err = f.read()
    check(p.wait(slow(60)) == 1, "exit code")
    check(re.match(r"<3>\S", err), "no <3> prefix: %r" % err)
    # Not the journal: timestamp and level instead.
    code, _, err = run_ebmd("--config", bad)
    check(re.match(r"\d{4}-\d\d-\d\dT[\d:.]+Z ebmd error: ", err),
          "plain stderr line: %r" % err)


@test
def second_sigint_exits_at_once():
    dirpath = models_dir("sigint", "thy", "thy2")
    d = Daemon(WORK, "sigint", conf(dirpath, extra="""
[compose.both]
models = thy, thy2
""").replace("max_rows = 50", "max_rows = 10000")
            .replace("max_body_bytes = 65536", "max_body_bytes = 67108864"))
    body = json.dumps({"instances": (ROWS * 13)[:5000], "explain": True})

    def client():
        try:
            d.request("POST", "/v1/models/both/score", body,
                      {"Content-Type": "application/json"}, timeout=120)
        except Exception:  # noqa: BLE001 (cut off on purpose)
            pass

    threads = [threading.Thread(target=client) for _ in range(12)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    start = d.mark()
    d.signal(signal.SIGINT)
    d.wait_log(r"SIGINT: stopping", start)
    t0 = time.time()
    d.signal(signal.SIGINT)
    code = d.proc.wait(slow(30))
    for t in threads:
        t.join(60)
    check(code == 128 + signal.SIGINT,
          "exit code %r after a second SIGINT" % code)
    check(time.time() - t0 < slow(5), "second SIGINT did not exit at once")


@test
def sd_notify_protocol():
    import socket
    sock_path = os.path.join(WORK, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(slow(30))
    messages = []

    def wait_for(field):
        while True:
            msg = sock.recv(4096).decode()
            messages.append(msg)
            if field in msg.split("\n"):
                return msg

    try:
        d = Daemon(WORK, "notify", conf(models_dir("notify", "thy")),
                   env_extra={"NOTIFY_SOCKET": sock_path,
                              "WATCHDOG_USEC": "400000"})
        try:
            ready = wait_for("READY=1")
            check("STATUS=serving 1 model" in ready, "status: %r" % ready)
            # READY only once the socket is bound and the model loaded.
            d.json("GET", "/readyz")
            wait_for("WATCHDOG=1")
            d.signal(signal.SIGHUP)
            reloading = wait_for("RELOADING=1")
            check("MONOTONIC_USEC=" in reloading, "MONOTONIC_USEC")
            wait_for("READY=1")
            d.signal(signal.SIGTERM)
            wait_for("STOPPING=1")
        finally:
            check(d.stop() == 0, "exit code")
    finally:
        sock.close()


# ---------------------------------------------------------------------------
# Shutdown
# ---------------------------------------------------------------------------

@test
def sigterm_with_requests_in_flight():
    dirpath = models_dir("drain", "thy", "thy2")
    # The drain waits up to request_timeout_ms (at most 30 s): under a slow
    # wrapper the batches below take longer than the default 5 s.
    d = Daemon(WORK, "drain", conf(dirpath, "request_timeout_ms = %d"
                                   % min(3600000, int(5000 * SLOW)), extra="""
[compose.both]
models = thy, thy2
""").replace("max_rows = 50", "max_rows = 10000")
            .replace("max_body_bytes = 65536", "max_body_bytes = 67108864"))
    # Batches that take about 1.5 s each here and now (at most 5000 rows,
    # at least 500): long enough to be in flight at the SIGTERM, short
    # enough that the drain bound (2 * 5 s + 5 s, two requests per worker)
    # holds in a sanitizer build on a loaded machine, where 5000 rows took
    # 12 s each. Under a wrapper that runs ebmd's threads one at a time
    # (valgrind), 500.
    n_rows = 500
    if SLOW == 1:
        probe = json.dumps({"instances": (ROWS * 2)[:500], "explain": True})
        t0 = time.time()
        d.json("POST", "/v1/models/both/score", probe)
        n_rows = max(500, min(5000, int(500 * 1.5 / (time.time() - t0))))
    rows = (ROWS * 13)[:n_rows]
    body = json.dumps({"instances": rows, "explain": True})
    results = []
    lock = threading.Lock()

    def client():
        try:
            status, _, data = d.request(
                "POST", "/v1/models/both/score", body,
                {"Content-Type": "application/json"}, timeout=120)
            n = len(json.loads(data)["results"]) if status == 200 else 0
            with lock:
                results.append((status, n))
        except Exception as exc:  # noqa: BLE001 (reported below)
            with lock:
                results.append(("exception", repr(exc)))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    start = d.mark()
    d.signal(signal.SIGTERM)
    d.wait_log(r"SIGTERM: stopping", start)
    # Shutting down: not ready any more (answered by a busy worker once
    # it gets to it, or refused once it has stopped accepting).
    try:
        status, _, _ = d.request("GET", "/readyz", timeout=60)
        check(status == 503, "/readyz during shutdown: %d" % status)
    except (ConnectionError, OSError):
        pass
    # The Open Inference Protocol's readiness says the same.
    try:
        status, _, data = d.request("GET", "/v2/health/ready", timeout=60)
        check(status == 503 and json.loads(data) == {"ready": False},
              "/v2/health/ready during shutdown: %d %r" % (status, data[:200]))
    except (ConnectionError, OSError):
        pass
    for t in threads:
        t.join(120)
    code = d.proc.wait(60)
    check(code == 0, "exit code %r after SIGTERM; log:\n%s" % (code, d.log()))
    check(results == [(200, n_rows)] * 4,
          "requests in flight did not complete: %r" % results)


@test
def sigterm_with_a_request_half_sent():
    """A request whose bytes have begun to arrive when SIGTERM comes is in
    flight: it is read to the end and answered, then ebmd exits 0. A
    request begun after the stop gets 503; an idle connection is closed."""
    dirpath = models_dir("drain-half", "thy")
    d = Daemon(WORK, "drain-half",
               conf(dirpath).replace("threads = 2", "threads = 1"))
    body = json.dumps({"instances": NORMAL}).encode()
    head = ("POST /v1/models/thy/score HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % len(body)).encode()
    half = raw_connect(d)
    half.sendall(head + body[:10])
    idle = raw_connect(d)
    late = raw_connect(d)
    time.sleep(0.2)  # both accepted and seen by the worker
    start = d.mark()
    d.signal(signal.SIGTERM)
    d.wait_log(r"SIGTERM: stopping", start)
    time.sleep(0.2)
    late.sendall(head + body)
    half.sendall(body[10:])
    answers = {}
    for name, sock in (("half", half), ("late", late), ("idle", idle)):
        sock.settimeout(slow(10))
        data = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            data += ("<%r>" % exc).encode()
        answers[name] = data
        sock.close()
    code = d.proc.wait(slow(20))
    check(code == 0, "exit code %r after SIGTERM; log:\n%s" % (code, d.log()))
    check(answers["half"].startswith(b"HTTP/1.1 200")
          and b'"results"' in answers["half"]
          and b"Connection: close" in answers["half"],
          "half-sent request: %r" % answers["half"][:300])
    check(answers["late"] == b"" or answers["late"].startswith(b"HTTP/1.1 503"),
          "request begun after the stop: %r" % answers["late"][:300])
    check(answers["idle"] == b"", "idle connection: %r" % answers["idle"][:300])


# ---------------------------------------------------------------------------

def main():
    passed = failed = 0
    # EBMD_TESTS=name,name runs only those tests (by function name).
    only = [n for n in os.environ.get("EBMD_TESTS", "").split(",") if n]
    unknown = set(only) - {fn.__name__ for fn in TESTS}
    if unknown:
        print("FAIL unknown test in EBMD_TESTS: %s" % ", ".join(sorted(unknown)))
        failed += 1
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
    code = MAIN.stop()
    if code != 0:
        failed += 1
        print("FAIL main daemon exit code %r" % code)
    else:
        passed += 1
        print("ok   main daemon exits 0 on SIGTERM")
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
