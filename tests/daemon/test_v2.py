#!/usr/bin/env python3
"""End-to-end test of ebmd's Open Inference Protocol (API.md section 5):
the real daemon, the fixtures of test_daemon.py (models trained at test
time), driven over HTTP.

Usage: test_v2.py EBMD EBMD_TRAIN DATA_DIR

Every row of section 5's table; infer as JSON (nested, flat, FP64, one
tensor per feature) and with the binary tensor data extension both ways,
checked bit for bit against /v1/models/{name}/score; every bad input
(400 naming what and where, the server still answering); the status
precedence of section 2 under /v2 in the protocol's error shape; the
model repository (index with failed files, load, unload, SIGHUP) and its
token; metrics labels.

There is no V2 client in Debian (no tritonclient, no kserve package), so
V2Client below sends what the protocol's HTTP clients send (tritonclient's
http module): JSON, or JSON header + raw little-endian tensors with
Inference-Header-Content-Length and each input's binary_data_size,
outputs asked for with parameters.binary_data.

Environment: EBMD_TESTS, EBMD_WRAP, EBMD_SLOW as for test_daemon.py.
"""

import json
import math
import os
import shutil
import signal
import struct
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_daemon as T  # noqa: E402  (trains the fixtures, starts MAIN)
from test_daemon import check, Failure  # noqa: E402

MAIN = T.MAIN
ROWS = T.NORMAL + T.FAR
FEATURES = T.FEATURES
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def f32(v):
    """v rounded to a 32-bit float, as Python's float."""
    return struct.unpack("<f", struct.pack("<f", v))[0]


# ---------------------------------------------------------------------------
# A V2 client after the protocol (what tritonclient.http sends)
# ---------------------------------------------------------------------------

class V2Client:
    def __init__(self, d, headers=None):
        self.d = d
        self.headers = dict(headers or {})

    def infer(self, model, inputs, outputs=None, parameters=None,
              request_id=None, binary_output=None, version=None,
              content_type="application/octet-stream"):
        """inputs: [(name, datatype, shape, flat values, binary?)].
        outputs: [(name, binary?)] or None. Returns (status, header dict,
        {name: values}) with binary outputs decoded."""
        doc = {"inputs": []}
        raw = b""
        for name, dt, shape, values, binary in inputs:
            t = {"name": name, "datatype": dt, "shape": list(shape)}
            if binary:
                fmt = "<%d%s" % (len(values), "f" if dt == "FP32" else "d")
                data = struct.pack(fmt, *values)
                t["parameters"] = {"binary_data_size": len(data)}
                raw += data
            else:
                t["data"] = list(values)
            doc["inputs"].append(t)
        if outputs is not None:
            doc["outputs"] = [
                {"name": n, "parameters": {"binary_data": b}}
                if b is not None else {"name": n} for n, b in outputs]
        params = dict(parameters or {})
        if binary_output is not None:
            params["binary_data_output"] = binary_output
        if params:
            doc["parameters"] = params
        if request_id is not None:
            doc["id"] = request_id
        head = json.dumps(doc).encode()
        hdrs = dict(self.headers)
        if raw:
            hdrs["Inference-Header-Content-Length"] = str(len(head))
            if content_type is not None:
                hdrs["Content-Type"] = content_type
        else:
            hdrs["Content-Type"] = "application/json"
        path = "/v2/models/%s%s/infer" % (
            model, "/versions/%s" % version if version else "")
        status, rh, body = self.d.request("POST", path, head + raw, hdrs)
        return status, rh, decode_response(rh, body)


