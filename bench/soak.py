#!/usr/bin/env python3
"""Soak test of ebmd (driven by bench/soak.sh; see there for the usage).

wrk scores one fixed row against model `main` at full load for DURATION
seconds while, once a second, the models directory changes and ebmd gets
SIGHUP. The changes cycle through:

  valid      a new valid version of main.ebm, renamed into place
  truncated  main.ebm replaced (renamed) by a truncated copy
  cp         a new valid version copied over main.ebm in place (cp)
  bitflip    one byte of main.ebm flipped in place
  halfwrite  a new version written in place in two halves, with a SIGHUP
             after the first half and another after the second
  delete     aux.ebm deleted (main.ebm still holds the bit flip)
  restore    aux.ebm put back (renamed into place)

What ebmd documents (API.md section 3, docs/daemon.md "Reload"), and so
what is checked:
  - a new or changed file is loaded and fully validated; a corrupt one is
    refused, counted as ebmd_model_reloads_total{result="error"}, and the
    previous version keeps serving; a file whose identity (device, inode,
    size, mtime) did not change since it was last loaded is not read
    again, so a corrupt file left in place is tried again (and counted) at
    every reload until it is fixed;
  - a deleted file stops being served: its endpoints answer 404 (that is
    why the load is on `main`, which is never deleted, and deletion is
    exercised on `aux`, checked by the verifier).
Checks:
  - every response wrk gets is 200 and carries a (version, energy) pair of
    one of the valid versions (the energies computed offline by
    ebmd-train score); a verifier does the same every 50 ms and, after
    each reload, that `main` is the expected version and `aux` is 200 or
    404 as it should be;
  - ebmd stays alive and exits 0 on SIGTERM at the end;
  - VmRSS, sampled every second, grows less than 5% after the warm-up;
  - ebmd_model_reloads_total{result="ok"|"error"} equals the load attempts
    the changes call for, after every single reload.
Writes a Markdown report; exit 0 when every check passed.
"""

import argparse
import csv
import http.client
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def die(msg):
    print("soak: " + msg, file=sys.stderr)
    sys.exit(2)


ap = argparse.ArgumentParser()
ap.add_argument("--ebmd", required=True)
ap.add_argument("--train", required=True)
ap.add_argument("--data", required=True)
ap.add_argument("--duration", type=int, default=300)
ap.add_argument("--threads", type=int, default=2, help="ebmd workers")
ap.add_argument("--wrk-threads", type=int, default=2)
ap.add_argument("--connections", type=int, default=16)
ap.add_argument("--wrk", default="/usr/bin/wrk")
ap.add_argument("--out", required=True)
ap.add_argument("--seed", type=int, default=1)
args = ap.parse_args()

rng = random.Random(args.seed)
WORK = tempfile.mkdtemp(prefix="ebmd-soak-")
MODELS = os.path.join(WORK, "models")
STORE = os.path.join(WORK, "store")
os.makedirs(MODELS)
os.makedirs(STORE)

# ---------------------------------------------------------------------------
# Valid versions, their versions and energies for the fixed row (offline)
# ---------------------------------------------------------------------------


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True,
                          **kw)


def train(out, seed):
    run([args.train, "train", "--data", args.data, "--out", out,
         "--hidden", "16,16", "--epochs", "3", "--seed", str(seed)])


with open(args.data) as f:
    r = csv.reader(f)
    header = next(r)
    first = next(r)
