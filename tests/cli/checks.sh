# shellcheck shell=bash
# checks.sh — the helpers shared by the CLI test scripts: running a command,
# checks on its exit code and stderr, counting and reporting. Source it
# after setting TMP (a scratch directory). Each check prints one line;
# finish prints "N passed, M failed" and exits non-zero on a failure.

passed=0
failed=0

# ok NAME
ok() {
	passed=$((passed + 1))
	echo "ok   - $1"
}

# not_ok NAME [DETAIL ...]: each detail on its own indented line.
not_ok() {
	failed=$((failed + 1))
	echo "FAIL - $1"
	shift
	for line in "$@"; do
		echo "       $line"
	done
}

# check NAME COMMAND...: the command succeeds (its output shown if not).
check() {
	local name=$1
	shift
	if "$@" >"$TMP/check.out" 2>&1; then
		ok "$name"
	else
		not_ok "$name" "command: $*" "$(head -c 600 "$TMP/check.out")"
	fi
}

# run COMMAND...: runs it, output in $TMP/out and $TMP/err, exit code in
# $rc.
run() {
	"$@" >"$TMP/out" 2>"$TMP/err"
	rc=$?
}

# expect_rc WANT NAME: the last run exited with WANT.
expect_rc() {
	if [ "$rc" -eq "$1" ]; then
		ok "$2 (exit $rc)"
	else
		not_ok "$2: exit $rc, wanted $1" "stderr: $(head -c 600 "$TMP/err")"
	fi
}

# expect_err REGEX NAME: the last run's stderr matches the extended regex.
expect_err() {
	if grep -Eq -- "$1" "$TMP/err"; then
		ok "$2"
	else
		not_ok "$2: stderr does not match /$1/" \
			"stderr: $(head -c 600 "$TMP/err")"
	fi
}

finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit
}
