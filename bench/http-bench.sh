#!/usr/bin/env bash
# http-bench.sh -- ebmd's HTTP serving rate against this machine's floor.
#
# One run, side by side on loopback, with the same wrk settings for every
# server (wrk, CONNS connections, WRK_THREADS client threads, a Lua script
# posting a fixed body, DURATION seconds after WARMUP seconds of warm-up):
#
#   (a) single-row POST /v1/models/NAME/score:
#         ebmd with threads = 1        vs  bench/floor --threads 1
#         ebmd with its default threads (one per CPU)
#                                      vs  bench/floor --threads <CPUs>
#       requests/s, p50 and p99 latency (wrk's latency distribution);
#   (b) 256-row score requests to ebmd (threads = 1): rows/s against the
#       in-process forward rate of the same model (bench/forward: 256-row
#       batches through ebm_product_score, one thread);
#   (c) ebmd's VmRSS and VmHWM (/proc/PID/status) after the load;
#   (d) the Open Inference Protocol on the same ebmd (threads = 1): the
#       BATCH-row requests as POST /v2/models/NAME/infer with one FP32
#       tensor in JSON, and in the binary tensor data extension (raw
#       floats in, binary outputs back), beside the /v1 JSON rows of (b)
#       and the in-process rate; and single-row V2 JSON beside single-row
#       /v1.
#
# All four servers are started first and stay up (idle ones cost nothing);
# with REPEAT > 1 the measurements are interleaved, round after round, and
# the median of each figure is reported. Besides requests/s, the server's
# own CPU time (user + system, from /proc/PID/stat) per request is
# reported: on a machine shared with other jobs it is the steadier figure.
#
# ebmd runs from a temporary configuration (listen on a free loopback port,
# the threads under test, [log] level = warn) and a temporary models
# directory holding only the model. Rows come from DATA (header row; the
# `label` column, if any, is dropped), sent in the API's positional form
# {"instances": [[...]]}. Writes a Markdown table to OUT and prints it.
#
# Fails (exit 1) when a server does not come up, a check request is not
# answered 200, or wrk reports non-2xx/3xx responses or socket errors.
#
# Environment (all optional):
#   BUILD=build                 meson build dir (src/ebmd, bench/floor,
#                               bench/forward)
#   MODEL=models/demo.ebm       the model (its name is the file's stem);
#                               required when models/demo.ebm does not exist
#   DATA=tests/data/thyroid.csv rows for the bodies
#   DURATION=10  WARMUP=2       seconds per wrk measurement / warm-up
#   CONNS=64     WRK_THREADS=1  wrk connections and threads
#   BATCH=256                   rows per request in (b)
#   FORWARD_SECONDS=3           in-process forward measurement
#   REPEAT=1                    rounds of measurements (medians reported)
#   OUT=bench/results/http.md   where the table goes ('' = stdout only)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"

BUILD=${BUILD:-build}
DATA=${DATA:-tests/data/thyroid.csv}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-64}
WRK_THREADS=${WRK_THREADS:-1}
BATCH=${BATCH:-256}
FORWARD_SECONDS=${FORWARD_SECONDS:-3}
REPEAT=${REPEAT:-1}
OUT=${OUT-bench/results/http.md}
if [ -z "${MODEL:-}" ]; then
	if [ -r models/demo.ebm ]; then
		MODEL=models/demo.ebm
	else
		echo "http-bench: models/demo.ebm does not exist; set MODEL=FILE.ebm" >&2
		exit 2
	fi
fi

die() { echo "http-bench: $*" >&2; exit 1; }

ebmd="$BUILD/src/ebmd"
floor="$BUILD/bench/floor"
forward="$BUILD/bench/forward"
for b in "$ebmd" "$floor" "$forward"; do
	[ -x "$b" ] || die "$b is missing (meson compile -C $BUILD)"
done
command -v wrk >/dev/null || die "wrk is not installed"
command -v curl >/dev/null || die "curl is not installed"
command -v python3 >/dev/null || die "python3 is not installed"
[ -r "$MODEL" ] || die "cannot read MODEL=$MODEL"
[ -r "$DATA" ] || die "cannot read DATA=$DATA"

name=$(basename "$MODEL" .ebm)
cpus=$(getconf _NPROCESSORS_ONLN)   # what ebmd's threads = 0 resolves to

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ebm-httpbench.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir "$tmp/models"
cp "$MODEL" "$tmp/models/$name.ebm"

# ---- request bodies ---------------------------------------------------------