row_csv = os.path.join(WORK, "row.csv")
with open(row_csv, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(header)
    w.writerow(first)

VERSIONS = []   # [{"path", "version", "energy"}]
for seed in (11, 12, 13):
    path = os.path.join(STORE, "main-%d.ebm" % seed)
    train(path, seed)
    info = json.loads(run([args.train, "inspect", path]).stdout)
    out = run([args.train, "score", "--model", path, "--data", row_csv])
    lines = out.stdout.strip().splitlines()
    energy = float(lines[1].split(",")[0])
    VERSIONS.append({"path": path, "version": info["version"],
                     "energy": energy})
AUX = os.path.join(STORE, "aux.ebm")
train(AUX, 21)
features = json.loads(run([args.train, "inspect",
                           VERSIONS[0]["path"]]).stdout)["feature_names"]
ROW = [float(first[header.index(n)]) for n in features]
BODY = json.dumps({"instances": [ROW]})
EXPECTED = {v["version"]: v["energy"] for v in VERSIONS}
if len(EXPECTED) != 3:
    die("the three versions are not distinct")


def energy_ok(version, energy):
    want = EXPECTED.get(version)
    return want is not None and abs(energy - want) <= max(
        1e-4, 1e-5 * abs(want))


# ---------------------------------------------------------------------------
# ebmd
# ---------------------------------------------------------------------------

shutil.copy(VERSIONS[0]["path"], os.path.join(MODELS, "main.ebm"))
shutil.copy(AUX, os.path.join(MODELS, "aux.ebm"))
CONF = os.path.join(WORK, "ebmd.conf")
with open(CONF, "w") as f:
    f.write("[server]\nlisten = 127.0.0.1:0\nthreads = %d\n[models]\n"
            "dir = %s\n" % (args.threads, MODELS))
LOG = os.path.join(WORK, "ebmd.log")
log_f = open(LOG, "w")
env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "JOURNAL_STREAM"):
    env.pop(k, None)
proc = subprocess.Popen([args.ebmd, "--config", CONF], stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL, stderr=log_f, env=env)


def log_text():
    with open(LOG) as f:
        return f.read()


deadline = time.time() + 30
while True:
    m = re.search(r"listening on (\S+):(\d+)", log_text())
    if m and "ready" in log_text():
        break
    if proc.poll() is not None or time.time() > deadline:
        die("ebmd did not start:\n" + log_text())
    time.sleep(0.05)
HOST, PORT = m.group(1), int(m.group(2))


def request(method, path, body=None, timeout=10):
    c = http.client.HTTPConnection(HOST, PORT, timeout=timeout)
    try:
        hdrs = {"Content-Type": "application/json"} if body else {}
        c.request(method, path, body=body, headers=hdrs)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def reload_counters():
    status, data = request("GET", "/metrics")
    vals = {}
    for line in data.decode().splitlines():
        m = re.match(r'ebmd_model_reloads_total\{result="(\w+)"\} (\d+)', line)
        if m:
            vals[m.group(1)] = int(m.group(2))
    return vals.get("ok", 0), vals.get("error", 0)


