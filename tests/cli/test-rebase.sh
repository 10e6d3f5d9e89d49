#!/usr/bin/env bash
# test-rebase.sh — `ebmd-train rebase` (API.md section 6, "Re-baselining"):
# the round trip (a model rebased on its own reference rows is the same
# file, byte for byte), a new reference set (same energies, p-values
# against the new rows, a new version), and every bad input with its
# message naming file, line and column, the output left untouched.
#
# Usage: test-rebase.sh PATH/TO/ebmd-train PATH/TO/tests/data

set -u

if [ $# -ne 2 ]; then
	echo "usage: $0 EBMD_TRAIN DATA_DIR" >&2
	exit 2
fi
EBMD_TRAIN=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
DATA=$(cd "$2" && pwd)
THYROID=$DATA/thyroid.csv
PY=/usr/bin/python3

# shellcheck source=checks.sh
. "$(dirname "$0")/checks.sh"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ebmd-rebase.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1

export SOURCE_DATE_EPOCH=1700000000
run "$EBMD_TRAIN" train --data "$THYROID" --out m.ebm --normal-only \
	--hidden 32,32 --epochs 5 --seed 7 --threads 1 --quiet
expect_rc 0 "train the model"

# The reference rows of m.ebm, read from the end of the file (model.h: the
# blob ends with ref_rows[n_ref*d], ref_energy[n_ref], then the checksum).
$PY - m.ebm ref.csv <<'PYEOF'
import csv, struct, sys
b = open(sys.argv[1], "rb").read()
d, = struct.unpack_from("<I", b, 24)
n, = struct.unpack_from("<I", b, 40)
end = len(b) - 16 - 4 * n
rows = struct.unpack_from("<%df" % (n * d), b, end - 4 * n * d)
with open(sys.argv[2], "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    w.writerow(["f%d" % j for j in range(d)])
    for i in range(n):
        w.writerow(["%.9g" % v for v in rows[i * d:(i + 1) * d]])
PYEOF
N_REF=$(awk 'END { print NR - 1 }' ref.csv)

# ---- round trip -------------------------------------------------------------
run "$EBMD_TRAIN" rebase --model m.ebm --data ref.csv --out same.ebm
expect_rc 0 "rebase on the model's own reference rows"
expect_err "wrote same.ebm \(checksum [0-9a-f]{12}, $N_REF reference rows" \
	"rebase reports what it wrote"
# train stores the energies of one pass over the reference set; rebase
# computes them as score does (in blocks), which may differ in the last
# bit: the same rows in the same order, energies within a few ulps.
check "the round trip keeps the rows, the order and the energies" \
	$PY - m.ebm same.ebm <<'PYEOF'
import struct, sys
def ref(p):
    b = open(p, "rb").read()
    d, = struct.unpack_from("<I", b, 24)
    n, = struct.unpack_from("<I", b, 40)
    e = struct.unpack_from("<%df" % n, b, len(b) - 16 - 4 * n)
    r = struct.unpack_from("<%df" % (n * d), b, len(b) - 16 - 4 * n - 4 * n * d)
    return b[:len(b) - 16 - 4 * n - 4 * n * d], r, e
ha, ra, ea = ref(sys.argv[1])
hb, rb, eb = ref(sys.argv[2])
assert ha == hb, "header, weights or standardization changed"
assert ra == rb, "reference rows or their order changed"
assert all(abs(x - y) <= 1e-6 * max(1.0, abs(x)) for x, y in zip(ea, eb))
PYEOF
run "$EBMD_TRAIN" rebase --model same.ebm --data ref.csv --out again.ebm
check "rebase is a fixed point: again, the same file byte for byte" \
	cmp same.ebm again.ebm
"$EBMD_TRAIN" score --model m.ebm --data "$THYROID" >s0.csv 2>/dev/null
"$EBMD_TRAIN" score --model same.ebm --data "$THYROID" >s1.csv 2>/dev/null
check "the round trip scores every row the same (p-values within 1/(n+1))" \
	$PY - s0.csv s1.csv "$N_REF" <<'PYEOF'
import csv, sys
a = list(csv.DictReader(open(sys.argv[1])))
b = list(csv.DictReader(open(sys.argv[2])))
n = int(sys.argv[3])
assert len(a) == len(b) and a
assert all(x["energy"] == y["energy"] and x["score"] == y["score"]
           for x, y in zip(a, b))
moved = [abs(float(x["p_value"]) - float(y["p_value"])) for x, y in zip(a, b)]
assert max(moved) <= 1.0 / (n + 1) + 1e-9, max(moved)
assert sum(m > 0 for m in moved) <= 0.02 * len(a), sum(m > 0 for m in moved)
PYEOF

# ---- a new reference set ----------------------------------------------------
# Columns in another order, a label column: matched by name, label ignored.
$PY - "$THYROID" new.csv <<'PYEOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
head, body = rows[0], rows[1:]
normal = [r for r in body if r[-1] == "0"][1::3][:400]
order = [6, 5, 3, 4, 2, 1, 0]
with open(sys.argv[2], "w", newline="") as f:
    w = csv.writer(f, lineterminator="\n")
    for r in [head] + normal:
        w.writerow([r[j] for j in order])
PYEOF
run "$EBMD_TRAIN" rebase --model m.ebm --data new.csv --out new.ebm
expect_rc 0 "rebase on 400 other normal rows"
run "$EBMD_TRAIN" inspect new.ebm
if grep -q '"reference_size": 400' "$TMP/out" &&
	! cmp -s m.ebm new.ebm &&
	[ "$(grep '"version"' "$TMP/out")" != \
		"$("$EBMD_TRAIN" inspect m.ebm | grep '"version"')" ]; then
	ok "the new model has 400 reference rows and a new version"
else
	not_ok "new.ebm: reference_size or version" "$(head -c 400 "$TMP/out")"
fi
"$EBMD_TRAIN" score --model new.ebm --data "$THYROID" >s2.csv 2>/dev/null
"$EBMD_TRAIN" score --model new.ebm --data new.csv >s3.csv 2>/dev/null
# Same weights: the energies do not change. The new reference rows' own
# p-values are (1 + #{r : E(r) >= E(x)}) / 401 over the new set: with
# distinct energies, exactly 2/401 .. 401/401, once each.
check "energies are kept, p-values are taken against the new rows" \
	$PY - s0.csv s2.csv s3.csv <<'PYEOF'
import csv, sys
a = list(csv.DictReader(open(sys.argv[1])))
b = list(csv.DictReader(open(sys.argv[2])))
own = list(csv.DictReader(open(sys.argv[3])))
assert len(a) == len(b) and a, "row counts"
assert all(x["energy"] == y["energy"] for x, y in zip(a, b)), "energies"
assert any(x["p_value"] != y["p_value"] for x, y in zip(a, b)), "p same"
k = sorted(round(float(r["p_value"]) * 401) for r in own)
energies = {r["energy"] for r in own}
if len(energies) == 400:
    assert k == list(range(2, 402)), k[:5]
else:
    assert k[0] >= 2 and k[-1] == 401, (k[0], k[-1])
PYEOF

# ---- --normal-only ----------------------------------------------------------
$PY - "$THYROID" mixed.csv <<'PYEOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
with open(sys.argv[2], "w", newline="") as f:
    csv.writer(f, lineterminator="\n").writerows([rows[0]] + rows[1:201]
                            + [r for r in rows[1:] if r[-1] == "1"])
PYEOF
N_NORMAL=$(awk -F, 'NR > 1 && NR <= 201 && $NF == 0' mixed.csv | wc -l)
run "$EBMD_TRAIN" rebase --model m.ebm --data mixed.csv --out normal.ebm \
	--normal-only
expect_rc 0 "rebase --normal-only"
expect_err "$N_NORMAL reference rows" "--normal-only keeps the rows labelled 0"

# ---- bad inputs: messages, exit codes, --out untouched -----------------------
cp new.ebm keep.ebm
before=$(md5sum keep.ebm)
untouched() {
	if [ "$(md5sum keep.ebm)" = "$before" ]; then
		ok "$1: keep.ebm untouched"
	else
		not_ok "$1: keep.ebm was changed"
	fi
}

cut -d, -f1-5,7 "$THYROID" >missing.csv
run "$EBMD_TRAIN" rebase --model m.ebm --data missing.csv --out keep.ebm
expect_rc 1 "a missing feature column"
expect_err "missing.csv.*f5" "the message names the file and the column"
untouched "missing column"

head -11 "$THYROID" >few.csv
run "$EBMD_TRAIN" rebase --model m.ebm --data few.csv --out keep.ebm
expect_rc 1 "too few rows"
expect_err "few.csv: 10 rows; the reference set of m.ebm needs 50\.\.5000" \
	"the message names the file, the count and the bounds"
untouched "too few rows"

{ head -30 "$THYROID"; echo "0.5,0.1,abc,0.2,0.3,0.1,0"; sed -n 31,120p \
	"$THYROID"; } >bad.csv
run "$EBMD_TRAIN" rebase --model m.ebm --data bad.csv --out keep.ebm
expect_rc 1 "a non-numeric cell"
expect_err "bad.csv:31.*(column 3|f2)" "the message names file, line and column"
untouched "non-numeric cell"

{ head -30 "$THYROID"; echo "0.5,0.1,1e39,0.2,0.3,0.1,0"; sed -n 31,120p \
	"$THYROID"; } >big.csv
run "$EBMD_TRAIN" rebase --model m.ebm --data big.csv --out keep.ebm
expect_rc 1 "a value beyond a float"
expect_err "big.csv:31" "the message names the line"
untouched "value beyond a float"

run "$EBMD_TRAIN" rebase --model keep.ebm --data new.csv --out keep.ebm
expect_rc 2 "--out is the model"
expect_err "--out 'keep.ebm' is the model itself" "the message says so"
untouched "--out is the model"
ln -s keep.ebm link.ebm
run "$EBMD_TRAIN" rebase --model link.ebm --data new.csv --out keep.ebm
expect_rc 2 "--out is the model through a symbolic link"

run "$EBMD_TRAIN" rebase --model m.ebm --data new.csv --out nodir/x.ebm
expect_rc 1 "an unwritable --out"
expect_err "nodir/x\.ebm" "the message names the output"

run "$EBMD_TRAIN" rebase --model nope.ebm --data new.csv --out x.ebm
expect_rc 1 "a missing model"
expect_err "nope\.ebm" "the message names the model"
run "$EBMD_TRAIN" rebase --model m.ebm --data nope.csv --out x.ebm
expect_rc 1 "a missing data file"
expect_err "nope\.csv" "the message names the data file"
run "$EBMD_TRAIN" rebase --model m.ebm --data new.csv
expect_rc 2 "no --out"
expect_err "missing --out" "the message names the option"
if [ ! -e x.ebm ] && [ -z "$(find . -name '.*tmp*')" ]; then
	ok "no output and no temporary file left by the failures"
else
	not_ok "left behind: $(ls -a)"
fi

finish
