#!/bin/sh
# valgrind-daemon.sh — the daemon's integration tests (tests/daemon/
# test_daemon.py) with every ebmd process run under valgrind memcheck:
#
#   valgrind --leak-check=full --error-exitcode=99
#            --errors-for-leak-kinds=definite
#
# Any memory error or definite leak makes that ebmd exit 99, which fails
# the test that started it; the logs (one per process) are summarized at
# the end. Not part of scripts/test.sh: it takes several minutes.
#
#   scripts/valgrind-daemon.sh [TEST_NAME,...]
#
# Builds a debug build in build-valgrind (line numbers in the stacks).
# Environment: EBMD_SLOW (default 20) scales the time bounds of the tests;
# OPENBLAS_CORETYPE defaults to Haswell (valgrind 3.19 has no AVX-512).
# Exit 0 when every test passed and no log reports an error.
set -eu
cd "$(dirname "$0")/.."

command -v valgrind >/dev/null || {
	echo "valgrind is not installed (apt-get install valgrind)" >&2
	exit 2
}

dir=build-valgrind
scripts/setup-build.sh "$dir" -Dbuildtype=debug
meson compile -C "$dir" >/dev/null

logs=$(mktemp -d "${TMPDIR:-/tmp}/ebmd-valgrind.XXXXXX")
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Haswell}"
export EBMD_SLOW="${EBMD_SLOW:-20}"
export EBMD_WRAP="valgrind --quiet --leak-check=full --error-exitcode=99 \
--errors-for-leak-kinds=definite --show-leak-kinds=definite \
--num-callers=30 --log-file=$logs/vg.%p.log"
if [ $# -gt 0 ]; then
	export EBMD_TESTS="$1"
fi

start=$(date +%s)
status=0
/usr/bin/python3 tests/daemon/test_daemon.py "$dir/src/ebmd" \
	"$dir/src/tool/ebmd-train" tests/data || status=1
took=$(($(date +%s) - start))

n=0
bad=0
for f in "$logs"/vg.*.log; do
	[ -e "$f" ] || continue
	n=$((n + 1))
	# --quiet: a log is empty unless valgrind had something to say.
	if [ -s "$f" ]; then
		bad=$((bad + 1))
		echo "==== $f"
		cat "$f"
	fi
done
echo "valgrind: $n ebmd processes, $bad with reports, ${took} s"
if [ "$bad" -gt 0 ]; then
	status=1
	echo "logs kept in $logs"
else
	rm -rf "$logs"
fi
exit "$status"
