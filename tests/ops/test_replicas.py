#!/usr/bin/env python3
"""Three ebmd replicas behind HAProxy: readiness gating, a rolling model
update and a rolling restart under load, with no failed request.

Usage: test_replicas.py EBMD HAPROXY MODELS_DIR

On 127.0.0.1 only: three ebmd processes (one worker thread each, port 0,
each with its own models directory) and HAProxy in front of them
(round robin, health check GET /readyz every 100 ms). Steps:

1. Replicas 0 and 1 start with model "demo" (MODELS_DIR/demo.ebm, the old
   version); replica 2 starts with an empty directory, so its /readyz is
   503 and HAProxy must send it nothing. Then demo.ebm is copied in and
   the replica gets SIGHUP: it turns ready and HAProxy adds it.
2. Load: CLIENTS threads send one-row score requests through HAProxy on
   keep-alive connections, for at most MAX_SECONDS or MAX_REQUESTS.
3. Rollout, one replica at a time: the new version (MODELS_DIR/demo-cd.ebm,
   same features, another checksum) is written to a temporary name in the
   replica's directory and renamed over demo.ebm, then SIGHUP; the next
   replica only once this one serves the new version.

Then: every request got 200; every answer's "version" is the old or the
new one; both were seen; each replica answered; per client thread and
replica the version never goes back from new to old (a reload swaps it
atomically); after the rollout every answer is new; and the replicas'
ebmd_rows_scored_total sum to the rows answered (metrics are per
process).

4. A rolling restart under new load: each replica in turn gets SIGTERM
   (it must exit 0) and is started again on its port; HAProxy resends
   what a stopping replica refuses (retry-on 503 and closed connections,
   redispatch). Every request got 200, from the new version, and each
   restarted replica answers again.

Exits non-zero on any failure.
"""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

EBMD, HAPROXY, MODELS = sys.argv[1:4]
if not HAPROXY or not os.path.exists(HAPROXY):
    print("SKIP: no haproxy (scripts/install-deps.sh installs it)")
    sys.exit(77)
OLD_FILE = os.path.join(MODELS, "demo.ebm")
NEW_FILE = os.path.join(MODELS, "demo-cd.ebm")
CLIENTS = 4
MAX_SECONDS = 90.0
MAX_REQUESTS = 200000
ROW = [0.774, 0.00113, 0.138, 0.276, 0.296, 0.236]
SLOW = float(os.environ.get("EBMD_SLOW", "1"))

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL: " + msg, flush=True)
    return cond


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise RuntimeError("timed out after %.0f s waiting for %s" % (timeout * SLOW, what))


def get(port, path, timeout=5):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