make_body() {  # rows out
	python3 - "$DATA" "$1" >"$2" <<'EOF'
import csv, json, sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, newline="") as f:
    r = csv.reader(f)
    header = next(r)
    keep = [i for i, h in enumerate(header) if h != "label"]
    rows = []
    for line in r:
        if len(rows) == n:
            break
        rows.append([float(line[i]) for i in keep])
if len(rows) < n:
    sys.exit("http-bench: %s has only %d rows, %d wanted" % (path, len(rows), n))
json.dump({"instances": rows}, sys.stdout, separators=(",", ":"))
EOF
}
make_body 1 "$tmp/body1.json"
make_body "$BATCH" "$tmp/bodyN.json"

# V2 bodies from the /v1 ones: JSON (nested rows), and binary (JSON header
# + little-endian FP32, outputs asked for in binary); the binary header's
# length goes to wrk in the .len file.
make_v2() {  # v1-body json-out [binary-out]
	python3 - "$@" <<'EOF'
import json, struct, sys
rows = json.load(open(sys.argv[1]))["instances"]
n, d = len(rows), len(rows[0])
with open(sys.argv[2], "w") as f:
    json.dump({"inputs": [{"name": "input", "datatype": "FP32",
                           "shape": [n, d], "data": rows}]}, f,
              separators=(",", ":"))
if len(sys.argv) > 3:
    head = json.dumps({"inputs": [{"name": "input", "datatype": "FP32",
                                   "shape": [n, d], "parameters":
                                   {"binary_data_size": 4 * n * d}}],
                       "parameters": {"binary_data_output": True}},
                      separators=(",", ":")).encode()
    raw = struct.pack("<%df" % (n * d), *[v for r in rows for v in r])
    open(sys.argv[3], "wb").write(head + raw)
    open(sys.argv[3] + ".len", "w").write(str(len(head)))
EOF
}
make_v2 "$tmp/body1.json" "$tmp/v2body1.json"
make_v2 "$tmp/bodyN.json" "$tmp/v2bodyN.json" "$tmp/v2bodyN.bin"

