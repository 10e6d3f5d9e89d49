#!/bin/sh
# soak.sh — ebmd under full load while its models change every second.
#
#   DURATION=300 bench/soak.sh            (seconds; default 300)
#
# wrk (/usr/bin/wrk, Debian package wrk) scores one row against model
# `main` at full load for DURATION seconds; meanwhile, once a second, the
# models directory gets a valid new version (renamed in, or cp'ed over the
# served file), a truncated file, a bit flip, a file caught half-written,
# or a deleted/restored second model, each followed by SIGHUP. Checks that
# no valid request fails or gets a wrong answer (every wrk response is
# checked by a Lua script against the energies ebmd-train computes offline
# for the valid versions; a verifier checks too, every 50 ms), that ebmd
# neither dies nor grows (VmRSS within 5% after the warm-up), and that
# ebmd_model_reloads_total matches the load attempts the changes call for,
# reload by reload. bench/soak.py has the details and the expectations.
#
# Writes bench/results/soak.md (OUT=... to write elsewhere); exit 0 when
# every check passed. Not part of the tests: it needs a quiet machine.
# Environment: DURATION, THREADS (ebmd workers, 2), CONNECTIONS (16),
# WRK_THREADS (2), BUILD (build directory, "build"), OUT.
set -eu
cd "$(dirname "$0")/.."

build=${BUILD:-build}
[ -x /usr/bin/wrk ] || { echo "soak: needs wrk (apt-get install wrk)" >&2; exit 2; }
if [ ! -x "$build/src/ebmd" ] || [ ! -x "$build/src/tool/ebmd-train" ]; then
	[ -d "$build" ] || meson setup "$build" >/dev/null
	meson compile -C "$build" >/dev/null
fi
mkdir -p bench/results
exec /usr/bin/python3 bench/soak.py \
	--ebmd "$build/src/ebmd" --train "$build/src/tool/ebmd-train" \
	--data tests/data/thyroid.csv \
	--duration "${DURATION:-300}" --threads "${THREADS:-2}" \
	--connections "${CONNECTIONS:-16}" --wrk-threads "${WRK_THREADS:-2}" \
	--out "${OUT:-bench/results/soak.md}"
