#!/usr/bin/env bash
# test-faults.sh — ebmd-train train under faults: the existing --out file
# must survive anything short of a finished run, byte for byte.
#
# Usage: test-faults.sh kill  EBMD_TRAIN DATA_DIR
#        test-faults.sh mount EBMD_TRAIN DATA_DIR
#
#   kill   SIGKILL at random moments of a training run (and one near its
#          end, when the file is being written): afterwards --out is the
#          old file or the complete new one, never anything else, and any
#          temporary file left is the complete new model (the writer only
#          names its temporary file once it is written and synced). Then
#          the clean-up of stale temporary files by the next successful
#          write: only ours, only old ones, only unlocked ones.
#   mount  (root) a full disk (a small tmpfs, filled) and a read-only
#          target directory (a tmpfs remounted read-only, before and
#          during the run): a clear error naming the file, the old file
#          intact, no temporary file left. Runs in a private mount
#          namespace (unshare) when it can, so nothing outlives the test.
#          Exits 77 (meson's SKIP) with the reason when it cannot mount.
#
# Prints one line per check and "N passed, M failed" last.

set -u

if [ $# -ne 3 ]; then
	echo "usage: $0 kill|mount EBMD_TRAIN DATA_DIR" >&2
	exit 2
fi
MODE=$1
EBMD_TRAIN=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
DATA=$(cd "$3" && pwd)
THYROID=$DATA/thyroid.csv
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
export SOURCE_DATE_EPOCH=1700000000

# The mount tests re-run themselves in a private mount namespace.
if [ "$MODE" = mount ] && [ -z "${EBM_FAULTS_IN_NS:-}" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "SKIP: the mount tests need root (mount -t tmpfs)"
		exit 77
	fi
	if command -v unshare >/dev/null 2>&1 &&
			unshare --mount --propagation private true 2>/dev/null; then
		EBM_FAULTS_IN_NS=1 exec unshare --mount --propagation private \
			bash "$SELF" "$@"
	fi
	# No namespace: mount in the host's, and unmount on exit.
	EBM_FAULTS_IN_NS=host
fi

# shellcheck source=checks.sh
. "$(dirname "$0")/checks.sh"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ebmd-faults.XXXXXX")
MOUNTS=()
HELPERS=()
cleanup() {
	for pid in "${HELPERS[@]}"; do
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	for m in "${MOUNTS[@]}"; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
cd "$TMP" || exit 1

# Temporary files of the writer for --out DIR/NAME: .NAME.tmp-<12 hex>.
temps() {
	find "$1" -maxdepth 1 -name ".$2.tmp-*" -printf '%f\n' | sort
}

# A small quick model (the "old" file) and the long run that replaces it.
# (the prototypes alone: no network is trained)
OLD_ARGS=(--data "$THYROID" --hidden 8 --epochs 1 --reference-max 50
	--proto-net-weight 0 --seed 11)
# a dsm network model (--protos 0), all 300 epochs (--max-steps 0): its
# training lasts long enough to be hit, and not so long under ASan
LONG_ARGS=(--data "$THYROID" --hidden 32,32 --epochs 300 --patience 100000
	--objective dsm --max-steps 0 --seed 7 --threads 1 --protos 0)

"$EBMD_TRAIN" train "${OLD_ARGS[@]}" --out "$TMP/old.ebm" >/dev/null 2>&1 ||
	{ echo "cannot train the old model"; exit 1; }

now_ms() {
	date +%s%3N
}

# ---------------------------------------------------------------------------
# SIGKILL
# ---------------------------------------------------------------------------

if [ "$MODE" = kill ]; then
	# The complete new file, and how long the run takes.
	t0=$(now_ms)
	"$EBMD_TRAIN" train "${LONG_ARGS[@]}" --out "$TMP/new.ebm" \
		>/dev/null 2>&1 || { echo "cannot train the new model"; exit 1; }
	run_ms=$(($(now_ms) - t0))
	echo "# a full run takes $run_ms ms"
	cmp -s old.ebm new.ebm && { echo "old and new models are equal"; exit 1; }

	mkdir k
	interrupted=0
	completed=0
	left=0
	# Random moments over the whole run, and two around its end, where
	# the model is serialized and written.
	delays=()
	for _ in 1 2 3 4 5; do
		delays+=($((50 + RANDOM % (run_ms + 1))))
	done
	delays+=($((run_ms * 98 / 100)) $((run_ms * 101 / 100)))
	for delay in "${delays[@]}"; do
		cp old.ebm k/out.ebm
		"$EBMD_TRAIN" train "${LONG_ARGS[@]}" --out "$TMP/k/out.ebm" \
			>/dev/null 2>"$TMP/k.err" &
		pid=$!
		sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
		alive=0
		kill -0 "$pid" 2>/dev/null && alive=1
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		if cmp -s k/out.ebm old.ebm; then
			result=old
			interrupted=$((interrupted + 1))
		elif cmp -s k/out.ebm new.ebm; then
			result=new
			completed=$((completed + 1))
		else
			result=other
		fi
		stray=$(temps k out.ebm)
		if [ "$result" = other ]; then
			not_ok "SIGKILL after $delay ms: --out is neither the old nor the new file" \
				"size $(stat -c %s k/out.ebm)"
		else
			ok "SIGKILL after $delay ms (running: $alive): --out is the $result file"
		fi
		for t in $stray; do
			left=$((left + 1))
			if cmp -s "k/$t" new.ebm; then
				ok "a temporary file left by SIGKILL ($t) is the complete model"
			else
				not_ok "SIGKILL left an incomplete temporary file $t"
			fi
			rm -f "k/$t"
		done
	done
	echo "# $interrupted runs killed before the rename, $completed after; $left temporary files left"
	if [ "$interrupted" -ge 3 ]; then
		ok "at least 3 of ${#delays[@]} kills interrupted a run"
	else
		not_ok "only $interrupted kills interrupted a run (is training too fast?)"
	fi

	# Stale temporary files: the next successful write removes ours that
	# are old and unlocked, and nothing else.
	mkdir s
	cp old.ebm s/out.ebm
	for f in .out.ebm.tmp-0123456789ab .out.ebm.tmp-aaaaaaaaaaaa \
			.out.ebm.tmp-bbbbbbbbbbbb .other.ebm.tmp-0123456789ab \
			.out.ebm.tmp-0123 .out.ebm.tmp-0123456789AB; do
		echo partial >"s/$f"
	done
	touch -d '2 hours ago' s/.out.ebm.tmp-0123456789ab \
		s/.out.ebm.tmp-aaaaaaaaaaaa s/.other.ebm.tmp-0123456789ab \
		s/.out.ebm.tmp-0123 s/.out.ebm.tmp-0123456789AB
	# A live writer holds its temporary file locked.
	# (A subshell that becomes sleep, so that its pid is the lock holder.)
	(exec 9<"s/.out.ebm.tmp-aaaaaaaaaaaa" && flock 9 && exec sleep 60) \
		</dev/null >/dev/null 2>&1 &
	HELPERS+=($!)
	for _ in $(seq 50); do
		flock -n s/.out.ebm.tmp-aaaaaaaaaaaa true || break
		sleep 0.1
	done
	"$EBMD_TRAIN" train "${OLD_ARGS[@]}" --seed 12 --out "$TMP/s/out.ebm" \
		>/dev/null 2>s.err
	check "a train next to stale temporary files succeeds" [ $? -eq 0 ]
	got=$(ls -A s | tr '\n' ' ')
	want=".other.ebm.tmp-0123456789ab .out.ebm.tmp-0123 .out.ebm.tmp-0123456789AB .out.ebm.tmp-aaaaaaaaaaaa .out.ebm.tmp-bbbbbbbbbbbb out.ebm "
	if [ "$got" = "$want" ]; then
		ok "only the old unlocked temporary file of out.ebm was removed"
	else
		not_ok "stale temporary files: got '$got'" "wanted '$want'"
	fi
	finish
fi

# ---------------------------------------------------------------------------
# Full disk and read-only directory (root, mount)
# ---------------------------------------------------------------------------

[ "$MODE" = mount ] || { echo "unknown mode '$MODE'" >&2; exit 2; }

# mount_tmpfs DIR SIZE: 0 on success; SKIP (77) when mounting is refused.
mount_tmpfs() {
	mkdir -p "$1"
	if ! mount -t tmpfs -o "size=$2,mode=0755" tmpfs "$1" 2>"$TMP/mount.err"; then
		echo "SKIP: cannot mount a tmpfs here: $(cat "$TMP/mount.err")"
		exit 77
	fi
	MOUNTS+=("$1")
}

# expect_failure NAME REGEX DIR: the last run failed with stderr matching
# REGEX, DIR/out.ebm is the old file, and no temporary file is left.
expect_failure() {
	if [ "$rc" -ne 0 ]; then
		ok "$1: exit $rc"
	else
		not_ok "$1: exit 0, wanted a failure"
	fi
	if grep -Eq "$2" err; then
		ok "$1: message: $(grep -E -m 1 "$2" err)"
	else
		not_ok "$1: message does not match '$2'" "stderr: $(head -c 400 err)"
	fi
	check "$1: the old --out is byte-identical" cmp "$3/out.ebm" old.ebm
	local stray
	stray=$(temps "$3" out.ebm)
	if [ -z "$stray" ]; then
		ok "$1: no temporary file left"
	else
		not_ok "$1: temporary files left: $stray"
	fi
}

echo "# mount namespace: ${EBM_FAULTS_IN_NS}"

# Full disk: the old model fits, then a filler takes every free block.
mount_tmpfs "$TMP/full" 256k
cp old.ebm full/out.ebm
dd if=/dev/zero of=full/filler bs=4096 >/dev/null 2>&1
free_kb=$(df -k --output=avail full | tail -n 1 | tr -d ' ')
check "the tmpfs is full (${free_kb} KiB free)" [ "$free_kb" -eq 0 ]
"$EBMD_TRAIN" train "${OLD_ARGS[@]}" --seed 12 --out "$TMP/full/out.ebm" \
	>/dev/null 2>err
rc=$?
expect_failure "full disk" \
	"full/out\.ebm: write to .*'$TMP/full'.* failed: No space left on device" \
	full
got=$(ls -A full | tr '\n' ' ')
check "full disk: the directory holds only filler and out.ebm ($got)" \
	[ "$got" = "filler out.ebm " ]

# Read-only before the run: refused before any training.
mount_tmpfs "$TMP/ro" 1m
cp old.ebm ro/out.ebm
mount -o remount,ro "$TMP/ro" || { not_ok "cannot remount read-only"; finish; }
"$EBMD_TRAIN" train "${OLD_ARGS[@]}" --seed 12 --out "$TMP/ro/out.ebm" \
	>/dev/null 2>err
rc=$?
expect_failure "read-only directory" \
	"ro/out\.ebm: cannot write in directory '$TMP/ro': Read-only file system" ro

# Read-only during the run: the writer's own error.
mount_tmpfs "$TMP/ro2" 1m
cp old.ebm ro2/out.ebm
"$EBMD_TRAIN" train "${LONG_ARGS[@]}" --epochs 600 --out "$TMP/ro2/out.ebm" \
	>/dev/null 2>err &
pid=$!
# Once the first epoch is reported (the directory was checked), with
# hundreds of epochs to go.
for _ in $(seq 600); do
	grep -q 'epoch 1/' err && break
	sleep 0.05
done
mount -o remount,ro "$TMP/ro2"
wait "$pid"
rc=$?
expect_failure "directory made read-only during training" \
	"ro2/out\.ebm: cannot (create a temporary file in|write in directory) '$TMP/ro2'.*Read-only file system" \
	ro2
finish
