#!/bin/sh
# test-unit-security.sh — fails when systemd rates the unit's exposure
# above a bound.
#
# Usage: test-unit-security.sh SYSTEMD_ANALYZE UNIT_FILE MAX
#
# Runs "systemd-analyze security --offline=yes UNIT_FILE" and reads its
# "Overall exposure level for NAME: X.Y ..." line (0.0 is best, 10.0
# worst). Prints the settings that still cost exposure, then the level.
# Exit 0 when X.Y <= MAX, 1 when above, 1 too when the line is missing.
set -u
if [ $# -ne 3 ]; then
	echo "usage: $0 SYSTEMD_ANALYZE UNIT_FILE MAX" >&2
	exit 2
fi
analyze=$1
unit=$2
max=$3
out=$("$analyze" security --offline=yes --no-pager "$unit" 2>&1)
rc=$?
printf '%s\n' "$out" | grep '✗' || true
level=$(printf '%s\n' "$out" |
	sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9]*\.[0-9]\).*/\1/p' |
	tail -n 1)
if [ -z "$level" ]; then
	echo "FAIL: no 'Overall exposure level' line (systemd-analyze exit $rc):"
	printf '%s\n' "$out" | tail -n 20
	exit 1
fi
if awk -v l="$level" -v m="$max" 'BEGIN { exit !(l + 0 <= m + 0) }'; then
	echo "ok: $unit: exposure $level <= $max"
	exit 0
fi
echo "FAIL: $unit: exposure $level > $max"
exit 1