def decode_response(rh, body):
    """The response document with every output's values under "data"."""
    n = rh.get("inference-header-content-length")
    if n is None:
        doc = json.loads(body)
        return doc
    n = int(n)
    check(rh.get("content-type") == "application/octet-stream",
          "binary response Content-Type %r" % rh.get("content-type"))
    doc = json.loads(body[:n])
    at = n
    for o in doc["outputs"]:
        size = o.get("parameters", {}).get("binary_data_size")
        if size is None:
            continue
        check("data" not in o, "binary output with data: %r" % o)
        chunk = body[at:at + size]
        at += size
        code = {"FP32": "f", "FP64": "d", "BOOL": "?"}[o["datatype"]]
        width = struct.calcsize(code)
        check(size % width == 0, "binary_data_size %d of %s" % (size, code))
        o["data"] = list(struct.unpack("<%d%s" % (size // width, code),
                                       chunk))
        o["binary"] = True
    check(at == len(body), "response has %d bytes after its outputs"
          % (len(body) - at))
    return doc


def outputs(doc):
    return {o["name"]: o for o in doc["outputs"]}


def flat(rows):
    return [v for r in rows for v in r]


def v2_error(d, method, path, body=None, headers=None, status=400,
             message=None):
    """An error in the protocol's shape: {"error": "<message>"}."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    hdrs = {"Content-Type": "application/json"}
    hdrs.update(headers or {})
    st, rh, data = d.request(method, path, body, hdrs)
    check(st == status, "%s %s: status %d, wanted %d: %r"
          % (method, path, st, status, data[:300]))
    check(rh.get("content-type", "").startswith("application/json"),
          "%s %s: Content-Type %r" % (method, path, rh.get("content-type")))
    doc = json.loads(data)
    check(set(doc) == {"error"} and isinstance(doc["error"], str),
          "V2 error shape: %r" % doc)
    if message is not None:
        check(T.re.search(message, doc["error"]),
              "message %r does not match %r" % (doc["error"], message))
    return doc["error"]


def alive(d):
    check(d.json("GET", "/v2/health/live") == {"live": True}, "live")
    status, _, _ = V2Client(d).infer("thy", [("input", "FP32", [1, 6],
                                              ROWS[0], False)])
    check(status == 200, "a good request after a bad one: %d" % status)


# ---------------------------------------------------------------------------
# Health and metadata
# ---------------------------------------------------------------------------

@test
def health_server_model_metadata():
    check(MAIN.json("GET", "/v2/health/live") == {"live": True}, "live")
    check(MAIN.json("GET", "/v2/health/ready") == {"ready": True}, "ready")
    server = MAIN.json("GET", "/v2")
    check(server["name"] == "ebmd" and server["extensions"] == [
        "binary_tensor_data", "model_repository", "parameters"],
          "server metadata %r" % server)
    version = T.run_ebmd("--version")[1].split()[1]
    check(server["version"] == version, "version %r vs --version %r"
          % (server["version"], version))
    info = MAIN.json("GET", "/v1/models/thy")
    meta = MAIN.json("GET", "/v2/models/thy")
    want = {
        "name": "thy", "versions": [info["version"]], "platform": "ebmd",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 6]}],
        "outputs": [
            {"name": "energy", "datatype": "FP32", "shape": [-1]},
            {"name": "score", "datatype": "FP32", "shape": [-1]},
            {"name": "p_value", "datatype": "FP64", "shape": [-1]},
            {"name": "anomaly", "datatype": "BOOL", "shape": [-1]},
            {"name": "contributions", "datatype": "FP32", "shape": [-1, 6]},
        ],
        "parameters": {"alpha": info["alpha"],
                       "reference_size": info["reference_size"]},
    }
    check(meta == want, "model metadata %r" % meta)
    check(MAIN.json("GET", "/v2/models/thy/versions/%s" % info["version"])
          == want, "versioned metadata")
    check(MAIN.json("GET", "/v2/models/thy/ready")
          == {"name": "thy", "ready": True}, "model ready")
    check(MAIN.json("GET", "/v2/models/thy/versions/%s/ready"
                    % info["version"]) == {"name": "thy", "ready": True},
          "versioned ready")
    v2_error(MAIN, "GET", "/v2/models/nope/ready", status=404,
             message="nope")
    v2_error(MAIN, "GET", "/v2/models/nope", status=404)
    v2_error(MAIN, "GET", "/v2/models/thy/versions/000000000000/ready",
             status=404, message="version '000000000000'")
    v2_error(MAIN, "GET", "/v2/models/thy/versions/1", status=404)
    # A composition is served like a model.
    both = MAIN.json("GET", "/v1/models/both")
    meta = MAIN.json("GET", "/v2/models/both")
    check(meta["versions"] == [both["version"]]
          and meta["parameters"] == {"alpha": both["alpha"],
                                     "reference_size":
                                     both["reference_size"]},
          "composition metadata %r" % meta)
    # HEAD like GET; unknown paths under /v2 in the protocol's shape.
    status, _, body = MAIN.request("HEAD", "/v2/health/live")
    check(status == 200 and body == b"", "HEAD live")
    v2_error(MAIN, "GET", "/v2/nothing", status=404)
    v2_error(MAIN, "GET", "/v2/models/thy/explain", status=404)
    st, rh, _ = MAIN.request("GET", "/v2/models/thy/infer")
    check(st == 405 and rh.get("allow") == "POST", "405 infer %d %r"
          % (st, rh))
    st, rh, _ = MAIN.request("POST", "/v2/health/live")
    check(st == 405 and rh.get("allow") == "GET, HEAD", "405 live")
    st, _, _ = MAIN.request("GET", "/v2/repository/index")
    check(st == 405, "405 repository index: %d" % st)


# ---------------------------------------------------------------------------
# Infer: the numbers of /v1, bit for bit
# ---------------------------------------------------------------------------

def v1_columns(model, rows, **kw):
    r = T.score(MAIN, model, rows, **kw)
    res = r["results"]
    cols = {
        "energy": [x["energy"] for x in res],
        "score": [x["score"] for x in res],
        "p_value": [x["p_value"] for x in res],
        "anomaly": [x["anomaly"] for x in res],
    }
    if kw.get("explain"):
        cols["contributions"] = flat(x["contributions"] for x in res)
    return r, cols


def same_bits(a, b, dt):
    """Bit for bit; but /v1's JSON writes -0.0 as 0, so zeros compare by
    value."""
    code = {"FP32": "<f", "FP64": "<d"}[dt]
    return all(struct.pack(code, x) == struct.pack(code, y)
               or (x == 0 and y == 0) for x, y in zip(a, b)) \
        and len(a) == len(b)


def check_outputs(what, doc, cols, n, d=6):
    outs = outputs(doc)
    check(set(outs) == set(cols), "%s: outputs %r" % (what, list(outs)))
    types = {"energy": "FP32", "score": "FP32", "p_value": "FP64",
             "anomaly": "BOOL", "contributions": "FP32"}
    for name, want in cols.items():
        o = outs[name]
        check(o["datatype"] == types[name], "%s: %s datatype %r"
              % (what, name, o["datatype"]))
        shape = [n, d] if name == "contributions" else [n]
        check(o["shape"] == shape, "%s: %s shape %r" % (what, name,
                                                         o["shape"]))
        got = o["data"]
        if name == "anomaly":
            check([bool(x) for x in got] == want, "%s: anomaly %r vs %r"
                  % (what, got, want))
        elif name == "p_value":
            check(same_bits(got, want, "FP64"), "%s: p_value %r vs %r"
                  % (what, got, want))
        else:
            # /v1 prints the shortest decimal of the float: read back as a
            # float it is the same bits.
            check(same_bits(got, [f32(x) for x in want], "FP32"),
                  "%s: %s %r vs %r" % (what, name, got, want))


@test
def infer_matches_v1():
    n = len(ROWS)
    v1, cols = v1_columns("thy", ROWS)
    c = V2Client(MAIN)
    cases = {
        "JSON nested": [("input", "FP32", [n, 6], None, False)],
        "JSON FP64": [("x", "FP64", [n, 6], flat(ROWS), False)],
        "binary FP32": [("input", "FP32", [n, 6], flat(ROWS), True)],
        "binary FP64": [("input", "FP64", [n, 6], flat(ROWS), True)],
        "per feature [N]": [(f, "FP32", [n], [r[j] for r in ROWS], False)
                            for j, f in enumerate(FEATURES)],
        "per feature [N,1] binary": [
            (f, "FP64", [n, 1], [r[j] for r in ROWS], True)
            for j, f in reversed(list(enumerate(FEATURES)))],
    }
    for what, inputs in cases.items():
        if inputs[0][3] is None:
            # nested rows, as JSON clients send them
            head = {"inputs": [{"name": "input", "datatype": "FP32",
                                "shape": [n, 6], "data": ROWS}]}
            doc = MAIN.json("POST", "/v2/models/thy/infer", head)
        else:
            status, _, doc = c.infer("thy", inputs)
            check(status == 200, "%s: %d %r" % (what, status, doc))
        check(doc["model_name"] == "thy"
              and doc["model_version"] == v1["version"]
              and doc["parameters"] == {"alpha": v1["alpha"]}
              and "id" not in doc, "%s: header %r" % (what, doc))
        check_outputs(what, doc, cols, n)
        for binary in (True, False):
            status, rh, doc = c.infer("thy", inputs if inputs[0][3]
                                      is not None else cases["binary FP32"],
                                      binary_output=binary)
            check(status == 200, "%s binary out: %d" % (what, status))
            check(all(o.get("binary", False) == binary
                      for o in doc["outputs"]), "%s: binary_data_output %r"
                  % (what, binary))
            check_outputs(what + " (binary out)", doc, cols, n)
    # A composition through /v2 is the composition of /v1.
    _, cols = v1_columns("both", ROWS)
    status, _, doc = c.infer("both", cases["binary FP32"],
                             binary_output=True)
    check(status == 200, "composition infer %d" % status)
    check_outputs("composition", doc, cols, n)
    # Versioned path: the same.
    status, _, doc = c.infer("thy", cases["binary FP32"],
                             version=v1["version"])
    check(status == 200 and doc["model_version"] == v1["version"],
          "versioned infer")
    status, _, _ = c.infer("thy", cases["binary FP32"],
                           version="ffffffffffff")
    check(status == 404, "unknown version infer: %d" % status)
    # Content-Type: none with binary data is fine too (not a 415).
    status, _, _ = c.infer("thy", cases["binary FP32"], content_type=None)
    check(status == 200, "binary without Content-Type: %d" % status)


@test
def nan_is_a_missing_value():
    """NaN in a binary tensor is /v1's null (API.md section 6): the same
    energy, score, p_value and anomaly, bit for bit; every feature NaN is
    422 naming the row."""
    holes = [list(r) for r in ROWS[:3]]
    holes[0][1] = None
    holes[2][0] = holes[2][4] = None
    _, cols = v1_columns("thy", holes)
    c = V2Client(MAIN)
    vals = [math.nan if v is None else v for r in holes for v in r]
    for dt in ("FP32", "FP64"):
        status, _, doc = c.infer("thy", [("input", dt, [3, 6], vals, True)])
        check(status == 200, "NaN %s: %d %r" % (dt, status, doc))
        check_outputs("NaN " + dt, doc, cols, 3)
    status, _, body = post_v2(MAIN, {"inputs": [tensor(size=24)]},
                              struct.pack("<6f", *[math.nan] * 6),
                              header_len=len(json.dumps(
                                  {"inputs": [tensor(size=24)]})))
    check(status == 422 and "inputs[0]: every feature is missing"
          in json.loads(body)["error"], "all NaN: %d %r" % (status, body))


@test
def infer_parameters_id_outputs():
    n = len(ROWS)
    c = V2Client(MAIN)
    inp = [("input", "FP32", [n, 6], flat(ROWS), True)]
    v1, cols = v1_columns("thy", ROWS, alpha=0.5, explain=True)
    status, _, doc = c.infer("thy", inp, parameters={"alpha": 0.5,
                                                      "explain": True},
                             request_id="req-7")
    check(status == 200, "alpha+explain %d %r" % (status, doc))
    check(doc["id"] == "req-7", "id echoed: %r" % doc.get("id"))
    check(doc["parameters"] == {"alpha": 0.5}, "alpha in force")
    check([o["name"] for o in doc["outputs"]] == [
        "energy", "score", "p_value", "anomaly", "contributions"],
          "default outputs with explain")
    check_outputs("alpha+explain", doc, cols, n)
    # outputs select, in the order asked; contributions asked for
    # without explain are computed; binary per output.
    status, _, doc = c.infer("thy", inp, outputs=[
        ("contributions", True), ("p_value", None), ("anomaly", False)],
        parameters={"alpha": 0.5})
    check(status == 200, "outputs %d %r" % (status, doc))
    check([o["name"] for o in doc["outputs"]] == [
        "contributions", "p_value", "anomaly"], "outputs order")
    check([o.get("binary", False) for o in doc["outputs"]]
          == [True, False, False], "binary_data per output")
    check_outputs("selected", doc, {k: cols[k] for k in (
        "contributions", "p_value", "anomaly")}, n)
    # binary_data false on one output beats binary_data_output true
    status, _, doc = c.infer("thy", inp, outputs=[("energy", False),
                                                  ("score", None)],
                             binary_output=True)
    check([o.get("binary", False) for o in doc["outputs"]] == [False, True],
          "per-output binary_data wins: %r" % doc["outputs"])
    # the file's alpha without the parameter
    status, _, doc = c.infer("thy", inp)
    check(doc["parameters"]["alpha"] == MAIN.json(
        "GET", "/v1/models/thy")["alpha"], "file alpha")
    check("contributions" not in outputs(doc), "no contributions by default")


# ---------------------------------------------------------------------------
# Bad input: 400 naming what and where; the server stays live
# ---------------------------------------------------------------------------

def post_v2(d, head, raw=b"", header_len=None, headers=None,
            model="thy"):
    if isinstance(head, (dict, list)):
        head = json.dumps(head).encode()
    hdrs = {}
    if header_len is not None:
        hdrs["Inference-Header-Content-Length"] = str(header_len)
        hdrs["Content-Type"] = "application/octet-stream"
    else:
        hdrs["Content-Type"] = "application/json"
    hdrs.update(headers or {})
    return MAIN.request("POST", "/v2/models/%s/infer" % model, head + raw,
                        hdrs)


def expect_400(what, got, message):
    st, rh, body = got
    check(st == 400, "%s: status %d: %r" % (what, st, body[:300]))
    doc = json.loads(body)
    check(set(doc) == {"error"} and isinstance(doc["error"], str),
          "%s: shape %r" % (what, doc))
    check(T.re.search(message, doc["error"]), "%s: message %r, wanted %r"
          % (what, doc["error"], message))


def tensor(name="input", dt="FP32", shape=(1, 6), data=None, size=None):
    t = {"name": name, "datatype": dt, "shape": list(shape)}
    if size is not None:
        t["parameters"] = {"binary_data_size": size}
    else:
        t["data"] = data if data is not None else ROWS[0]
    return t


@test
def bad_inputs_are_400():
    row = struct.pack("<6f", *ROWS[0])
    one = {"inputs": [tensor(size=24)]}
    head = json.dumps(one).encode()
    cases = [
        ("header length beyond the body",
         post_v2(MAIN, head, row, header_len=len(head) + 100),
         r"Inference-Header-Content-Length: \d+ is beyond the body"),
        ("header length not a number",
         post_v2(MAIN, head, row, headers={
             "Inference-Header-Content-Length": "12x",
             "Content-Type": "application/octet-stream"}),
         "Inference-Header-Content-Length: not a byte count"),
        ("size not matching shape and datatype",
         post_v2(MAIN, {"inputs": [tensor(size=20)]}, row[:20],
                 header_len=len(json.dumps({"inputs": [tensor(size=20)]}))),
         r"inputs\[0\] 'input': binary_data_size is 20, but shape \[1, 6\] "
         r"of FP32 takes 24 bytes"),
        ("FP64 size for FP32 data",
         post_v2(MAIN, {"inputs": [tensor(dt="FP64", size=24)]}, row,
                 header_len=len(json.dumps({"inputs": [tensor(
                     dt="FP64", size=24)]}))),
         "binary_data_size is 24, but shape .* of FP64 takes 48"),
        ("binary data shorter than declared",
         post_v2(MAIN, head, row[:12], header_len=len(head)),
         r"inputs\[0\] 'input': needs 24 bytes of binary data"),
        ("bytes left over",
         post_v2(MAIN, head, row + b"\0\0\0\0", header_len=len(head)),
         "4 bytes left over"),
        ("binary size without the header",
         post_v2(MAIN, head),
         "binary_data_size without the Inference-Header-Content-Length"),
        ("binary data without the header", post_v2(MAIN, head + row),
         "body is not valid JSON"),
        ("element count not matching shape",
         post_v2(MAIN, {"inputs": [tensor(shape=[2, 6])]}),
         r"inputs\[0\] 'input': data has 6 elements, shape \[2, 6\] has 12"),
        ("shape product overflows",
         post_v2(MAIN, {"inputs": [tensor(shape=[1, 2**62],
                                          size=24)]}, row, header_len=len(
                     json.dumps({"inputs": [tensor(shape=[1, 2**62],
                                                   size=24)]}))),
         "takes more bytes than a size can count"),
        ("shape product overflows (JSON data)",
         post_v2(MAIN, {"inputs": [tensor(shape=[8, 2**62])]}),
         "overflows"),
        ("deep nesting",
         post_v2(MAIN, {"inputs": [tensor(data=[[[ROWS[0]]]])]}),
         "nested deeper than its shape"),
        ("JSON nested beyond any depth",
         post_v2(MAIN, b'{"inputs":' + b"[" * 5000 + b"]" * 5000 + b"}"),
         "not valid JSON|nested"),
        ("duplicate output names",
         post_v2(MAIN, {"inputs": [tensor()], "outputs": [
             {"name": "score"}, {"name": "score"}]}),
         r"outputs\[1\]: output 'score' is already outputs\[0\]"),
        ("unknown output", post_v2(MAIN, {"inputs": [tensor()], "outputs": [
            {"name": "energy"}, {"name": "logits"}]}),
         r"outputs\[1\]: unknown output 'logits'"),
        ("unknown datatype",
         post_v2(MAIN, {"inputs": [tensor(dt="FLOAT32")]}),
         r"inputs\[0\] 'input': unknown datatype 'FLOAT32'"),
        ("datatype not accepted",
         post_v2(MAIN, {"inputs": [tensor(dt="INT64")]}),
         "datatype INT64 is not accepted; send FP32 or FP64"),
        ("duplicate input names",
         post_v2(MAIN, {"inputs": [tensor(name=FEATURES[0], shape=[1],
                                          data=[1.0]),
                                   tensor(name=FEATURES[0], shape=[1],
                                          data=[1.0])]}),
         r"inputs\[1\]: input name '%s' is already inputs\[0\]"
         % FEATURES[0]),
        ("inputs missing", post_v2(MAIN, {"outputs": []}),
         "inputs: required field is missing"),
        ("inputs empty", post_v2(MAIN, {"inputs": []}),
         "inputs: expected 1 to"),
        ("not JSON", post_v2(MAIN, b"{inputs"), "body is not valid JSON"),
        ("header not JSON", post_v2(MAIN, b"{in", row, header_len=3),
         "the JSON header is not valid JSON"),
        ("rank 3", post_v2(MAIN, {"inputs": [tensor(shape=[1, 2, 3])]}),
         "shape has 3 dimensions"),
        ("negative dimension",
         post_v2(MAIN, {"inputs": [tensor(shape=[-1, 6])]}),
         r"shape\[0\] must be an integer >= 0"),
        ("rows disagree",
         post_v2(MAIN, {"inputs": [
             tensor(name=FEATURES[0], shape=[1], data=[1.0]),
             tensor(name=FEATURES[1], shape=[2], data=[1.0, 2.0])]}),
         r"inputs\[1\] '%s': 2 rows, but inputs\[0\] has 1" % FEATURES[1]),
        ("a string in data",
         post_v2(MAIN, {"inputs": [tensor(data=[1, 2, 3, "4", 5, 6])]}),
         "data element 3: expected a number, got a string"),
        ("null in data",
         post_v2(MAIN, {"inputs": [tensor(data=[1, 2, None, 4, 5, 6])]}),
         "expected a number, got null"),
        ("FP32 overflow in JSON",
         post_v2(MAIN, {"inputs": [tensor(data=[1e39, 2, 3, 4, 5, 6])]}),
         r"inputs\[0\] 'input'\[0\]\[0\]: 1e\+39 does not fit a 32-bit "
         "float"),
        ("FP64 beyond a float in binary",
         post_v2(MAIN, {"inputs": [tensor(dt="FP64", size=48)]},
                 struct.pack("<6d", 1, 2, 3, 4, 1e300, 6),
                 header_len=len(json.dumps({"inputs": [tensor(
                     dt="FP64", size=48)]}))),
         r"\[0\]\[4\]: 1e\+300 does not fit a 32-bit float"),
        ("infinity in binary",
         post_v2(MAIN, head, struct.pack("<6f", 1, 2, math.inf, 4, 5, 6),
                 header_len=len(head)),
         r"\[0\]\[2\]: not a finite number"),
        ("alpha not a number",
         post_v2(MAIN, {"inputs": [tensor()], "parameters": {
             "alpha": "0.1"}}), "parameters.alpha: expected a number"),
        ("explain not a boolean",
         post_v2(MAIN, {"inputs": [tensor()], "parameters": {
             "explain": 1}}), "parameters.explain: expected a boolean"),
        ("id not a string",
         post_v2(MAIN, {"id": 3, "inputs": [tensor()]}),
         "id: expected a string"),
        ("binary_data not a boolean",
         post_v2(MAIN, {"inputs": [tensor()], "outputs": [
             {"name": "score", "parameters": {"binary_data": "yes"}}]}),
         "binary_data as a boolean"),
        ("negative binary size",
         post_v2(MAIN, {"inputs": [tensor(size=-4)]}, row, header_len=len(
             json.dumps({"inputs": [tensor(size=-4)]}))),
         "binary_data_size must be an integer >= 0"),
        ("data and binary size",
         post_v2(MAIN, {"inputs": [dict(tensor(), parameters={
             "binary_data_size": 24})]}, row, header_len=len(json.dumps(
                 {"inputs": [dict(tensor(), parameters={
                     "binary_data_size": 24})]}))),
         "both data and binary_data_size"),
    ]
    for what, got, message in cases:
        expect_400(what, got, message)
    alive(MAIN)


@test
def status_precedence_under_v2():
    n = len(ROWS)
    good = {"inputs": [tensor(shape=[n, 6], data=flat(ROWS))]}
    # 422: right types, values the model cannot use
    for what, body, message in [
        ("wrong feature count", {"inputs": [tensor(shape=[1, 5],
                                                   data=ROWS[0][:5])]},
         r"inputs\[0\] 'input': expected shape \[N, 6\]"),
        ("unknown feature", {"inputs": [
            tensor(name=f if f != FEATURES[2] else "nope", shape=[1],
                   data=[1.0]) for f in FEATURES]},
         "'nope': unknown feature"),
        ("missing feature", {"inputs": [
            tensor(name=f, shape=[1], data=[1.0]) for f in FEATURES[:5]]},
         "missing feature '%s'" % FEATURES[5]),
        ("a feature tensor of width 2", {"inputs": [
            tensor(name=f, shape=[1, 2] if j == 0 else [1],
                   data=[1.0, 2.0] if j == 0 else [1.0])
            for j, f in enumerate(FEATURES)]},
         r"shape \[N\] or \[N, 1\]"),
        ("alpha out of range", dict(good, parameters={"alpha": 1.5}),
         r"alpha: must be in \(0, 1\)"),
        ("no rows", {"inputs": [tensor(shape=[0, 6], data=[])]},
         "no rows"),
    ]:
        v2_error(MAIN, "POST", "/v2/models/thy/infer", body, status=422,
                 message=message)
    # per-feature tensors for a model without names: 422
    v2_error(MAIN, "POST", "/v2/models/renamed/infer", {"inputs": [
        tensor(name="zz", shape=[1], data=[1.0])]}, status=422)
    # 404 (model) after 400, 400 after 415, 415 after 413
    v2_error(MAIN, "POST", "/v2/models/nope/infer", good, status=404,
             message="model 'nope' not found")
    v2_error(MAIN, "POST", "/v2/models/nope/infer", {"inputs": 1},
             status=400)
    v2_error(MAIN, "POST", "/v2/models/nope/infer", {"inputs": 1},
             headers={"Content-Type": "text/plain"}, status=415)
    # octet-stream without binary data is not JSON's type: 415
    v2_error(MAIN, "POST", "/v2/models/thy/infer", good,
             headers={"Content-Type": "application/octet-stream"},
             status=415)
    many = {"inputs": [tensor(shape=[51, 6], data=ROWS[0] * 51)]}
    v2_error(MAIN, "POST", "/v2/models/nope/infer", many,
             headers={"Content-Type": "text/plain"}, status=413,
             message="51 rows, at most 50")
    big = b'{"inputs":[' + b" " * 70000 + b"]}"
    v2_error(MAIN, "POST", "/v2/models/thy/infer", big, status=413)
    alive(MAIN)


# ---------------------------------------------------------------------------
# Token, readiness, repository
# ---------------------------------------------------------------------------

@test
def token_and_readiness():
    token_file = os.path.join(T.WORK, "v2-token")
    with open(token_file, "w") as f:
        f.write(T.TOKEN + "\n")
    os.chmod(token_file, 0o600)
    d = T.Daemon(T.WORK, "v2-auth", T.conf(
        T.models_dir("v2-auth-models", "thy"),
        "auth_token_file = %s" % token_file))
    e = T.Daemon(T.WORK, "v2-empty", T.conf(T.models_dir("v2-empty")))
    good = {"Authorization": "Bearer " + T.TOKEN}
    try:
        # health stays open; everything else needs the token
        d.json("GET", "/v2/health/live")
        d.json("GET", "/v2/health/ready")
        for method, path in [("GET", "/v2"), ("GET", "/v2/models/thy"),
                             ("GET", "/v2/models/thy/ready"),
                             ("POST", "/v2/models/thy/infer"),
                             ("POST", "/v2/repository/index"),
                             ("POST", "/v2/repository/models/thy/load"),
                             ("POST", "/v2/repository/models/thy/unload")]:
            v2_error(d, method, path, {"inputs": []}, status=401)
        st, _, _ = V2Client(d, good).infer("thy", [("input", "FP32", [1, 6],
                                                    ROWS[0], True)])
        check(st == 200, "infer with the token: %d" % st)
        d.json("POST", "/v2/repository/index", headers=good)
        # not ready: 400 {"ready": false}; infer 503; the repository and
        # server metadata still answer (that is how a model gets loaded)
        st, _, body = e.request("GET", "/v2/health/ready")
        check(st == 400 and json.loads(body) == {"ready": False},
              "not ready: %d %r" % (st, body))
        v2_error(e, "POST", "/v2/models/thy/infer", {"inputs": []},
                 status=503)
        v2_error(e, "GET", "/v2/models/thy", status=503)
        e.json("GET", "/v2")
        check(e.json("POST", "/v2/repository/index") == [], "empty index")
        shutil.copy(os.path.join(T.STORE, "thy.ebm"),
                    os.path.join(T.WORK, "v2-empty", "thy.ebm"))
        e.json("POST", "/v2/repository/models/thy/load")
        check(e.json("GET", "/v2/health/ready") == {"ready": True},
              "ready after load")
        # shutting down: 503 {"ready": false} (checked while a request
        # holds the worker would race; the stop itself is test_daemon's)
    finally:
        check(d.stop() == 0, "v2-auth exit code")
        check(e.stop() == 0, "v2-empty exit code")


def index(d):
    return {m["name"]: m for m in d.json("POST", "/v2/repository/index")}


@test
def model_repository():
    dirpath = T.models_dir("v2-repo", "thy", "thy2")
    d = T.Daemon(T.WORK, "v2-repo", T.conf(dirpath, extra="""
[compose.pair]
models = thy, thy2
"""))
    try:
        thy = T.store_version("thy")
        thy2 = T.store_version("thy2")
        idx = index(d)
        check(idx == {
            "thy": {"name": "thy", "version": thy, "state": "READY",
                    "reason": ""},
            "thy2": {"name": "thy2", "version": thy2, "state": "READY",
                     "reason": ""}}, "index %r" % idx)
        # a corrupt file: load is 400 with the reason, the old version
        # keeps serving, the index says why
        path = os.path.join(dirpath, "thy.ebm")
        good = open(path, "rb").read()
        with open(path + ".tmp", "wb") as f:
            f.write(good[:len(good) // 2])
        os.rename(path + ".tmp", path)
        before = d.metrics().get(
            'ebmd_model_reloads_total{result="error"}', 0)
        v2_error(d, "POST", "/v2/repository/models/thy/load", status=400,
                 message="model 'thy': .*truncated.*the version loaded "
                 "before keeps serving")
        check(d.metrics()['ebmd_model_reloads_total{result="error"}']
              == before + 1, "failed load counted")
        check(T.model_version(d, "thy") == thy, "old version serves")
        entry = index(d)["thy"]
        check(entry["state"] == "READY" and entry["version"] == thy
              and "truncated" in entry["reason"], "index %r" % entry)
        # a new file that does not load is listed as UNAVAILABLE
        with open(os.path.join(dirpath, "broken.ebm"), "wb") as f:
            f.write(b"EBM garbage")
        v2_error(d, "POST", "/v2/repository/models/broken/load", status=400)
        entry = index(d)["broken"]
        check(entry["state"] == "UNAVAILABLE" and entry["version"] == ""
              and entry["reason"], "broken %r" % entry)
        v2_error(d, "POST", "/v2/repository/models/absent/load", status=400,
                 message="No such file")
        v2_error(d, "POST", "/v2/repository/models/..%2Fx/load",
                 status=400, message="cannot name a model file")
        # repair the file, load it: new version served
        shutil.copy(os.path.join(T.STORE, "thy3.ebm"), path)
        thy3 = T.store_version("thy3")
        d.json("POST", "/v2/repository/models/thy/load")
        check(T.model_version(d, "thy") == thy3, "loaded the new file")
        check(index(d)["thy"] == {"name": "thy", "version": thy3,
                                  "state": "READY", "reason": ""},
              "index after load")
        # unload: not served (v1 and v2), the composition goes with it,
        # /readyz counts one file; unload again is 404
        d.json("POST", "/v2/repository/models/thy/unload")
        v2_error(d, "GET", "/v2/models/thy", status=404)
        d.error("GET", "/v1/models/thy", status=404)
        d.error("GET", "/v1/models/pair", status=404)
        check(d.json("GET", "/readyz")["models"] == 1, "readyz count")
        check(index(d)["thy"]["state"] == "UNAVAILABLE"
              and index(d)["thy"]["reason"] == "unloaded", "index unloaded")
        v2_error(d, "POST", "/v2/repository/models/thy/unload", status=404)
        v2_error(d, "POST", "/v2/repository/models/nope/unload", status=404)
        # load brings it back; so does a reload after another unload
        d.json("POST", "/v2/repository/models/thy/load")
        check(T.model_version(d, "thy") == thy3, "back after load")
        d.json("GET", "/v1/models/pair")
        d.json("POST", "/v2/repository/models/thy2/unload")
        d.reload()
        check(T.model_version(d, "thy2") == thy2, "back after SIGHUP")
        # loads, unloads, SIGHUPs and requests at once: every answer is
        # one of the expected ones, and the server ends consistent
        errors = []
        stop = threading.Event()

        def hammer(name):
            try:
                while not stop.is_set():
                    for op in ("unload", "load"):
                        st, _, body = d.request(
                            "POST", "/v2/repository/models/%s/%s"
                            % (name, op))
                        if st not in (200, 404):
                            errors.append((op, st, body))
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

        def infer():
            c = V2Client(d)
            try:
                while not stop.is_set():
                    st, _, _ = c.infer("thy2", [("input", "FP32", [1, 6],
                                                 ROWS[0], True)])
                    # 503: both files unloaded at that moment
                    if st not in (200, 404, 503):
                        errors.append(("infer", st))
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
        threads = [threading.Thread(target=hammer, args=("thy",)),
                   threading.Thread(target=hammer, args=("thy2",)),
                   threading.Thread(target=infer)]
        for t in threads:
            t.start()
        for _ in range(5):
            d.signal(signal.SIGHUP)
            time.sleep(0.1)
        stop.set()
        for t in threads:
            t.join()
        check(not errors, "concurrent repository calls: %r" % errors[:5])
        d.reload()
        # broken.ebm is still refused
        check(d.json("GET", "/readyz")["models"] == 2
              and T.model_version(d, "thy") == thy3
              and T.model_version(d, "thy2") == thy2,
              "all served after the final reload")
        # metrics: the v2 endpoints have their own labels
        m = d.metrics()
        for label in ("/v2/repository/index",
                      "/v2/repository/models/{name}/load",
                      "/v2/repository/models/{name}/unload",
                      "/v2/models/{name}/infer", "/v2/models/{name}"):
            check(any(k.startswith('ebmd_requests_total{endpoint="%s"'
                                   % label) for k in m),
                  "no ebmd_requests_total for %s" % label)
    finally:
        check(d.stop() == 0, "v2-repo exit code")


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
        shutil.rmtree(T.WORK, ignore_errors=True)
    else:
        print("left", T.WORK, "for inspection")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        if MAIN.proc.poll() is None:
            MAIN.proc.kill()
