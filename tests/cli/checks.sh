# checks.sh — the counting and reporting shared by the CLI test scripts.
# Source it after setting TMP (a scratch directory). Each check prints one
# line; finish prints "N passed, M failed" and exits non-zero on a failure.

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

finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit
}