class Replica:
    def __init__(self, root, i, with_model):
        self.name = "r%d" % i
        self.dir = os.path.join(root, self.name)
        self.models = os.path.join(self.dir, "models")
        os.makedirs(self.models)
        if with_model:
            shutil.copy(OLD_FILE, os.path.join(self.models, "demo.ebm"))
        self.starts = 0
        self.start(0)

    def start(self, port):
        """Starts ebmd on port (0: the kernel picks one)."""
        self.starts += 1
        conf = os.path.join(self.dir, "ebmd.conf")
        with open(conf, "w") as f:
            f.write("[server]\nlisten = 127.0.0.1:%d\nthreads = 1\n"
                    "[models]\ndir = %s\n[log]\nlevel = info\n"
                    % (port, self.models))
        self.log = open(os.path.join(self.dir, "ebmd-%d.log" % self.starts), "w+")
        self.proc = subprocess.Popen([EBMD, "--config", conf],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.port = int(wait_for(self._port, 60, self.name + " to listen"))

    def _port(self):
        self.log.flush()
        with open(self.log.name) as f:
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", f.read())
        return m.group(1) if m else None

    def version(self):
        try:
            status, body = get(self.port, "/v1/models/demo")
        except OSError:
            return None
        return json.loads(body)["version"] if status == 200 else None

    def install(self, src):
        """What a deploy tool does: write next to the target, rename."""
        tmp = os.path.join(self.models, ".demo.ebm.tmp")
        shutil.copy(src, tmp)
        os.rename(tmp, os.path.join(self.models, "demo.ebm"))
        self.proc.send_signal(signal.SIGHUP)

    def rows_scored(self):
        _, body = get(self.port, "/metrics")
        m = re.search(r'^ebmd_rows_scored_total\{model="demo"\} (\d+)$',
                      body.decode(), re.M)
        return int(m.group(1)) if m else 0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30 * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                check(False, "%s did not stop on SIGTERM" % self.name)
        check(self.proc.returncode == 0,
              "%s exited %s" % (self.name, self.proc.returncode))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def haproxy_stat(sock_path):
    """{server name: status} from HAProxy's stats socket."""
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    s.sendall(b"show stat\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    out = {}
    for line in data.decode().splitlines():
        f = line.split(",")
        if len(f) > 17 and f[0] == "ebmd" and f[1].startswith("r"):
            out[f[1]] = f[17]
    return out


class Load:
    """CLIENTS threads, each a keep-alive connection through HAProxy."""

    def __init__(self, port):
        self.port = port
        self.stop = threading.Event()
        self.results = [[] for _ in range(CLIENTS)]  # (start, replica, status, version)
        self.count = 0
        self.lock = threading.Lock()
        self.body = json.dumps({"instances": [ROW]})
        self.threads = [threading.Thread(target=self.run, args=(k,))
                        for k in range(CLIENTS)]
        self.t0 = time.monotonic()

    def start(self):
        for t in self.threads:
            t.start()

    def run(self, k):
        conn = None
        out = self.results[k]
        while not self.stop.is_set():
            with self.lock:
                if self.count >= MAX_REQUESTS or \
                        time.monotonic() - self.t0 > MAX_SECONDS * SLOW:
                    break
                self.count += 1
            t_start = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                      timeout=10 * SLOW)
                conn.request("POST", "/v1/models/demo/score", self.body,
                             {"Content-Type": "application/json"})
                r = conn.getresponse()
                body = r.read()
                version = None
                if r.status == 200:
                    version = json.loads(body)["version"]
                out.append((t_start, r.getheader("X-Replica"),
                            r.status, version))
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException, ValueError) as e:
                out.append((t_start, None, repr(e), None))
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join()

    def all(self):
        return [r for rs in self.results for r in rs]

    def n(self):
        return sum(len(rs) for rs in self.results)


