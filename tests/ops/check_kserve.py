#!/usr/bin/env python3
"""The KServe example (deploy/kubernetes/kserve/) runs ebmd as KServe expects.

Usage: check_kserve.py EBMD SOURCE_ROOT

Parses the ServingRuntime and the InferenceService with PyYAML and checks:
  - the InferenceService's model format and runtime name the
    ServingRuntime, which supports that format and protocol v2;
  - its storageUri is a pvc:// of the PersistentVolumeClaim declared
    beside it (models from a volume);
  - the container: the image of deploy/kubernetes/deployment.yaml (whose
    entrypoint is ebmd), --models at KServe's mount point /mnt/models,
    --listen on the container port, probes on /v2/health/ready and
    /v2/health/live on that port;
  - and on a running ebmd started with the container's arguments (listen
    moved to loopback, /mnt/models to a temporary directory): the
    readiness probe fails without a model and passes once one is there,
    the liveness probe passes, and a V2 infer request is answered.
Prints one line per problem; exits 1 if there was any.
"""

import http.client
import json
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
KDIR = os.path.join(ROOT, "deploy/kubernetes/kserve")
MOUNT = "/mnt/models"   # where KServe mounts storageUri
problems = []


def check(cond, msg):
    if not cond:
        problems.append(msg)
        print("FAIL: " + msg)
    return cond


docs = {}
for name in sorted(os.listdir(KDIR)):
    if name.endswith(".yaml"):
        with open(os.path.join(KDIR, name), encoding="utf-8") as f:
            for doc in yaml.safe_load_all(f):
                if doc is not None:
                    docs.setdefault(doc["kind"], []).append(doc)

runtime = docs.get("ServingRuntime", [None])[0]
isvc = docs.get("InferenceService", [None])[0]
pvcs = [d["metadata"]["name"] for d in docs.get("PersistentVolumeClaim", [])]
if not (check(runtime is not None, "no ServingRuntime")
        and check(isvc is not None, "no InferenceService")):
    sys.exit(1)

model = isvc["spec"]["predictor"]["model"]
check(model["runtime"] == runtime["metadata"]["name"],
      "InferenceService runtime %r is not the ServingRuntime %r"
      % (model["runtime"], runtime["metadata"]["name"]))
formats = [f["name"] for f in runtime["spec"]["supportedModelFormats"]]
check(model["modelFormat"]["name"] in formats, "model format %r not in %r"
      % (model["modelFormat"]["name"], formats))
check("v2" in runtime["spec"]["protocolVersions"]
      and model.get("protocolVersion") == "v2", "protocol v2")
m = re.fullmatch(r"pvc://([^/]+)/?.*", model["storageUri"])
check(m is not None and m.group(1) in pvcs,
      "storageUri %r is not a pvc:// of a claim declared here (%r)"
      % (model["storageUri"], pvcs))

(container,) = runtime["spec"]["containers"]
with open(os.path.join(ROOT, "deploy/kubernetes/deployment.yaml")) as f:
    deployment = yaml.safe_load(f)
dep_image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
check(container["image"] == dep_image, "image %r, the Deployment runs %r"
      % (container["image"], dep_image))
with open(os.path.join(ROOT, "deploy/container/Dockerfile")) as f:
    check('ENTRYPOINT ["/usr/sbin/ebmd"]' in f.read(),
          "the image's entrypoint is not ebmd")
args = container["args"]
opts = dict(zip(args[::2], args[1::2]))
check(opts.get("--models") == MOUNT, "--models %r, KServe mounts at %s"
      % (opts.get("--models"), MOUNT))
port = container["ports"][0]["containerPort"]
check(opts.get("--listen", "").rsplit(":", 1)[-1] == str(port),
      "--listen %r vs containerPort %d" % (opts.get("--listen"), port))
probes = {}
for kind in ("readinessProbe", "livenessProbe"):
    get = container[kind]["httpGet"]
    check(get["port"] == port, "%s port %r" % (kind, get["port"]))
    probes[kind] = get["path"]
check(probes == {"readinessProbe": "/v2/health/ready",
                 "livenessProbe": "/v2/health/live"}, "probes %r" % probes)

# ---- the container's arguments on a real ebmd ----------------------------------
tmp = tempfile.mkdtemp(prefix="ebmd-kserve-")
run_args = ["127.0.0.1:0" if a == opts.get("--listen") else
            tmp if a == MOUNT else a for a in args]
log = open(os.path.join(tmp, "ebmd.log"), "w+")
p = subprocess.Popen([EBMD, *run_args], stdout=log, stderr=subprocess.STDOUT)


def request(method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", bound, timeout=30)
    try:
        c.request(method, path, body, {"Content-Type": "application/json"}
                  if body else {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


try:
    bound = None
    deadline = time.monotonic() + 60
    while bound is None and time.monotonic() < deadline:
        log.seek(0)
        m = re.search(r"listening on [\d.]+:(\d+)", log.read())
        bound = int(m.group(1)) if m else None
        time.sleep(0.05)
    if check(bound is not None, "ebmd did not start"):
        time.sleep(0.2)
        st, _ = request("GET", probes["livenessProbe"])
        check(st == 200, "liveness probe without a model: %d" % st)
        st, _ = request("GET", probes["readinessProbe"])
        check(not 200 <= st < 400, "readiness passes without a model: %d"
              % st)
        shutil.copy(os.path.join(ROOT, "models/demo.ebm"), tmp)
        st, body = request("POST", "/v2/repository/models/demo/load")
        check(st == 200, "repository load: %d %r" % (st, body))
        st, _ = request("GET", probes["readinessProbe"])
        check(st == 200, "readiness probe with a model: %d" % st)
        st, body = request("POST", "/v2/models/demo/infer", json.dumps(
            {"inputs": [{"name": "input", "datatype": "FP32",
                         "shape": [1, 6], "data": [0, 0, 0, 0, 0, 0]}]}))
        check(st == 200 and len(json.loads(body)["outputs"]) == 4,
              "V2 infer: %d %r" % (st, body[:200]))
finally:
    p.send_signal(signal.SIGTERM)
    check(p.wait(30) == 0, "ebmd exit code")
    shutil.rmtree(tmp, ignore_errors=True)

print("%d problem%s" % (len(problems), "" if len(problems) == 1 else "s"))
sys.exit(1 if problems else 0)
