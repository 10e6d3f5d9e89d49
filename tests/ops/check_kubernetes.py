#!/usr/bin/env python3
"""The Kubernetes manifests (deploy/kubernetes/) say what ebmd does.

Usage: check_kubernetes.py EBMD SOURCE_ROOT

Parses every manifest with PyYAML (Debian's python3-yaml) and checks the
fields that matter against the sources of truth:
  - kustomization.yaml lists every manifest, and only those;
  - the ConfigMap's ebmd.conf passes `ebmd --check-config` (the models
    directory, a volume in the pod, replaced by --models with the shipped
    models laid out as a ConfigMap volume lays them out: symlinks into a
    ..data directory); its listen port is the container port, its models
    dir the models volume's mount path, its threads no more than the CPU
    limit;
  - the container's --config path is where the ConfigMap is mounted;
  - the probes: liveness GET /healthz and readiness GET /readyz on the
    container port, and those paths answer 200 on a running ebmd started
    with that configuration (and /readyz 503 without a model);
  - resources: CPU and memory requests and limits;
  - the security context matches systemd/ebmd.service: each hardening
    directive found in the unit requires its Kubernetes counterpart;
  - the Service selects the pods and targets the container port; the
    PodDisruptionBudget selects them too.
Prints one line per problem; exits 1 if there was any.
"""

import glob
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import yaml

EBMD, ROOT = sys.argv[1:3]
KDIR = os.path.join(ROOT, "deploy/kubernetes")
problems = []


def check(cond, msg):
    if not cond:
        problems.append(msg)
        print("FAIL: " + msg)
    return cond


def dig(obj, *path, default=None):
    for p in path:
        if isinstance(obj, dict) and p in obj:
            obj = obj[p]
        elif isinstance(obj, list) and isinstance(p, int) and p < len(obj):
            obj = obj[p]
        else:
            return default
    return obj


# ---- parse --------------------------------------------------------------------
docs = {}          # kind -> [doc]
files = sorted(os.path.basename(p) for p in glob.glob(os.path.join(KDIR, "*.yaml")))
kustomization = None
for name in files:
    with open(os.path.join(KDIR, name), encoding="utf-8") as f:
        for doc in yaml.safe_load_all(f):
            if doc is None:
                continue
            check("apiVersion" in doc and "kind" in doc,
                  "%s: a document without apiVersion/kind" % name)
            if doc.get("kind") == "Kustomization":
                kustomization = doc
                continue
            docs.setdefault(doc.get("kind"), []).append((name, doc))

if check(kustomization is not None, "no kustomization.yaml"):
    listed = sorted(kustomization.get("resources", []))
    check(listed == sorted(n for n in files if n != "kustomization.yaml"),
          "kustomization resources %r are not the manifests %r" % (listed, files))


def one(kind):
    found = docs.get(kind, [])
    check(len(found) == 1, "expected one %s, found %d" % (kind, len(found)))
    return found[0][1] if found else {}


dep = one("Deployment")
svc = one("Service")
cms = {d["metadata"]["name"]: d for _, d in docs.get("ConfigMap", [])}
pdb = one("PodDisruptionBudget")

pod = dig(dep, "spec", "template", "spec", default={})
labels = dig(dep, "spec", "template", "metadata", "labels", default={})
check(dig(dep, "spec", "replicas", default=0) >= 2,
      "Deployment: fewer than 2 replicas")
check(dig(dep, "spec", "selector", "matchLabels") and
      all(labels.get(k) == v for k, v in dep["spec"]["selector"]["matchLabels"].items()),
      "Deployment: selector does not match the pod labels")
check(dig(dep, "spec", "strategy", "rollingUpdate", "maxUnavailable") == 0,
      "Deployment: a rolling update may take a replica away before its "
      "successor is ready (maxUnavailable != 0)")
containers = pod.get("containers", [])
check(len(containers) == 1, "Deployment: expected one container")
c = containers[0] if containers else {}
check(":" in c.get("image", "") and not c.get("image", "").endswith(":latest"),
      "container image without a fixed tag: %r" % c.get("image"))

# ---- ports -------------------------------------------------------------------
ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
check(len(ports) == 1, "container: expected one port, got %r" % ports)
port_name, port = next(iter(ports.items())) if ports else (None, None)


def resolves(target):
    return target == port or (target == port_name and port_name is not None)


