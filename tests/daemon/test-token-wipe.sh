#!/bin/sh
# ebmd wipes every copy of the bearer token before freeing it: runs
# `ebmd --check-config` (reads the token file, builds a catalog holding the
# token, frees both) and a short-lived daemon with free-check.so preloaded,
# which exits 99 if a freed block still holds the token.
#   test-token-wipe.sh EBMD FREE_CHECK_SO
set -eu
ebmd=$1
lib=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
token=tok-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
printf '  %s  \n' "$token" >"$dir/token"
chmod 600 "$dir/token"
mkdir "$dir/models"
printf '[server]\nlisten = 127.0.0.1:0\nthreads = 1\nauth_token_file = %s\n[models]\ndir = %s\n' \
	"$dir/token" "$dir/models" >"$dir/ebmd.conf"

rc=0
FREE_CHECK_NEEDLE=$token LD_PRELOAD=$lib "$ebmd" --config "$dir/ebmd.conf" \
	--check-config >"$dir/out" 2>&1 || rc=$?
if grep -q "cannot be preloaded" "$dir/out"; then
	cat "$dir/out"; exit 1
fi
if [ "$rc" -ne 0 ] || ! grep -q "token required" "$dir/out"; then
	echo "--check-config: exit $rc"; cat "$dir/out"; exit 1
fi

# The daemon: start, SIGHUP (a second token and catalog replace the
# first), SIGTERM.
FREE_CHECK_NEEDLE=$token LD_PRELOAD=$lib "$ebmd" --config "$dir/ebmd.conf" \
	>"$dir/log" 2>&1 &
pid=$!
i=0
until grep -q "ready$" "$dir/log"; do
	i=$((i + 1))
	if [ $i -gt 200 ] || ! kill -0 $pid 2>/dev/null; then
		echo "ebmd did not start"; cat "$dir/log"; exit 1
	fi
	sleep 0.05
done
kill -HUP $pid
i=0
until grep -q "reload: serving" "$dir/log"; do
	i=$((i + 1))
	[ $i -le 200 ] || { echo "no reload"; cat "$dir/log"; exit 1; }
	sleep 0.05
done
kill -TERM $pid
rc=0
wait $pid || rc=$?
if [ "$rc" -ne 0 ]; then
	echo "ebmd: exit $rc"; cat "$dir/log"; exit 1
fi
echo "token wiped before every free"
