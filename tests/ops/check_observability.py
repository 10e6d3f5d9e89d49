#!/usr/bin/env python3
"""The dashboard and the alerting rules use only what ebmd exports.

Usage: check_observability.py EBMD SOURCE_ROOT [PROMTOOL]

Starts ebmd on an ephemeral loopback port with the shipped models, sends
a few requests (scores, a 404, a 400) so that the labelled series exist,
and scrapes /metrics. Its `# TYPE` lines and samples are the source of
truth: metric names (histograms with _bucket/_sum/_count), their label
names and values. Then, for deploy/prometheus/*.yaml (every rule's expr)
and deploy/grafana/*.json (every "expr" and templating query):
  - every ebmd_* name is exported;
  - every label in a {matcher} of an ebmd_* metric is one of its labels
    (or a target label Prometheus adds: instance, job), and an exact
    matcher's value is one the metric takes, where ebmd lists them all;
  - every label in by (...) is some ebmd label or a target label.
Also: the METRICS section of ebmd(8) documents every exported metric;
the rules pass `promtool check rules` and their unit tests
`promtool test rules` (deploy/prometheus/*.test.yaml); the dashboard is
well formed (unique panel ids, a grid position, a query per panel, the
datasource variable it uses is defined).
Prints one line per problem; exits 1 if there was any.
"""

import glob
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import yaml

EBMD, ROOT = (os.path.abspath(a) for a in sys.argv[1:3])
PROMTOOL = sys.argv[3] if len(sys.argv) > 3 else ""
TARGET_LABELS = {"instance", "job"}
problems = []


def check(cond, msg):
    if not cond:
        problems.append(msg)
        print("FAIL: " + msg)
    return cond


# ---- what a running ebmd exports ----------------------------------------------
def scrape():
    tmp = tempfile.mkdtemp(prefix="ebmd-obs-")
    log = open(os.path.join(tmp, "ebmd.log"), "w+")
    p = subprocess.Popen([EBMD, "--models", os.path.join(ROOT, "models"),
                          "--listen", "127.0.0.1:0"],
                         stdout=log, stderr=subprocess.STDOUT)
    try:
        port = None
        deadline = time.monotonic() + 60
        while port is None and time.monotonic() < deadline:
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", open(log.name).read())
            port = int(m.group(1)) if m else None
            time.sleep(0.05)
        if port is None:
            raise RuntimeError("ebmd did not start: " + open(log.name).read())

        def req(method, path, body=None):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.request(method, path, body, {"Content-Type": "application/json"} if body else {})
            r = c.getresponse()
            data = r.read()
            c.close()
            return r.status, data

        row = json.dumps({"instances": [[0.774, 0.00113, 0.138, 0.276, 0.296, 0.236],
                                        [0.559, 0.311, 0.0332, 0.035, 0.469, 0.0197]]})
        check(req("POST", "/v1/models/demo/score", row)[0] == 200, "score demo")
        req("POST", "/v1/models/nosuch/score", row)
        req("POST", "/v1/models/demo/score", "{")
        req("GET", "/readyz")
        status, text = req("GET", "/metrics")
        check(status == 200, "/metrics: %d" % status)
        return text.decode()
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(30)
        log.close()
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)


text = scrape()
families = {}            # family -> type
names = set()            # sample names
labels = {}              # sample name -> {label: set(values)}
for line in text.splitlines():
    m = re.match(r"^# TYPE (\w+) (\w+)$", line)
    if m:
        families[m.group(1)] = m.group(2)
        names.add(m.group(1))
        if m.group(2) == "histogram":
            names.update(m.group(1) + s for s in ("_bucket", "_sum", "_count"))
        continue
    m = re.match(r"^(\w+)(?:\{(.*)\})? \S+$", line)
    if m:
        names.add(m.group(1))
        ls = labels.setdefault(m.group(1), {})
        for k, v in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""):
            ls.setdefault(k, set()).add(v)
check(len(families) >= 5, "only %d metric families exported?" % len(families))
# A histogram's series carry its labels; so does the family name itself.
for fam, t in families.items():
    if t == "histogram":
        labels.setdefault(fam, dict(labels.get(fam + "_count", {})))
all_labels = set(TARGET_LABELS)
for ls in labels.values():
    all_labels.update(ls)
print("exported: " + ", ".join(sorted(families)))

# ---- what the rules and the dashboard use --------------------------------------
exprs = []     # (file, expr)
for path in sorted(glob.glob(os.path.join(ROOT, "deploy/prometheus/*.yaml"))):
    if path.endswith(".test.yaml"):
        continue
    doc = yaml.safe_load(open(path, encoding="utf-8"))
    for g in doc.get("groups", []):
        for r in g.get("rules", []):
            exprs.append((os.path.basename(path) + ":" + r.get("alert", r.get("record", "?")),
                          str(r["expr"])))


