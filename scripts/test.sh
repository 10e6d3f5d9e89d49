#!/bin/sh
# The one command that runs every test: installs what is missing, builds
# ebmd twice (a normal build, and one with AddressSanitizer and
# UndefinedBehaviorSanitizer) and runs the whole meson test suite in both;
# then a ThreadSanitizer build runs the suites with threads in them
# (daemon: the workers and reloads; train: the trainer's pool).
# Then each libFuzzer target runs for FUZZ_SECONDS (default 20) from its
# committed seed corpus (tests/fuzz/corpus/); a crash fails the run.
#   scripts/test.sh            everything
#   scripts/test.sh --no-asan  the normal build only (quicker while editing)
#   scripts/test.sh --no-tsan  skip the ThreadSanitizer stage
#   scripts/test.sh --no-fuzz  skip the fuzzing stage
#   scripts/test.sh --valgrind also run the daemon's integration tests with
#                              ebmd under valgrind (scripts/valgrind-daemon.sh,
#                              about 2 minutes more on 2 cores)
set -eu
cd "$(dirname "$0")/.."

asan=1
tsan=1
fuzz=1
valgrind=0
for arg in "$@"; do
	case "$arg" in
	--no-asan) asan=0 ;;
	--no-tsan) tsan=0 ;;
	--no-fuzz) fuzz=0 ;;
	--valgrind) valgrind=1 ;;
	*) echo "usage: scripts/test.sh [--no-asan] [--no-tsan] [--no-fuzz]" \
		"[--valgrind]" >&2
		exit 2 ;;
	esac
done

scripts/install-deps.sh

passed=0
failed=0
status=0

# run_suite DIR [MESON_OPTION ...]; $SUITES (if set) limits the tests to
# those meson suites.
run_suite() {
	dir=$1
	shift
	scripts/setup-build.sh "$dir" "$@"
	meson compile -C "$dir"
	log="$dir/test-summary.txt"
	only=
	for s in ${SUITES:-}; do
		only="$only --suite $s"
	done
	# shellcheck disable=SC2086 # $only is a list of options
	if meson test -C "$dir" --print-errorlogs --num-processes 2 $only \
			>"$log" 2>&1; then
		:
	else
		status=1
	fi
	cat "$log"
	ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
	bad=$(sed -n 's/^Fail: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
	timeout=$(sed -n 's/^Timeout: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
	passed=$((passed + ${ok:-0}))
	failed=$((failed + ${bad:-0} + ${timeout:-0}))
}

# Release, as scripts/run.sh builds it: gcc -O3 warns about things -O2 misses.
run_suite build -Dbuildtype=release
if [ "$asan" = 1 ]; then
	# halt_on_error: a sanitizer report fails the test instead of scrolling by.
	export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1"
	export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
	# -O1 with debug info, as the sanitizers' documentation advises: at
	# -O0 the default training (a cd network) ran 10x slower than release.
	run_suite build-asan -Db_sanitize=address,undefined -Db_lundef=false \
		-Ddebug=true -Doptimization=1 \
		-Dc_args=-fno-sanitize-recover=undefined
fi

if [ "$tsan" = 1 ]; then
	# clang: gcc's TSan instruments the resolvers of target_clones
	# (src/core/member.c), which run before TSan is set up, and ebmd
	# crashes at load. halt_on_error: a race fails the test (ebmd exits
	# 66). OpenBLAS is not instrumented; with one thread it starts none of
	# its own (ebmd uses one per request anyway). No suppressions.
	export TSAN_OPTIONS="halt_on_error=1" OPENBLAS_NUM_THREADS=1 CC=clang
	SUITES="daemon train"
	run_suite build-tsan -Db_sanitize=thread -Db_lundef=false \
		-Dbuildtype=debugoptimized
	unset SUITES OPENBLAS_NUM_THREADS CC
fi

if [ "$fuzz" = 1 ]; then
	scripts/setup-build.sh --fuzz
	meson compile -C build-fuzz
	for target in csv model conf http-request; do
		corpus=$(mktemp -d)
		cp tests/fuzz/corpus/"$target"/* "$corpus"/
		if build-fuzz/tests/fuzz/fuzz-"$target" \
				-max_total_time="${FUZZ_SECONDS:-20}" -max_len=8192 \
				-artifact_prefix=build-fuzz/ "$corpus" \
				>build-fuzz/fuzz-"$target".log 2>&1; then
			passed=$((passed + 1))
			echo "fuzz-$target: $(grep -o 'Done [0-9]* runs' \
				build-fuzz/fuzz-"$target".log) without a finding"
		else
			failed=$((failed + 1))
			status=1
			echo "fuzz-$target: FAILED, see build-fuzz/fuzz-$target.log"
			tail -n 40 build-fuzz/fuzz-"$target".log
		fi
		rm -rf "$corpus"
	done
fi

if [ "$valgrind" = 1 ]; then
	if scripts/valgrind-daemon.sh; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		status=1
	fi
fi

echo "tests: $passed passed, $failed failed"
exit $status