# ---- volumes and the configuration -------------------------------------------
volumes = {v["name"]: v for v in pod.get("volumes", [])}
mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
for name, m in mounts.items():
    check(name in volumes, "volumeMount %s has no volume" % name)
    check(m.get("readOnly") is True, "volumeMount %s is not read-only" % name)
args = c.get("args", [])
conf_path = args[args.index("--config") + 1] if "--config" in args else None
check(conf_path is not None, "container: no --config in args %r" % args)
conf_text = None
for name, m in mounts.items():
    v = volumes.get(name, {})
    cm_name = dig(v, "configMap", "name")
    if conf_path and os.path.dirname(conf_path) == m["mountPath"] and cm_name:
        check(cm_name in cms, "volume %s: no ConfigMap %s in the manifests" % (name, cm_name))
        conf_text = dig(cms.get(cm_name, {}), "data", os.path.basename(conf_path))
check(conf_text is not None,
      "no ConfigMap mounted with %s in it" % conf_path)
conf_text = conf_text or ""


def conf_value(section, key):
    sec = None
    for line in conf_text.splitlines():
        line = line.strip()
        m = re.match(r"^\[(.*)\]$", line)
        if m:
            sec = m.group(1)
        m = re.match(r"^([a-z_]+)\s*=\s*(.*?)(\s+;.*)?$", line)
        if m and sec == section and m.group(1) == key:
            return m.group(2)
    return None


listen = conf_value("server", "listen") or "127.0.0.1:8080"
check(listen.rsplit(":", 1)[0] in ("0.0.0.0", "[::]"),
      "ebmd.conf listen %s: not every interface of the pod" % listen)
check(listen.rsplit(":", 1)[1] == str(port),
      "ebmd.conf listen %s: not the container port %s" % (listen, port))
models_dir = conf_value("models", "dir") or "models"
models_mounts = [m for m in mounts.values() if m["mountPath"] == models_dir]
check(len(models_mounts) == 1,
      "ebmd.conf [models] dir %s is not a volume mount (%r)"
      % (models_dir, [m["mountPath"] for m in mounts.values()]))


def cpu(v):
    v = str(v)
    return float(v[:-1]) / 1000 if v.endswith("m") else float(v)


res = c.get("resources", {})
for kind in ("requests", "limits"):
    for r in ("cpu", "memory"):
        check(dig(res, kind, r) is not None, "container: no resources.%s.%s" % (kind, r))
threads = int(conf_value("server", "threads") or "0")
if dig(res, "limits", "cpu") is not None:
    check(1 <= threads <= cpu(res["limits"]["cpu"]),
          "ebmd.conf threads = %d: set it to at most the CPU limit %s "
          "(0 counts the node's CPUs)" % (threads, res["limits"]["cpu"]))

# ---- probes ------------------------------------------------------------------
probes = {}
for kind, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
    p = dig(c, kind, "httpGet", default={})
    check(p.get("path") == path, "%s path %r, expected %s" % (kind, p.get("path"), path))
    check(resolves(p.get("port")), "%s port %r is not the container port %s/%s"
          % (kind, p.get("port"), port_name, port))
    probes[kind] = p.get("path")

# ---- security context vs the systemd unit ------------------------------------
unit = open(os.path.join(ROOT, "systemd/ebmd.service"), encoding="utf-8").read()
sc = c.get("securityContext", {})
psc = pod.get("securityContext", {})


def either(*path):
    v = dig(sc, *path)
    return v if v is not None else dig(psc, *path)


mapping = [
    # unit directive (regex), what Kubernetes must say, its value
    (r"^DynamicUser=yes$", "runAsNonRoot", lambda: either("runAsNonRoot") is True),
    (r"^DynamicUser=yes$", "runAsUser != 0",
     lambda: (either("runAsUser") or 0) != 0),
    (r"^NoNewPrivileges=yes$", "allowPrivilegeEscalation: false",
     lambda: sc.get("allowPrivilegeEscalation") is False),
    (r"^CapabilityBoundingSet=$", "capabilities.drop [ALL]",
     lambda: dig(sc, "capabilities", "drop") == ["ALL"] and
     not dig(sc, "capabilities", "add")),
    (r"^ProtectSystem=strict$", "readOnlyRootFilesystem: true",
     lambda: sc.get("readOnlyRootFilesystem") is True),
    (r"^SystemCallFilter=", "seccompProfile RuntimeDefault",
     lambda: either("seccompProfile", "type") == "RuntimeDefault"),
    (r"^PrivateDevices=yes$", "privileged not true",
     lambda: sc.get("privileged") is not True),
]
n_hardening = 0
for rx, what, ok in mapping:
    if re.search(rx, unit, re.M):
        n_hardening += 1
        check(ok(), "the unit has %s, the container lacks %s" % (rx.strip("^$"), what))