def walk(obj, where):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in ("expr", "definition") and isinstance(v, str):
                exprs.append((where, v))
            elif k == "query" and isinstance(v, dict) and isinstance(v.get("query"), str):
                exprs.append((where, v["query"]))
            else:
                walk(v, where)
    elif isinstance(obj, list):
        for v in obj:
            walk(v, where)


dashboards = sorted(glob.glob(os.path.join(ROOT, "deploy/grafana/*.json")))
check(dashboards, "no dashboard in deploy/grafana")
for path in dashboards:
    try:
        dash = json.load(open(path, encoding="utf-8"))
    except ValueError as e:
        check(False, "%s: %s" % (path, e))
        continue
    base = os.path.basename(path)
    walk(dash, base)
    ids = [p.get("id") for p in dash.get("panels", [])]
    check(len(ids) == len(set(ids)) and None not in ids, "%s: panel ids %r" % (base, ids))
    variables = {v["name"] for v in dash.get("templating", {}).get("list", [])}
    for p in dash.get("panels", []):
        check("gridPos" in p, "%s: panel %s has no gridPos" % (base, p.get("title")))
        ts = [t.get("expr") for t in p.get("targets", [])]
        check(ts and all(ts), "%s: panel %s has no query" % (base, p.get("title")))
        for ds in [p.get("datasource")] + [t.get("datasource") for t in p.get("targets", [])]:
            uid = (ds or {}).get("uid", "")
            m = re.match(r"^\$\{?(\w+)\}?$", uid)
            check(m and m.group(1) in variables,
                  "%s: panel %s: datasource %r is not a dashboard variable"
                  % (base, p.get("title"), uid))
check(len(exprs) >= 10, "only %d expressions found in the rules and dashboards" % len(exprs))

used = set()
for where, e in exprs:
    for name in re.findall(r"\b(ebmd_[a-z0-9_]+)\b", e):
        used.add(name)
        check(name in names, "%s: %s is not exported by ebmd's /metrics" % (where, name))
    for name, body in re.findall(r"\b(ebmd_[a-z0-9_]+)\s*\{([^}]*)\}", e):
        known = labels.get(name, {})
        for k, op, v in re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"', body):
            if k in TARGET_LABELS:
                continue
            if not check(k in known, "%s: %s has no label %s (it has %s)"
                         % (where, name, k, sorted(known))):
                continue
            # ebmd writes every value of these (e.g. result ok/error).
            if op == "=" and name in ("ebmd_model_reloads_total",
                                      "ebmd_connections_dropped_total"):
                check(v in known[k], "%s: %s{%s=\"%s\"}: ebmd exports %s"
                      % (where, name, k, v, sorted(known[k])))
    for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", e):
        for k in re.findall(r"\w+", group):
            check(k in all_labels, "%s: by (%s): no ebmd metric has label %s" % (where, group, k))
print("used: " + ", ".join(sorted(used)))
unused = sorted(f for f in families if not any(u == f or u.startswith(f + "_") for u in used))
if unused:
    print("note: not on the dashboard or in the rules: " + ", ".join(unused))

# ---- ebmd(8) documents every metric -------------------------------------------
man = open(os.path.join(ROOT, "docs/man/ebmd.8.scd"), encoding="utf-8").read()
m = re.search(r"^# METRICS\n(.*?)(?=^# )", man, re.S | re.M)
if check(m, "ebmd.8.scd has no METRICS section"):
    documented = set(re.findall(r"^\*(ebmd_\w+)\*", m.group(1), re.M))
    for f in sorted(families):
        check(f in documented, "ebmd(8) METRICS does not document %s" % f)
    for f in sorted(documented - set(families)):
        check(False, "ebmd(8) METRICS documents %s, which /metrics does not export" % f)

# ---- promtool ------------------------------------------------------------------
if PROMTOOL:
    pdir = os.path.join(ROOT, "deploy/prometheus")
    rules = [p for p in glob.glob(os.path.join(pdir, "*.yaml")) if not p.endswith(".test.yaml")]
    tests = glob.glob(os.path.join(pdir, "*.test.yaml"))
    check(rules and tests, "no rules or no rule tests in deploy/prometheus")
    for cmd in ([PROMTOOL, "check", "rules"] + rules, [PROMTOOL, "test", "rules"] + tests):
        r = subprocess.run(cmd, cwd=pdir, capture_output=True, text=True, timeout=120)
        if check(r.returncode == 0, "promtool %s:\n%s%s"
                 % (" ".join(cmd[1:3]), r.stdout, r.stderr)):
            print("promtool %s: ok" % " ".join(cmd[1:3]))
else:
    print("promtool not found: rules syntax and unit tests not run "
          "(scripts/install-deps.sh installs it with Debian's prometheus)")

print("%d expressions, %d problems" % (len(exprs), len(problems)))
sys.exit(1 if problems else 0)
