#!/usr/bin/env bash
# train-throughput.sh -- training throughput of ebmd-train vs. the PyTorch peer.
#
# Runs, one after the other in one invocation, on the same data, batch and
# epochs:
#   (1) the C trainer as a whole process (wall clock around the process:
#       start-up, CSV parsing, holdouts, validation passes all count),
#         $BUILD/src/tool/ebmd-train train --data DATA --out TMP.ebm
#             --objective OBJ --hidden HIDDEN --batch BATCH --epochs EPOCHS
#             --threads 2 --patience 0 --reference-frac 0.1 --seed 1
#       Its rows/s = R * E / wall, with R (training rows) and E (epochs run)
#       parsed from its last stderr line
#         "trained R rows x E epochs in T s (X rows/s)"
#       (X, its own in-loop figure, is shown as well; thousands separators
#       such as "57,831" are accepted);
#   (2) bench/torch_peer.py (training loop alone, all rows, see its header
#       for the tuning), in its default (fastest) variant and in the textbook
#       autograd.grad(create_graph=True) variant;
# then prints a Markdown table with rows/s and the ratio C / torch.
#
# Environment (all optional):
#   BUILD=build        meson build dir holding src/tool/ebmd-train
#   DATA=/work/shared/data/adbench/letter.csv
#   EPOCHS=100  BATCH=256  HIDDEN=256,256  OBJECTIVES="dsm cd"
#   PYTHON=/usr/bin/python3   (needs torch + numpy)
#   REPEAT=1          runs per entry; the best (fastest) is reported
# The C side is skipped with a message if the binary is missing.
set -u

here=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-build}
DATA=${DATA:-/work/shared/data/adbench/letter.csv}
EPOCHS=${EPOCHS:-100}
BATCH=${BATCH:-256}
HIDDEN=${HIDDEN:-256,256}
OBJECTIVES=${OBJECTIVES:-dsm cd}
PYTHON=${PYTHON:-/usr/bin/python3}
REPEAT=${REPEAT:-1}
trainer="$BUILD/src/tool/ebmd-train"

if [ ! -r "$DATA" ]; then
	echo "train-throughput: cannot read DATA=$DATA" >&2
	exit 2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ebm-throughput.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

now() { date +%s.%N; }
# fmt X: rounded to an integer, or the text as is
fmt() { case "$1" in ''|n/a|skip*|fail*) echo "${1:-n/a}";; *) printf '%.0f' "$1";; esac; }
ratio() {
	case "$1" in *[!0-9.]*|'') echo "n/a"; return;; esac
	case "$2" in *[!0-9.]*|'') echo "n/a"; return;; esac
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'
}
best() {  # larger of two numbers, tolerating empties
	awk -v a="${1:-}" -v b="${2:-}" 'BEGIN { if (a == "") print b; else if (b == "" || a+0 >= b+0) print a; else print b }'
}

# run_c OBJ -> sets c_rps (whole process), c_self (its own figure), c_note
run_c() {
	local obj=$1 k t0 t1 line r e self wall rps
	c_rps="" c_self="" c_note=""
	if [ ! -x "$trainer" ]; then
		c_note="skipped: $trainer not built (set BUILD=<meson build dir>)"
		return
	fi
	for k in $(seq "$REPEAT"); do
		t0=$(now)
		"$trainer" train --data "$DATA" --out "$tmp/x.ebm" --objective "$obj" \
			--hidden "$HIDDEN" --batch "$BATCH" --epochs "$EPOCHS" \
			--threads 2 --patience 0 --reference-frac 0.1 --seed 1 \
			>"$tmp/c.out" 2>"$tmp/c.err"
		local rc=$?
		t1=$(now)
		if [ $rc -ne 0 ]; then
			c_note="failed: exit $rc: $(tail -n 1 "$tmp/c.err")"
			return
		fi
		line=$(grep -E 'trained [0-9,]+ rows x [0-9,]+ epochs in' "$tmp/c.err" | tail -n 1)
		if [ -z "$line" ]; then
			c_note="failed: no 'trained R rows x E epochs in T s (X rows/s)' line on stderr"
			return
		fi
		r=$(sed -E 's/.*trained ([0-9,]+) rows x ([0-9,]+) epochs.*/\1/' <<<"$line" | tr -d ,)
		e=$(sed -E 's/.*trained ([0-9,]+) rows x ([0-9,]+) epochs.*/\2/' <<<"$line" | tr -d ,)
		self=$(sed -nE 's/.*\(([0-9.,eE+-]+) rows\/s\).*/\1/p' <<<"$line" | tr -d ,)
		wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
		rps=$(awk -v r="$r" -v e="$e" -v w="$wall" 'BEGIN { printf "%.1f", r * e / w }')
		[ "$(best "$c_rps" "$rps")" = "$rps" ] && c_note="R=$r E=$e wall=${wall}s (best of $REPEAT)"
		c_rps=$(best "$c_rps" "$rps")
		c_self=$(best "$c_self" "$self")
	done
}

# run_torch VARIANT -> sets t_rps, t_note
run_torch() {
	local variant=$1 obj=$2 k out rps
	t_rps="" t_note=""
	for k in $(seq "$REPEAT"); do
		if ! out=$("$PYTHON" "$here/torch_peer.py" --data "$DATA" --hidden "$HIDDEN" \
				--batch "$BATCH" --epochs "$EPOCHS" --variant "$variant" \
				--objective "$obj" 2>"$tmp/t.err"); then
			t_note="failed: $(tail -n 1 "$tmp/t.err")"
			return
		fi
		rps=$("$PYTHON" -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["rows_per_s"])' <<<"$out")
		[ "$(best "$t_rps" "$rps")" = "$rps" ] || continue
		t_rps=$rps
		t_note=$("$PYTHON" -c 'import json,sys; j=json.loads(sys.stdin.read().strip().splitlines()[-1]); print("rows=%d secs=%.3f torch_thr=%d openblas_thr=%d" % (j["rows"], j["seconds"], j["threads"], j["openblas_threads"]))' <<<"$out")" (best of $REPEAT)"
	done
}

d=$(head -n 1 "$DATA" | awk -F, '{ n = NF; if ($NF == "label") n--; print n }')
echo "## Training throughput: $(basename "$DATA") (d=$d), hidden $HIDDEN, batch $BATCH, $EPOCHS epochs"
echo
echo "host: $(nproc) cores, $(uname -m); C: \`$trainer\` (whole process, wall clock); torch: \`$here/torch_peer.py\` (training loop only)"
echo
echo "| objective | C rows/s (process) | C rows/s (self-reported) | torch rows/s (fastest) | torch rows/s (autograd.grad) | C / torch (fastest) | C / torch (autograd) |"
echo "|---|---|---|---|---|---|---|"
notes=()
for obj in $OBJECTIVES; do
	run_c "$obj"
	[ -n "$c_note" ] && notes+=("$obj C: $c_note")
	run_torch manual "$obj";   tf=$t_rps; [ -n "$t_note" ] && notes+=("$obj torch (manual): $t_note")
	run_torch autograd "$obj"; ta=$t_rps; [ -n "$t_note" ] && notes+=("$obj torch (autograd): $t_note")
	cshow=$c_rps; [ -z "$cshow" ] && cshow="n/a"
	echo "| $obj | $(fmt "$cshow") | $(fmt "${c_self:-n/a}") | $(fmt "$tf") | $(fmt "$ta") | $(ratio "$c_rps" "$tf") | $(ratio "$c_rps" "$ta") |"
done
echo
for n in "${notes[@]}"; do echo "- $n"; done