cat >"$tmp/post.lua" <<'EOF'
-- POSTs the file named by the BODY environment variable; at the end prints
-- one machine-readable line (latencies in microseconds).
local f = assert(io.open(os.getenv("BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
local hlen = os.getenv("HEADER_LEN")
if hlen ~= nil and hlen ~= "" then
	wrk.headers["Content-Type"] = "application/octet-stream"
	wrk.headers["Inference-Header-Content-Length"] = hlen
end

function done(summary, latency, requests)
	local e = summary.errors
	io.write(string.format(
		"BENCH requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d "
		.. "max_us=%d status_errors=%d socket_errors=%d\n",
		summary.requests, summary.duration,
		latency:percentile(50), latency:percentile(90),
		latency:percentile(99), latency.max, e.status,
		e.connect + e.read + e.write + e.timeout))
end
EOF

# ---- servers ------------------------------------------------------------------

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_up PID URL BODY: until a POST of BODY to URL answers 200 (10 s).
wait_up() {
	local pid=$1 url=$2 body=$3 code
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || return 1
		code=$(curl -s -o /dev/null -w '%{http_code}' -X POST \
			-H 'Content-Type: application/json' --data-binary "@$body" \
			"$url" 2>/dev/null) || code=000
		[ "$code" = 200 ] && return 0
		sleep 0.1
	done
	return 1
}

declare -A srv_pid srv_port

# start_server KEY ebmd|floor THREADS|default
start_server() {
	local key=$1 kind=$2 threads=$3 port pid
	port=$(free_port)
	if [ "$kind" = ebmd ]; then
		local conf="$tmp/$key.conf"
		{
			echo "[server]"
			echo "listen = 127.0.0.1:$port"
			[ "$threads" = default ] || echo "threads = $threads"
			echo "[models]"
			echo "dir = $tmp/models"
			echo "[log]"
			echo "level = warn"
		} >"$conf"
		"$ebmd" --config "$conf" 2>"$tmp/$key.log" &
	else
		"$floor" --threads "$threads" --listen "127.0.0.1:$port" \
			>"$tmp/$key.log" 2>&1 &
	fi
	pid=$!
	pids+=("$pid")
	srv_pid[$key]=$pid
	srv_port[$key]=$port
	if ! wait_up "$pid" "http://127.0.0.1:$port/v1/models/$name/score" \
			"$tmp/body1.json"; then
		cat "$tmp/$key.log" >&2
		die "$kind (threads $threads) did not come up on port $port"
	fi
}

clk_tck=$(getconf CLK_TCK)
cpu_ticks() {  # PID: utime + stime of every thread, in clock ticks
	# the command name (field 2) may hold spaces: count from after ')'
	sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# run_wrk KEY SERVER BODY [PATH]: appends "rps p50_ms p99_ms
# cpu_us_per_request" to $tmp/res-KEY; fails on errors. PATH defaults to
# /v1's score; a BODY with a BODY.len file is sent as V2 binary.
run_wrk() {
	local key=$1 server=$2 body=$3 pid=${srv_pid[$2]}
	local url="http://127.0.0.1:${srv_port[$2]}${4:-/v1/models/$name/score}"
	HEADER_LEN=""
	[ -r "$body.len" ] && HEADER_LEN=$(cat "$body.len")
	export HEADER_LEN
	local log="$tmp/wrk-$key.txt"
	if [ "$WARMUP" != 0 ]; then
		BODY=$body wrk -t "$WRK_THREADS" -c "$CONNS" -d "${WARMUP}s" \
			-s "$tmp/post.lua" "$url" >"$tmp/warmup-$key.txt" 2>&1 \
			|| die "wrk warm-up against $key failed: $(cat "$tmp/warmup-$key.txt")"
	fi
	local c0 c1
	c0=$(cpu_ticks "$pid")
	BODY=$body wrk -t "$WRK_THREADS" -c "$CONNS" -d "${DURATION}s" --latency \
		-s "$tmp/post.lua" "$url" >"$log" 2>&1 \
		|| die "wrk against $key failed: $(cat "$log")"
	c1=$(cpu_ticks "$pid")
	kill -0 "$pid" 2>/dev/null || die "$server died during the run: $(cat "$tmp/$server.log")"
	if grep -q -e 'Non-2xx or 3xx responses' -e 'Socket errors' "$log"; then
		cat "$log" >&2
		die "wrk against $key: non-2xx responses or socket errors"
	fi
	local line
	line=$(grep '^BENCH ' "$log") || { cat "$log" >&2; die "no BENCH line from wrk ($key)"; }
	local w_requests w_duration_us w_p50_us w_p99_us w_status_errors w_socket_errors
	eval "$(echo "${line#BENCH }" | tr ' ' '\n' | grep -E '^[a-z0-9_]+=[0-9]+$' | sed 's/^/w_/')"
	[ "$w_status_errors" = 0 ] && [ "$w_socket_errors" = 0 ] \
		|| { cat "$log" >&2; die "wrk against $key: $w_status_errors bad statuses, $w_socket_errors socket errors"; }
	[ "$w_requests" -gt 0 ] || die "wrk against $key: no request answered"
	awk -v r="$w_requests" -v d="$w_duration_us" -v a="$w_p50_us" \
		-v b="$w_p99_us" -v c=$((c1 - c0)) -v hz="$clk_tck" 'BEGIN {
		printf "%.0f %.2f %.2f %.1f\n", r / (d / 1e6), a / 1000, b / 1000,
			c / hz / r * 1e6 }' >>"$tmp/res-$key"
	echo "  $key: $(tail -1 "$tmp/res-$key" | awk '{ printf "%s req/s, p50 %s ms, p99 %s ms, server CPU %s us/request", $1, $2, $3, $4 }')" >&2
}

# med KEY COLUMN FORMAT: the median of a column of $tmp/res-KEY
med() {
	sort -g -k"$2","$2" "$tmp/res-$1" | awk -v c="$2" -v f="$3" '{ v[NR] = $c }
		END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
		      printf f "\n", m }'
}

mem() {  # PID: sets rss hwm (MiB)
	rss=$(awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status")
	hwm=$(awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status")
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- (a) + (b) + (c) ------------------------------------------------------------

echo "http-bench: model $name ($MODEL), $cpus CPUs, wrk -t$WRK_THREADS -c$CONNS -d${DURATION}s, $REPEAT round(s)" >&2

start_server e1 ebmd 1
start_server f1 floor 1
start_server ed ebmd default
start_server fd floor "$cpus"

for round in $(seq "$REPEAT"); do
	echo "round $round:" >&2
	run_wrk e1 e1 "$tmp/body1.json"
	run_wrk f1 f1 "$tmp/body1.json"
	run_wrk ed ed "$tmp/body1.json"
	run_wrk fd fd "$tmp/body1.json"
	run_wrk eb e1 "$tmp/bodyN.json"
	run_wrk vj e1 "$tmp/v2bodyN.json" "/v2/models/$name/infer"
	run_wrk vb e1 "$tmp/v2bodyN.bin" "/v2/models/$name/infer"
	run_wrk v1 e1 "$tmp/v2body1.json" "/v2/models/$name/infer"
	line=$("$forward" "$MODEL" --batch "$BATCH" --seconds "$FORWARD_SECONDS") \
		|| die "$forward failed"
	echo "$line" | awk '{ print $2, $4 }' >>"$tmp/res-fwd"
	echo "  forward: $line" >&2
done
mem "${srv_pid[e1]}"
e1_rss=$rss e1_hwm=$hwm
mem "${srv_pid[ed]}"
ed_rss=$rss ed_hwm=$hwm
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- report ---------------------------------------------------------------------

for k in e1 f1 ed fd eb vj vb v1; do
	declare "${k}_1=$(med "$k" 1 %.0f)"
	declare "${k}_2=$(med "$k" 2 %.2f)"
	declare "${k}_3=$(med "$k" 3 %.2f)"
	declare "${k}_4=$(med "$k" 4 %.1f)"
done
fwd=$(med fwd 1 %.0f)
fwd_cpu=$(med fwd 2 %.0f)
eb_rows=$(awk -v r="$eb_1" -v b="$BATCH" 'BEGIN { printf "%.0f", r * b }')
eb_cpu_rows=$(awk -v c="$eb_4" -v b="$BATCH" 'BEGIN { printf "%.0f", b / (c / 1e6) }')
vj_rows=$(awk -v r="$vj_1" -v b="$BATCH" 'BEGIN { printf "%.0f", r * b }')
vj_cpu_rows=$(awk -v c="$vj_4" -v b="$BATCH" 'BEGIN { printf "%.0f", b / (c / 1e6) }')
vb_rows=$(awk -v r="$vb_1" -v b="$BATCH" 'BEGIN { printf "%.0f", r * b }')
vb_cpu_rows=$(awk -v c="$vb_4" -v b="$BATCH" 'BEGIN { printf "%.0f", b / (c / 1e6) }')

# verdict COND: "met" or "not met"
verdict() { if awk "BEGIN { exit !($1) }"; then echo met; else echo "not met"; fi; }

r_e1=$(ratio "$e1_1" "$f1_1")
r_ed=$(ratio "$ed_1" "$fd_1")
r_cpu1=$(ratio "$f1_4" "$e1_4")
r_cpud=$(ratio "$fd_4" "$ed_4")
r_def=$(ratio "$ed_1" "$e1_1")
r_rows=$(ratio "$eb_rows" "$fwd")
r_cpu_rows=$(ratio "$eb_cpu_rows" "$fwd_cpu")
r_vb=$(ratio "$vb_rows" "$fwd")
r_vb_cpu=$(ratio "$vb_cpu_rows" "$fwd_cpu")
r_vj=$(ratio "$vj_rows" "$eb_rows")
r_vj_cpu=$(ratio "$eb_4" "$vj_4")
r_v1=$(ratio "$v1_1" "$e1_1")
r_v1_cpu=$(ratio "$e1_4" "$v1_4")
rss_max=$(awk -v a="$e1_rss" -v b="$ed_rss" 'BEGIN { print (a > b ? a : b) }')

cmd="MODEL=$MODEL REPEAT=$REPEAT DURATION=$DURATION WARMUP=$WARMUP CONNS=$CONNS WRK_THREADS=$WRK_THREADS bench/http-bench.sh"
if [ "$REPEAT" -gt 1 ]; then
	agg="medians of $REPEAT interleaved rounds"
else
	agg="one round"
fi
report=$(cat <<EOF
# HTTP benchmark (bench/http-bench.sh)

$(date -u +%Y-%m-%dT%H:%MZ), $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $cpus CPUs,
shared with other jobs (load average $load_before before, $load_after after).
Model \`$name\` ($(wc -c <"$MODEL") bytes), rows from \`$DATA\`.
Loopback, \`wrk -t$WRK_THREADS -c$CONNS -d${DURATION}s --latency\` after ${WARMUP} s of warm-up,
POST /v1/models/$name/score with Content-Type application/json; $agg.

Command: \`$cmd\`

### Single-row score requests

| server | threads | requests/s | p50 ms | p99 ms | server CPU µs/request |
|---|---|---|---|---|---|
| ebmd | 1 | $e1_1 | $e1_2 | $e1_3 | $e1_4 |
| floor | 1 | $f1_1 | $f1_2 | $f1_3 | $f1_4 |
| ebmd | default ($cpus) | $ed_1 | $ed_2 | $ed_3 | $ed_4 |
| floor | $cpus | $fd_1 | $fd_2 | $fd_3 | $fd_4 |

| ratio | threads = 1 | default ($cpus) |
|---|---|---|
| ebmd / floor requests/s | $r_e1 | $r_ed |
| ebmd p99 / floor p99 | $(ratio "$e1_3" "$f1_3") | $(ratio "$ed_3" "$fd_3") |
| floor / ebmd server CPU per request | $r_cpu1 | $r_cpud |

ebmd default / ebmd threads = 1: ${r_def}x requests/s.
Server CPU is user + system time of the server process over the measured
run divided by the requests answered; on a shared machine it is steadier
than requests/s, which also depend on what else the CPUs run.

### $BATCH-row score requests (ebmd threads = 1)

| | requests/s | rows/s | p50 ms | p99 ms | rows per CPU second |
|---|---|---|---|---|---|
| ebmd over HTTP | $eb_1 | $eb_rows | $eb_2 | $eb_3 | $eb_cpu_rows |
| in-process forward | | $fwd | | | $fwd_cpu |
| ebmd / forward | | $r_rows | | | $r_cpu_rows |

In-process: \`$forward $MODEL --batch $BATCH --seconds $FORWARD_SECONDS\`
(ebm_product_score on one thread, the daemon's score entry point).

### Open Inference Protocol (/v2), ebmd threads = 1

| request | requests/s | rows/s | p50 ms | p99 ms | rows per CPU second |
|---|---|---|---|---|---|
| $BATCH rows, /v1 JSON | $eb_1 | $eb_rows | $eb_2 | $eb_3 | $eb_cpu_rows |
| $BATCH rows, V2 JSON (FP32 tensor) | $vj_1 | $vj_rows | $vj_2 | $vj_3 | $vj_cpu_rows |
| $BATCH rows, V2 binary FP32 (binary outputs) | $vb_1 | $vb_rows | $vb_2 | $vb_3 | $vb_cpu_rows |
| in-process forward | | $fwd | | | $fwd_cpu |
| 1 row, /v1 JSON | $e1_1 | | $e1_2 | $e1_3 | |
| 1 row, V2 JSON | $v1_1 | | $v1_2 | $v1_3 | |

| target (issue 10) | figure | |
|---|---|---|
| V2 binary ≥ 0.8x in-process rows/s | ${r_vb}x (per CPU second: ${r_vb_cpu}x) | $(verdict "$r_vb >= 0.8") |
| V2 JSON no slower than /v1 JSON ($BATCH rows) | ${r_vj}x (CPU per request, /v1 over V2: ${r_vj_cpu}x) | $(verdict "$r_vj >= 1") |
| single-row V2 ≥ 0.9x single-row /v1 | ${r_v1}x (CPU per request: ${r_v1_cpu}x) | $(verdict "$r_v1 >= 0.9") |

### Resident memory after the load

| ebmd | VmRSS MiB | VmHWM MiB |
|---|---|---|
| threads = 1 (after its single-row and $BATCH-row runs) | $e1_rss | $e1_hwm |
| default ($cpus threads, after its single-row runs) | $ed_rss | $ed_hwm |

### Targets (issue 3)

| target | figure | |
|---|---|---|
| ebmd threads = 1 ≥ 0.8x floor requests/s | ${r_e1}x (CPU per request: ${r_cpu1}x) | $(verdict "$r_e1 >= 0.8") |
| ... with p99 no worse | $e1_3 vs $f1_3 ms | $(verdict "$e1_3 <= $f1_3") |
| default config faster than threads = 1 | ${r_def}x | $(verdict "$r_def > 1") |
| $BATCH-row rows/s ≥ 0.5x in-process forward | ${r_rows}x (per CPU second: ${r_cpu_rows}x) | $(verdict "$r_rows >= 0.5") |
| RSS < 30 MiB | $rss_max MiB | $(verdict "$rss_max < 30") |
EOF
)

echo "$report"
if [ -n "$OUT" ]; then
	mkdir -p "$(dirname "$OUT")"
	echo "$report" >"$OUT"
	echo "http-bench: wrote $OUT" >&2
fi