check(n_hardening >= 5, "only %d hardening directives found in the unit?" % n_hardening)
check(pod.get("automountServiceAccountToken") is False,
      "the pod mounts a service account token ebmd never uses")

# ---- Service, PodDisruptionBudget --------------------------------------------
sel = dig(svc, "spec", "selector", default={})
check(sel and all(labels.get(k) == v for k, v in sel.items()),
      "Service selector %r does not select the pods %r" % (sel, labels))
for p in dig(svc, "spec", "ports", default=[]):
    check(resolves(p.get("targetPort")), "Service targetPort %r is not the container port"
          % p.get("targetPort"))
psel = dig(pdb, "spec", "selector", "matchLabels", default={})
check(psel and all(labels.get(k) == v for k, v in psel.items()),
      "PodDisruptionBudget does not select the pods")
check(0 < dig(pdb, "spec", "minAvailable", default=0) < dig(dep, "spec", "replicas", default=0),
      "PodDisruptionBudget minAvailable must leave room for one disruption")

# ---- the configuration on a real ebmd ----------------------------------------
tmp = tempfile.mkdtemp(prefix="ebmd-k8s-")
try:
    conf = os.path.join(tmp, "ebmd.conf")
    with open(conf, "w") as f:
        f.write(conf_text)
    # A ConfigMap volume: KEY -> ..data/KEY, ..data -> ..TIMESTAMP/.
    vol = os.path.join(tmp, "models")
    stamp = os.path.join(vol, "..2026_01_01_00_00_00.000000000")
    os.makedirs(stamp)
    for m in glob.glob(os.path.join(ROOT, "models/*.ebm")):
        shutil.copy(m, stamp)
        os.symlink(os.path.join("..data", os.path.basename(m)),
                   os.path.join(vol, os.path.basename(m)))
    os.symlink(os.path.basename(stamp), os.path.join(vol, "..data"))
    r = subprocess.run([EBMD, "--config", conf, "--models", vol, "--check-config"],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "ebmd --check-config on the ConfigMap's ebmd.conf: %s"
          % r.stderr.strip())
    n_models = len(re.findall(r"^model ", r.stdout, re.M))
    check(n_models == len(glob.glob(os.path.join(ROOT, "models/*.ebm"))),
          "check-config on a ConfigMap-style models volume lists %d models: %s"
          % (n_models, r.stdout))

    # The probe paths on a running ebmd with this configuration (port 0 on
    # loopback instead of the pod's port).
    def serve(models):
        log = open(os.path.join(tmp, "ebmd.log"), "w+")
        p = subprocess.Popen([EBMD, "--config", conf, "--models", models,
                              "--listen", "127.0.0.1:0"],
                             stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", open(log.name).read())
            if m:
                return p, int(m.group(1))
            time.sleep(0.05)
        p.kill()
        raise RuntimeError("ebmd did not start: " + open(log.name).read())

    def status(port, path):
        h = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        h.request("GET", path)
        s = h.getresponse().status
        h.close()
        return s

    for models, want_ready in ((vol, 200), (os.path.join(tmp, "empty"), 503)):
        os.makedirs(models, exist_ok=True)
        try:
            p, hport = serve(models)
        except RuntimeError as e:
            check(False, str(e))
            break
        try:
            check(status(hport, probes.get("livenessProbe", "/healthz")) == 200,
                  "liveness probe %s is not 200" % probes.get("livenessProbe"))
            s = status(hport, probes.get("readinessProbe", "/readyz"))
            check(s == want_ready, "readiness probe %s: %d with %s, expected %d"
                  % (probes.get("readinessProbe"), s,
                     "models" if want_ready == 200 else "no model", want_ready))
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(30)
finally:
    shutil.rmtree(tmp)

print("%d manifests, %d problems" % (sum(len(v) for v in docs.values()), len(problems)))
sys.exit(1 if problems else 0)