def rss_kb():
    with open("/proc/%d/status" % proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ---------------------------------------------------------------------------
# wrk, with a Lua script that checks every response
# ---------------------------------------------------------------------------

LUA = os.path.join(WORK, "soak.lua")
with open(LUA, "w") as f:
    f.write("""
wrk.method = "POST"
wrk.body = %s
wrk.headers["Content-Type"] = "application/json"
local expected = {%s}
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) non200 = 0; wrong = 0; checked = 0 end
function response(status, headers, body)
  if status ~= 200 then non200 = non200 + 1; return end
  checked = checked + 1
  local v = body:match('"version":"(%%x+)"')
  local e = tonumber(body:match('"energy":([-+%%d%%.eE]+)'))
  local want = v and expected[v]
  if want == nil or e == nil or math.abs(e - want) >
      math.max(1e-4, 1e-5 * math.abs(want)) then
    wrong = wrong + 1
  end
end
function done(summary, latency, requests)
  local n, w, c = 0, 0, 0
  for _, t in ipairs(threads) do
    n = n + t:get("non200"); w = w + t:get("wrong"); c = c + t:get("checked")
  end
  io.write(string.format("SOAK non200=%%d wrong=%%d checked=%%d\\n", n, w, c))
  io.write(string.format("SOAK p50_ms=%%.3f p99_ms=%%.3f max_ms=%%.3f\\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
end
""" % (json.dumps(BODY), ", ".join('["%s"] = %r' % (v, e)
                                    for v, e in EXPECTED.items())))

wrk = subprocess.Popen(
    [args.wrk, "-t%d" % args.wrk_threads, "-c%d" % args.connections,
     "-d%ds" % args.duration, "--timeout", "5s", "-s", LUA,
     "http://%s:%d/v1/models/main/score" % (HOST, PORT)],
    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
T0 = time.time()

# ---------------------------------------------------------------------------
# Verifier and RSS sampler
# ---------------------------------------------------------------------------

stop = threading.Event()
verify = {"checks": 0, "bad": 0, "examples": []}
rss = []          # (t, kB)
alive_fail = []


def verifier():
    while not stop.is_set():
        try:
            status, data = request("POST", "/v1/models/main/score", BODY)
            doc = json.loads(data) if status == 200 else None
            ok = (doc is not None and energy_ok(
                doc.get("version"), doc["results"][0]["energy"]))
        except Exception as exc:  # noqa: BLE001 (counted as a failure)
            ok, status, data = False, "exception", repr(exc).encode()
        verify["checks"] += 1
        if not ok:
            verify["bad"] += 1
            if len(verify["examples"]) < 5:
                verify["examples"].append("%s %s" % (status, data[:200]))
        stop.wait(0.05)


def sampler():
    while not stop.is_set():
        if proc.poll() is not None:
            alive_fail.append(time.time() - T0)
            return
        rss.append((time.time() - T0, rss_kb()))
        stop.wait(1.0)


threads = [threading.Thread(target=verifier, daemon=True),
           threading.Thread(target=sampler, daemon=True)]
for t in threads:
    t.start()

# ---------------------------------------------------------------------------
# Changes, each followed by SIGHUP; expected load attempts per reload
# ---------------------------------------------------------------------------

# What ebmd last loaded from each file: its identity, and the version.
loaded = {}       # name -> (ino, size, mtime_ns)
served = {"main": VERSIONS[0]["version"], "aux": "aux"}
valid_now = {"main": True, "aux": True}   # is the file on disk valid?
current = 0       # index of the valid version main.ebm holds (or held)
expect_ok, expect_err = 0, 0
hups = 0
problems = []
kinds_done = {}
reload_times = []


def identity(path):
    st = os.stat(path)
    return (st.st_ino, st.st_size, st.st_mtime_ns)


for name in ("main", "aux"):
    loaded[name] = identity(os.path.join(MODELS, name + ".ebm"))
expect_ok = 2
c_ok, c_err = reload_counters()
if (c_ok, c_err) != (2, 0):
    die("unexpected counters at start: %r" % ((c_ok, c_err),))


def hup(kind):
    """SIGHUP; waits for the reload; checks counters and what is served."""
    global hups, expect_ok, expect_err
    # Expected load attempts: every file whose identity differs from what
    # was last loaded from it.
    for name in ("main", "aux"):
        path = os.path.join(MODELS, name + ".ebm")
        if not os.path.exists(path):
            loaded.pop(name, None)
            served[name] = None
            continue
        ident = identity(path)
        if loaded.get(name) == ident:
            continue
        if valid_now[name]:
            expect_ok += 1
            loaded[name] = ident
            served[name] = (VERSIONS[current]["version"] if name == "main"
                            else "aux")
        else:
            expect_err += 1
            if served[name] is None:
                pass  # never loaded: still not served
    before = log_text().count("reload: serving")
    t = time.time()
    proc.send_signal(signal.SIGHUP)
    hups += 1
    while log_text().count("reload: serving") <= before:
        if proc.poll() is not None or time.time() - t > 10:
            problems.append("%s: no 'reload: serving' within 10 s" % kind)
            return
        time.sleep(0.01)
    reload_times.append(time.time() - t)
    got = reload_counters()
    if got != (expect_ok, expect_err):
        problems.append("%s (reload %d): counters ok=%d error=%d, expected "
                        "ok=%d error=%d" % (kind, hups, got[0], got[1],
                                            expect_ok, expect_err))
        # Follow what ebmd did, so one miss is reported once.
        expect_ok, expect_err = got
    status, data = request("GET", "/v1/models/main")
    v = json.loads(data).get("version") if status == 200 else None
    if v != served["main"]:
        problems.append("%s (reload %d): main serves %r, expected %r"
                        % (kind, hups, v, served["main"]))
    status, _ = request("GET", "/v1/models/aux")
    want = 200 if served["aux"] is not None else 404
    if status != want:
        problems.append("%s (reload %d): aux answers %d, expected %d"
                        % (kind, hups, status, want))


def next_version():
    global current
    current = (current + 1) % len(VERSIONS)
    return VERSIONS[current]["path"]


def replace(dst, data):
    tmp = os.path.join(MODELS, ".soak.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, dst)


MAIN = os.path.join(MODELS, "main.ebm")
AUXP = os.path.join(MODELS, "aux.ebm")
# (After bitflip, main stays corrupt through the next reload, so that
# the retry of a file still broken is counted too.)
CYCLE = ["valid", "truncated", "cp", "bitflip", "delete", "halfwrite",
         "valid", "restore"]
step = 0
while time.time() - T0 < args.duration - 1:
    if proc.poll() is not None:
        problems.append("ebmd exited with %r" % proc.returncode)
        break
    t_step = time.time()
    kind = CYCLE[step % len(CYCLE)]
    step += 1
    kinds_done[kind] = kinds_done.get(kind, 0) + 1
    if kind == "valid":
        with open(next_version(), "rb") as f:
            replace(MAIN, f.read())
        valid_now["main"] = True
        hup(kind)
    elif kind == "truncated":
        with open(VERSIONS[(current + 1) % 3]["path"], "rb") as f:
            data = f.read()
        replace(MAIN, data[:rng.randrange(1, len(data))])
        valid_now["main"] = False
        hup(kind)
    elif kind == "cp":
        shutil.copyfile(next_version(), MAIN)   # in place, not atomic
        valid_now["main"] = True
        hup(kind)
    elif kind == "bitflip":
        with open(MAIN, "r+b") as f:
            data = bytearray(f.read())
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
            f.seek(0)
            f.write(data)
        valid_now["main"] = False
        hup(kind)
    elif kind == "halfwrite":
        with open(next_version(), "rb") as f:
            data = f.read()
        with open(MAIN, "wb") as f:              # in place, caught halfway
            f.write(data[:len(data) // 2])
            f.flush()
            valid_now["main"] = False
            hup("halfwrite (first half)")
            f.write(data[len(data) // 2:])
        valid_now["main"] = True
        hup("halfwrite (complete)")
    elif kind == "delete":
        os.unlink(AUXP)
        valid_now["aux"] = False
        hup(kind)
    elif kind == "restore":
        with open(AUX, "rb") as f:
            replace(AUXP, f.read())
        valid_now["aux"] = True
        hup(kind)
    left = 1.0 - (time.time() - t_step)
    if left > 0:
        time.sleep(left)

out, _ = wrk.communicate(timeout=args.duration + 60)
stop.set()
for t in threads:
    t.join(10)
elapsed = time.time() - T0
alive_at_end = proc.poll() is None
final_counters = reload_counters() if alive_at_end else None
rss_end = rss_kb() if alive_at_end else 0
proc.send_signal(signal.SIGTERM)
try:
    exit_code = proc.wait(60)
except subprocess.TimeoutExpired:
    proc.kill()
    exit_code = "killed after 60 s"
log_f.close()

# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------

m = re.search(r"SOAK non200=(\d+) wrong=(\d+) checked=(\d+)", out)
non200, wrong, checked = (int(x) for x in m.groups()) if m else (-1, -1, -1)
m = re.search(r"SOAK p50_ms=([\d.]+) p99_ms=([\d.]+) max_ms=([\d.]+)", out)
p50, p99, pmax = (float(x) for x in m.groups()) if m else (0, 0, 0)
m = re.search(r"(\d+) requests in ([\d.]+\w+)", out)
n_requests = int(m.group(1)) if m else 0
m = re.search(r"Requests/sec:\s+([\d.]+)", out)
rps = float(m.group(1)) if m else 0.0
sock_err = re.search(r"Socket errors: (.*)", out)
sock_err = sock_err.group(1) if sock_err else "none"
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

warm = max(10.0, 0.2 * args.duration)
post = [kb for t, kb in rss if t >= warm]
growth = None
if len(post) >= 10:
    base = statistics.median(post[:10])
    final = statistics.median(post[-10:])
    growth = (final - base) / base
    rss_line = ("%d kB after the warm-up (%.0f s), %d kB at the end "
                "(medians of 10 samples), max %d kB: %+.2f%%"
                % (base, warm, final, max(post), 100 * growth))
else:
    rss_line = "too few samples after the warm-up (%d)" % len(post)

checks = [
    ("wrk: every response 200", non200 == 0 and checked > 0,
     "%d requests, %d non-200, socket errors: %s" % (n_requests, non200,
                                                      sock_err)),
    ("wrk: every answer is a valid version's energy", wrong == 0,
     "%d responses checked, %d wrong" % (checked, wrong)),
    ("verifier: every answer right", verify["bad"] == 0 and verify["checks"]
     > 0, "%d checks, %d bad %s" % (verify["checks"], verify["bad"],
                                     verify["examples"])),
    ("ebmd alive throughout, exit 0 on SIGTERM",
     alive_at_end and not alive_fail and exit_code == 0,
     "exit code %r" % (exit_code,)),
    ("RSS growth < 5% after the warm-up",
     growth is not None and growth < 0.05, rss_line),
    ("reload counters and served versions as expected", not problems
     and final_counters == (expect_ok, expect_err),
     "%d reloads; ebmd_model_reloads_total ok=%s error=%s, expected ok=%d "
     "error=%d%s" % (hups, final_counters[0] if final_counters else "?",
                     final_counters[1] if final_counters else "?",
                     expect_ok, expect_err,
                     "; " + "; ".join(problems[:10]) if problems else "")),
]
passed = all(ok for _, ok, _ in checks)

with open("/proc/loadavg") as f:
    load = f.read().split()[:3]
lines = [
    "# ebmd soak test",
    "",
    "`bench/soak.sh` (DURATION=%d). %s." % (
        args.duration, "**PASS**" if passed else "**FAIL**"),
    "",
    "Load: wrk `-t%d -c%d`, `POST /v1/models/main/score` with one row, "
    "every response checked by a Lua script; ebmd with %d worker threads; "
    "%d CPUs, load average at the end %s." % (
        args.wrk_threads, args.connections, args.threads, os.cpu_count(),
        " ".join(load)),
    "",
    "Changes, one a second, each followed by SIGHUP (a half-written file "
    "gets one after each half): %s; %d reloads in %.0f s, each published "
    "within %.0f ms (median %.0f ms)." % (
        ", ".join("%s %d" % (k, kinds_done[k])
                  for k in dict.fromkeys(CYCLE) if k in kinds_done),
        hups, elapsed, 1000 * max(reload_times) if reload_times else 0,
        1000 * statistics.median(reload_times) if reload_times else 0),
    "",
    "| check | result | details |",
    "|---|---|---|",
]
for name, ok, detail in checks:
    lines.append("| %s | %s | %s |" % (name, "ok" if ok else "FAIL",
                                       detail.replace("|", "/")))
lines += [
    "",
    "Throughput under reloads: %.0f requests/s; latency p50 %.2f ms, "
    "p99 %.2f ms, max %.1f ms." % (rps, p50, p99, pmax),
    "",
    "What is expected, from API.md and docs/daemon.md: a corrupt, truncated "
    "or half-written file is refused and counted as `result=\"error\"` "
    "while the previous version keeps serving, and is tried (and counted) "
    "again at every reload until it is replaced; a valid new or changed "
    "file is counted `ok` and served from the next request on; a file "
    "whose identity did not change is not read again; a deleted file "
    "stops being served (404), which is why the load runs on `main` "
    "(never deleted) and deletion is checked on `aux`.",
    "",
]
if non2xx:
    lines.append("wrk counted %s non-2xx responses." % non2xx.group(1))
with open(args.out, "w") as f:
    f.write("\n".join(lines) + "\n")
print("\n".join(lines))
if passed:
    shutil.rmtree(WORK, ignore_errors=True)
else:
    print("soak: work directory kept: %s" % WORK, file=sys.stderr)
sys.exit(0 if passed else 1)
