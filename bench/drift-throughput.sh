#!/usr/bin/env bash
# drift-throughput.sh -- what the traffic monitor costs on the scoring path:
# single-row POST /v1/models/NAME/score to two ebmd processes on loopback,
# one with [monitor] window = 1000 (monitoring on: the p-value histogram
# and the drift window are recorded for every row) and one with window = 0
# (off), both with threads = 1, measured by wrk in interleaved rounds (on,
# off, on, off, ...) so that the machine's load hits both alike. Reports
# the median requests/s and server CPU time per request of each, and the
# on/off ratio of both. While "on" is measured, nothing reads the window
# (the KS test runs on GET and scrape only).
#
# Environment: BUILD=build MODEL=models/demo.ebm DATA=tests/data/thyroid.csv
#   DURATION=5 WARMUP=1 CONNS=16 REPEAT=5 OUT=bench/results/drift.md ('' =
#   stdout only)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
BUILD=${BUILD:-build}
MODEL=${MODEL:-models/demo.ebm}
DATA=${DATA:-tests/data/thyroid.csv}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CONNS=${CONNS:-16}
REPEAT=${REPEAT:-5}
OUT=${OUT-bench/results/drift-throughput.md}
die() { echo "drift-throughput: $*" >&2; exit 1; }
command -v wrk >/dev/null || die "wrk is not installed"
[ -x "$BUILD/src/ebmd" ] || die "$BUILD/src/ebmd is missing"

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
mkdir "$tmp/models"
cp "$MODEL" "$tmp/models/"
name=$(basename "$MODEL" .ebm)
/usr/bin/python3 - "$DATA" "$MODEL" >"$tmp/body.json" <<'PYEOF'
import csv, json, sys
r = csv.reader(open(sys.argv[1]))
head = next(r)
keep = [i for i, h in enumerate(head) if h != "label"]
row = next(r)
print(json.dumps({"instances": [[float(row[i]) for i in keep]]}))
PYEOF
cat >"$tmp/post.lua" <<'LUA'
local f = assert(io.open(os.getenv("BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
function done(summary, latency, requests)
	io.write(string.format("BENCH requests=%d duration_us=%d errors=%d\n",
		summary.requests, summary.duration, summary.errors.status
		+ summary.errors.connect + summary.errors.read
		+ summary.errors.write + summary.errors.timeout))
end
LUA

start() {  # TAG WINDOW
	local port
	port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	cat >"$tmp/$1.conf" <<CONF
[server]
listen = 127.0.0.1:$port
threads = 1
[models]
dir = $tmp/models
[log]
level = warn
[monitor]
window = $2
CONF
	"$BUILD/src/ebmd" --config "$tmp/$1.conf" 2>"$tmp/$1.log" &
	pids+=($!)
	eval "pid_$1=$!"
	eval "port_$1=$port"
	for _ in $(seq 100); do
		curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && return 0
		sleep 0.1
	done
	die "ebmd ($1) did not come up: $(cat "$tmp/$1.log")"
}
start on 1000
start off 0

cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
hz=$(getconf CLK_TCK)
measure() {  # TAG -> "rps cpu_us_per_request"
	local pid port c0 c1 line
	eval "pid=\$pid_$1; port=\$port_$1"
	BODY="$tmp/body.json" wrk -t1 -c"$CONNS" -d"${WARMUP}s" -s "$tmp/post.lua" \
		"http://127.0.0.1:$port/v1/models/$name/score" >/dev/null
	c0=$(cpu_ticks "$pid")
	line=$(BODY="$tmp/body.json" wrk -t1 -c"$CONNS" -d"${DURATION}s" \
		-s "$tmp/post.lua" "http://127.0.0.1:$port/v1/models/$name/score" \
		| grep '^BENCH')
	c1=$(cpu_ticks "$pid")
	echo "$line" | grep -q 'errors=0$' || die "wrk errors: $line"
	echo "$line" | awk -v c=$((c1 - c0)) -v hz="$hz" '{
		split($2, a, "="); split($3, b, "=");
		printf "%.1f %.2f\n", a[2] / (b[2] / 1e6), c / hz * 1e6 / a[2] }'
}
: >"$tmp/on.txt"
: >"$tmp/off.txt"
for r in $(seq "$REPEAT"); do
	for tag in on off; do
		measure $tag >>"$tmp/$tag.txt"
	done
	echo "round $r: on $(tail -1 "$tmp/on.txt"), off $(tail -1 "$tmp/off.txt")" >&2
done
# the window was filled and is read once, at the end: it really recorded
curl -sf "http://127.0.0.1:$port_on/v1/models/$name/drift" >"$tmp/drift.json"
grep -q '"count":1000' "$tmp/drift.json" || die "monitor did not record: $(cat "$tmp/drift.json")"

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
on_rps=$(awk '{ print $1 }' "$tmp/on.txt" | median)
off_rps=$(awk '{ print $1 }' "$tmp/off.txt" | median)
on_cpu=$(awk '{ print $2 }' "$tmp/on.txt" | median)
off_cpu=$(awk '{ print $2 }' "$tmp/off.txt" | median)
# rounds are adjacent in time: the median of the per-round ratios is the
# figure least moved by other load on the machine
pair_rps=$(paste "$tmp/on.txt" "$tmp/off.txt" | awk '{ print $1 / $3 }' | median)
pair_cpu=$(paste "$tmp/on.txt" "$tmp/off.txt" | awk '{ print $2 / $4 }' | median)
table=$(cat <<MD
| single-row score, threads = 1, $CONNS connections | requests/s (median of $REPEAT) | server CPU µs / request |
|---|---|---|
| monitoring on (window = 1000) | $on_rps | $on_cpu |
| monitoring off (window = 0) | $off_rps | $off_cpu |
| on / off | $(awk -v a="$on_rps" -v b="$off_rps" 'BEGIN { printf "%.3f", a / b }') | $(awk -v a="$on_cpu" -v b="$off_cpu" 'BEGIN { printf "%.3f", a / b }') |
| on / off, median of the per-round ratios | $(printf "%.3f" "$pair_rps") | $(printf "%.3f" "$pair_cpu") |
MD
)
echo "$table"
if [ -n "$OUT" ]; then
	{ echo "# Cost of the traffic monitor on the scoring path"; echo;
	  echo "\`bench/drift-throughput.sh\` (MODEL=$MODEL, DURATION=$DURATION, REPEAT=$REPEAT), $(date -u +%Y-%m-%d)."; echo;
	  echo "$table"; } >"$OUT"
fi
