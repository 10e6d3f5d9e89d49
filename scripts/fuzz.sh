#!/bin/sh
# Runs the libFuzzer targets for longer than CI does, side by side.
#   scripts/fuzz.sh [SECONDS [TARGET ...]]
# SECONDS defaults to 1800 per target; targets: csv model conf http-request
# (all by default). Up to JOBS (the number of CPUs) targets run at once,
# at low priority. Each target starts from its committed seed corpus plus
# what earlier runs found (kept in build-fuzz/corpus-TARGET/, not
# committed), and writes build-fuzz/fuzz-TARGET-long.log. A crash leaves
# its input as build-fuzz/TARGET-crash-*: copy it into
# tests/fuzz/corpus/TARGET/ with the fix, so CI replays it for good.
set -eu
cd "$(dirname "$0")/.."

seconds=${1:-1800}
[ $# -gt 0 ] && shift
targets=${*:-csv model conf http-request}
jobs=${JOBS:-$(nproc)}

scripts/install-deps.sh
scripts/setup-build.sh --fuzz
meson compile -C build-fuzz

run_one() {
	t=$1
	corpus=build-fuzz/corpus-$t
	mkdir -p "$corpus"
	cp -n tests/fuzz/corpus/"$t"/* "$corpus"/
	log=build-fuzz/fuzz-$t-long.log
	if nice -n 19 build-fuzz/tests/fuzz/fuzz-"$t" -max_total_time="$seconds" \
			-max_len=8192 -print_final_stats=1 \
			-artifact_prefix=build-fuzz/"$t"- "$corpus" >"$log" 2>&1; then
		echo "fuzz-$t: $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$log"), no finding"
	else
		echo "fuzz-$t: FINDING, see $log and build-fuzz/$t-crash-*"
		return 1
	fi
}

status=0
running=0
pids=""
for t in $targets; do
	run_one "$t" &
	pids="$pids $!"
	running=$((running + 1))
	if [ "$running" -ge "$jobs" ]; then
		for p in $pids; do wait "$p" || status=1; done
		pids=""
		running=0
	fi
done
for p in $pids; do wait "$p" || status=1; done
exit $status