def main():
    root = tempfile.mkdtemp(prefix="ebmd-replicas-")
    replicas = []
    haproxy = None
    load = None
    try:
        replicas = [Replica(root, i, with_model=(i < 2)) for i in range(3)]
        old = replicas[0].version()
        # The new version as ebmd names it (the same file under demo.ebm).
        probe = Replica(root, 9, with_model=False)
        shutil.copy(NEW_FILE, os.path.join(probe.models, "demo.ebm"))
        probe.proc.send_signal(signal.SIGHUP)
        new = wait_for(probe.version, 30, "the new version")
        probe.stop()
        print("old version %s, new version %s" % (old, new), flush=True)
        check(old and new and old != new, "two distinct versions")

        sock = os.path.join(root, "haproxy.sock")
        port = free_port()
        cfg = os.path.join(root, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write("""global
    maxconn 512
    stats socket %s level admin
    log stderr format raw local0 info
defaults
    mode http
    log global
    option httplog
    option dontlog-normal
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    # A request refused by a stopping replica (503, or its connection
    # closed) is sent again to another one; the whole request is buffered
    # so that it can be.
    retries 2
    option redispatch 1
    retry-on all-retryable-errors 503
    option http-buffer-request
frontend fe
    bind 127.0.0.1:%d
    default_backend ebmd
backend ebmd
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 100ms fastinter 100ms downinter 100ms rise 1 fall 1
    http-response set-header X-Replica %%[srv_name]
""" % (sock, port))
            for r in replicas:
                f.write("    server %s 127.0.0.1:%d check\n" % (r.name, r.port))
        hlog = open(os.path.join(root, "haproxy.log"), "w+")
        haproxy = subprocess.Popen([HAPROXY, "-db", "-f", cfg],
                                   stdout=hlog, stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(sock), 20, "HAProxy's stats socket")

        # 1. Readiness gating: r2 has no model, /readyz 503, no traffic.
        check(get(replicas[2].port, "/readyz")[0] == 503, "r2 not ready")
        wait_for(lambda: haproxy_stat(sock) == {"r0": "UP", "r1": "UP",
                                                "r2": "DOWN"},
                 20, "HAProxy: r0, r1 UP and r2 DOWN")
        load = Load(port)
        load.start()
        time.sleep(0.5)
        before = load.all()
        check(before and all(r[1] in ("r0", "r1") for r in before),
              "while r2 is not ready, only r0 and r1 answer")
        replicas[2].install(OLD_FILE)
        wait_for(lambda: haproxy_stat(sock).get("r2") == "UP", 20,
                 "HAProxy to add r2 once it is ready")
        wait_for(lambda: any(r[1] == "r2" for r in load.all()), 20,
                 "r2 to answer")
        print("readiness gating: r2 joined after its model arrived "
              "(%d requests so far)" % load.n(), flush=True)

        # 3. Roll the new version out, one replica at a time.
        time.sleep(0.3)
        for r in replicas:
            r.install(NEW_FILE)
            wait_for(lambda: r.version() == new, 30, r.name + " to serve the new version")
            n_before = load.n()
            wait_for(lambda: load.n() > n_before + 200, 30, "more answers")
            print("%s now serves %s (%d requests so far)" % (r.name, new, load.n()),
                  flush=True)
        rollout_done = time.monotonic()
        n_done = load.n()
        wait_for(lambda: load.n() > n_done + 500, 30, "answers after the rollout")
        load.finish()

        res = load.all()
        print("%d requests through HAProxy" % len(res), flush=True)
        bad = [r for r in res if r[2] != 200]
        check(not bad, "%d failed requests, e.g. %r" % (len(bad), bad[:5]))
        versions = {r[3] for r in res}
        check(versions <= {old, new}, "versions seen: %r" % versions)
        check(versions == {old, new}, "both versions answered: %r" % versions)
        per_replica = {n: sum(1 for r in res if r[1] == n) for n in ("r0", "r1", "r2")}
        print("answers per replica: %r" % per_replica, flush=True)
        check(all(per_replica.values()), "each replica answered")
        for k, rs in enumerate(load.results):
            for name in ("r0", "r1", "r2"):
                seq = [r[3] for r in rs if r[1] == name]
                if new in seq:
                    first = seq.index(new)
                    check(old not in seq[first:],
                          "client %d: %s went back to the old version" % (k, name))
        # Requests sent once the last replica answered with the new version.
        late = [r for r in res if r[0] > rollout_done]
        check(late and all(r[3] == new for r in late),
              "after the rollout every answer is new (%d answers)" % len(late))
        mixed = [r for r in res if r[0] < rollout_done]
        check({r[3] for r in mixed} == {old, new},
              "during the rollout both versions answered")
        scored = sum(r.rows_scored() for r in replicas)
        check(scored == len(res),
              "the replicas' ebmd_rows_scored_total sum to %d, %d answered"
              % (scored, len(res)))

        # 4. A rolling restart under load: SIGTERM turns /readyz 503 and
        # drains; requests that reach the stopping replica get 503, which
        # HAProxy retries on another one (retry-on 503, redispatch).
        load = Load(port)
        load.start()
        time.sleep(0.3)
        for r in replicas:
            r.stop()
            r.start(r.port)
            # Restarted on the same port: HAProxy may not even have seen it
            # down. What counts is that it answers again.
            t_up = time.monotonic()
            wait_for(lambda: any(x[1] == r.name and x[0] > t_up
                                 for x in load.all()), 20,
                     "%s to answer after its restart" % r.name)
            print("%s restarted (%d requests so far)" % (r.name, load.n()),
                  flush=True)
        load.finish()
        res = load.all()
        bad = [x for x in res if x[2] != 200]
        print("rolling restart: %d requests, %d failed" % (len(res), len(bad)),
              flush=True)
        check(not bad, "rolling restart: %d failed requests, e.g. %r"
              % (len(bad), bad[:5]))
        check({x[3] for x in res} == {new}, "rolling restart: versions %r"
              % {x[3] for x in res})
    except Exception as e:  # a timeout or a crash of the test itself
        check(False, "%s: %s" % (type(e).__name__, e))
    finally:
        if load is not None:
            load.finish()
        if haproxy is not None:
            haproxy.terminate()
            haproxy.wait()
        for r in replicas:
            r.stop()
        if failures:
            for r in replicas:
                r.log.seek(0)
                print("---- %s log (tail)\n%s" % (r.name, "".join(r.log.readlines()[-15:])))
            print("logs kept in " + root)
        else:
            shutil.rmtree(root)
    print("%d failures" % len(failures))
    sys.exit(1 if failures else 0)


main()
