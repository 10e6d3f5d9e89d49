#!/usr/bin/env bash
# test-cli.sh — end-to-end test of ebmd-train (API.md section 4): trains a
# small model on tests/data/thyroid.csv and drives every subcommand, the
# error paths (exit codes and messages naming file, line and column), the
# atomic --out, SIGINT, and byte-identical rebuilds.
#
# Usage: test-cli.sh PATH/TO/ebmd-train PATH/TO/tests/data
# Prints one line per check and "N passed, M failed" last; exits non-zero
# on any failure.

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

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ebmd-cli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1

export SOURCE_DATE_EPOCH=1700000000
# 256 prototypes: the default energy, at an eighth of its scoring cost (the
# missing-value checks profile hundreds of rows per pattern).
# shellcheck disable=SC2054 # "32,32" is one argument
SMALL=(--hidden 32,32 --epochs 5 --batch 128 --protos 256 --seed 7 --threads 1
	--quiet)
N_ROWS=$(awk 'END { print NR - 1 }' "$THYROID")

# ---- top level -------------------------------------------------------------

run "$EBMD_TRAIN" --version
expect_rc 0 "--version"
check "--version prints the version" grep -Eq '^ebmd-train [0-9]+\.[0-9]+' "$TMP/out"
run "$EBMD_TRAIN" --help
expect_rc 0 "--help"
run "$EBMD_TRAIN"
expect_rc 2 "no command"
run "$EBMD_TRAIN" frobnicate
expect_rc 2 "unknown command"
for cmd in train eval score sample inspect; do
	run "$EBMD_TRAIN" "$cmd" --help
	expect_rc 0 "$cmd --help"
	check "$cmd --help prints usage" grep -q "^Usage: ebmd-train $cmd" "$TMP/out"
done

# ---- train, reproducibly -------------------------------------------------------

run "$EBMD_TRAIN" train --data "$THYROID" --out model.ebm "${SMALL[@]}"
expect_rc 0 "train a small model"
check "model.ebm exists" test -s model.ebm

run "$EBMD_TRAIN" train --data "$THYROID" --out verbose.ebm \
	--hidden 32,32 --epochs 5 --batch 128 --seed 7 --threads 1 --protos 0
expect_rc 0 "train without --quiet"
expect_err '^trained [0-9]+ rows x [0-9]+ epochs in [0-9.]+ s \([0-9,]+ rows/s\)$' \
	"train reports rows, epochs and rate"
expect_err '^wrote verbose\.ebm \(checksum [0-9a-f]{12}, [0-9]+ reference rows\)$' \
	"train reports the file, checksum and reference rows"
expect_err 'epoch [0-9]+/5' "train shows progress lines when not on a terminal"
run "$EBMD_TRAIN" train --data "$THYROID" --out default.ebm --seed 7 --threads 1
expect_rc 0 "train with the defaults, without --quiet"
# The default trains a cd network next to the prototypes, at most 2000
# steps: 3,018 training rows are 12 batches of 256 an epoch, so 167 epochs.
expect_err '^trained 3018 rows x 167 epochs in [0-9.]+ s \([0-9,]+ rows/s\)$' \
	"the default trains the network for at most 2000 steps (167 epochs)"
expect_err '^fitted [0-9]+ prototypes; the network.s weight next to them: (0|0\.25|0\.5|1|2|4) \(auto\)$' \
	"the default fits prototypes too, and weighs the network by the data"
run "$EBMD_TRAIN" inspect default.ebm
check "the default model is a cd network and prototypes" grep -q "\"objective\": \"cd+protos\"" "$TMP/out"
run "$EBMD_TRAIN" train --data "$THYROID" --out protos.ebm --seed 7 --threads 1 \
	--proto-net-weight 0
expect_rc 0 "train the prototype term alone"
expect_err '^fitted [0-9]+ prototypes \(the network was not trained\) in [0-9.]+ s$' \
	"--proto-net-weight 0 fits prototypes and says the network is not trained"
if grep -q '^trained ' "$TMP/err"; then
	not_ok "no network training is reported for the prototype term alone"
else
	ok "no network training is reported for the prototype term alone"
fi
run "$EBMD_TRAIN" train --data "$THYROID" --out model0.ebm "${SMALL[@]}" \
	--protos 0
check "same seed and SOURCE_DATE_EPOCH: identical files (--quiet or not)" \
	cmp model0.ebm verbose.ebm

run "$EBMD_TRAIN" train --data "$THYROID" --out model2.ebm "${SMALL[@]}"
expect_rc 0 "train again with the same seed"
check "same seed and SOURCE_DATE_EPOCH: identical files" cmp model.ebm model2.ebm

run "$EBMD_TRAIN" train --data "$THYROID" --out model3.ebm \
	--hidden 32,32 --epochs 5 --batch 128 --seed 8 --threads 1 --quiet
expect_rc 0 "train with another seed"
if cmp -s model.ebm model3.ebm; then
	not_ok "another seed gives another file"
else
	ok "another seed gives another file"
fi

run "$EBMD_TRAIN" train --data "$THYROID" --out normal.ebm "${SMALL[@]}" \
	--normal-only
expect_rc 0 "train --normal-only"

# ---- the prototype term: format version 2, and version 1 without it ----------

version_of() { od -An -t u4 -j 8 -N 4 "$1" | tr -d ' '; }
run "$EBMD_TRAIN" train --data "$THYROID" --out protos.ebm "${SMALL[@]}" \
	--protos 64 --proto-alpha 0.5
expect_rc 0 "train --protos 64 --proto-alpha 0.5"
check "a model with prototypes is format version 2" \
	test "$(version_of protos.ebm)" = 2
run "$EBMD_TRAIN" train --data "$THYROID" --out protos2.ebm "${SMALL[@]}" \
	--protos 64 --proto-alpha 0.5
check "same seed: identical files with prototypes" cmp protos.ebm protos2.ebm
run "$EBMD_TRAIN" train --data "$THYROID" --out noproto.ebm "${SMALL[@]}" \
	--protos 0
expect_rc 0 "train --protos 0"
check "a model without prototypes is format version 1" \
	test "$(version_of noproto.ebm)" = 1
run "$EBMD_TRAIN" inspect noproto.ebm
check "and its options record has no prototype keys (the earlier bytes)" \
	"$PY" -c '
import json, sys
o = json.load(open(sys.argv[1]))["training_options"]
assert not [k for k in o if k.startswith("proto")], o
' "$TMP/out"
run "$EBMD_TRAIN" score --model protos.ebm --data "$THYROID"
expect_rc 0 "score with a version-2 model"
check "it scores every row" test "$(awk 'END { print NR - 1 }' "$TMP/out")" \
	= "$N_ROWS"
run "$EBMD_TRAIN" inspect protos.ebm
expect_rc 0 "inspect a version-2 model"
check "its training options record the prototype settings" "$PY" -c '
import json, sys
o = json.load(open(sys.argv[1]))["training_options"]
assert o["protos"] == "64" and o["proto_alpha"] == "0.5", o
' "$TMP/out"
for bad in "--protos 65537" "--proto-alpha -1" "--proto-alpha 3" \
		"--proto-iters 1001" "--proto-net-noise --proto-net-weight 1"; do
	# shellcheck disable=SC2086
	run "$EBMD_TRAIN" train --data "$THYROID" --out bad.ebm $bad
	expect_rc 2 "train $bad"
	flag=${bad%% *}
	expect_err "${flag#--}" "train $bad: the message names the flag"
done
run "$EBMD_TRAIN" train --data "$THYROID" --out auto.ebm --hidden 32,32 \
	--epochs 5 --batch 128 --protos 256 --seed 7 --threads 1 \
	--proto-net-weight auto
expect_rc 0 "train with --proto-net-weight auto"
expect_err '^fitted 256 prototypes; the network.s weight next to them: (0|0\.25|0\.5|1|2|4) \(auto\)$' \
	"--proto-net-weight auto says which weight of its grid it chose"
chosen=$(sed -n 's/.*next to them: \([0-9.]*\) (auto)$/\1/p' "$TMP/err")
run "$EBMD_TRAIN" inspect auto.ebm
check "the options record 'auto', the weight it chose and each one's AUROC" "$PY" -c '
import json, sys
o = json.load(open(sys.argv[1]))["training_options"]
assert o["proto_net_weight"] == "auto", o
assert o["proto_net_weight_used"] == sys.argv[2], (o, sys.argv[2])
auroc = dict(kv.split(":") for kv in o["proto_net_weight_auroc"].split(","))
assert sorted(map(float, auroc)) == [0, 0.25, 0.5, 1, 2, 4], auroc
assert float(auroc[sys.argv[2]]) == max(map(float, auroc.values())), auroc
' "$TMP/out" "$chosen"
run "$EBMD_TRAIN" train --data "$THYROID" --out bad.ebm --proto-net-weight automatic
expect_rc 2 "train --proto-net-weight automatic"
expect_err "proto-net-weight: expected a number >= 0 or 'auto', got 'automatic'" \
	"the message names the flag and both kinds of value"
run "$EBMD_TRAIN" train --data "$THYROID" --out bad.ebm "${SMALL[@]}" \
	--protos 64 --val-frac 0
expect_rc 2 "train --protos with --val-frac 0"
expect_err 'protos need validation rows' "the message says why"

# ---- inspect -----------------------------------------------------------------

run "$EBMD_TRAIN" inspect model.ebm
expect_rc 0 "inspect"
check "inspect prints the model info as JSON" "$PY" -c '
import json, re, sys
d = json.load(open(sys.argv[1]))
want = ["name", "version", "features", "feature_names", "alpha",
        "reference_size", "objective", "hidden", "created", "checksum",
        "loaded_at"]
missing = [k for k in want if k not in d]
assert not missing, "missing fields %s" % missing
assert list(d)[:len(want)] == want, "field order %s" % list(d)
assert d["name"] == "model", d["name"]
assert re.fullmatch("[0-9a-f]{32}", d["checksum"]), d["checksum"]
assert d["version"] == d["checksum"][:12], d["version"]
assert d["features"] == 6, d["features"]
assert d["feature_names"] == ["f%d" % i for i in range(6)], d["feature_names"]
assert 0 < d["alpha"] < 1, d["alpha"]
assert isinstance(d["reference_size"], int) and d["reference_size"] > 0
assert d["objective"] == "cd+protos", d["objective"]   # the default
assert d["hidden"] == [32, 32], d["hidden"]
assert d["created"] == "2023-11-14T22:13:20Z", d["created"]
iso = "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z"
assert re.fullmatch(iso, d["loaded_at"]), d["loaded_at"]
assert d["members"] >= 1 and isinstance(d["activation"], str)
assert d["seed"] == 7, d["seed"]
assert isinstance(d["training_options"], dict) and d["training_options"]
' "$TMP/out"

cp model.ebm renamed.ebm
run "$EBMD_TRAIN" inspect renamed.ebm
check "inspect names the model after the file stem" "$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["name"] == "renamed", d["name"]
' "$TMP/out"

head -c 100 model.ebm >truncated.ebm
run "$EBMD_TRAIN" inspect truncated.ebm
expect_rc 1 "inspect a truncated model"
expect_err 'truncated\.ebm' "the message names the file"
{ cat model.ebm; printf 'x'; } >trailing.ebm
run "$EBMD_TRAIN" inspect trailing.ebm
expect_rc 1 "inspect a model with bytes after its end"
run "$EBMD_TRAIN" inspect missing.ebm
expect_rc 1 "inspect a missing file"
expect_err 'missing\.ebm' "the message names the missing file"
run "$EBMD_TRAIN" inspect
expect_rc 2 "inspect without a file"

# ---- score -------------------------------------------------------------------

run "$EBMD_TRAIN" score --model model.ebm --data "$THYROID"
expect_rc 0 "score"
cp "$TMP/out" scores.csv
check "score writes a header and one line per row" "$PY" -c '
import sys
lines = open(sys.argv[1]).read().splitlines()
n = int(sys.argv[2])
assert lines[0] == "energy,score,p_value,anomaly", lines[0]
assert len(lines) == n + 1, (len(lines), n + 1)
for line in lines[1:]:
    e, s, p, a = line.split(",")
    float(e), float(s)
    assert 0 < float(p) <= 1, p
    assert a in ("0", "1"), a
' scores.csv "$N_ROWS"

# The same rows with the columns shuffled and no label: same scores.
"$PY" -c '
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
order = [5, 2, 0, 4, 1, 3]
w = csv.writer(open(sys.argv[2], "w", newline=""), lineterminator="\n")
for r in rows:
    w.writerow([r[i] for i in order])
' "$THYROID" shuffled.csv
run "$EBMD_TRAIN" score --model model.ebm --data shuffled.csv
expect_rc 0 "score with columns in another order"
check "columns are matched by name" cmp "$TMP/out" scores.csv

# One feature column fewer: a different number of features.
cut -d, -f1-5,7 "$THYROID" >five.csv
run "$EBMD_TRAIN" score --model model.ebm --data five.csv
expect_rc 1 "score with 5 features for a 6-feature model"
expect_err 'five\.csv' "the message names the file"
expect_err 'five\.csv.*[^f0-9]5[^0-9].*[^f0-9]6([^0-9]|$)' \
	"the message gives the file's and the model's counts"
expect_err "f5" "the message names the missing column"

# Six features but one of them unknown.
sed '1s/f3/zz/' "$THYROID" >renamed-col.csv
run "$EBMD_TRAIN" score --model model.ebm --data renamed-col.csv
expect_rc 1 "score with a missing and an unknown column"
expect_err "renamed-col\.csv.*f3" "the message names the missing column"

# Seven features: an extra column.
sed '1s/$/,extra/; 2,$s/$/,1/' "$THYROID" >extra.csv
run "$EBMD_TRAIN" score --model model.ebm --data extra.csv
expect_rc 1 "score with an extra column"
expect_err "extra\.csv.*extra" "the message names the unknown column"

# Empty cells are missing values (API.md section 6) for score and eval:
# rows 2 and 4 with holes, the others exactly as without.
"$PY" -c '
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))[:41]
rows[2][2] = ""
rows[4][0] = ""
rows[4][4] = " "
csv.writer(open(sys.argv[2], "w", newline=""), lineterminator="\n").writerows(rows)
' "$THYROID" holes.csv
head -n 41 "$THYROID" >plain41.csv
run "$EBMD_TRAIN" score --model model.ebm --data plain41.csv
cp "$TMP/out" scores41.csv
run "$EBMD_TRAIN" score --model model.ebm --data holes.csv --imputed
expect_rc 0 "score with empty cells"
check "score --imputed: missing and imputed columns, other rows unchanged" \
	"$PY" -c '
import sys
lines = open(sys.argv[1]).read().splitlines()
plain = open(sys.argv[2]).read().splitlines()
assert lines[0] == "energy,score,p_value,anomaly,missing,imputed", lines[0]
assert len(lines) == 41, len(lines)
for i, line in enumerate(lines[1:], 1):
    cells = line.split(",")
    assert len(cells) == 6, line
    if i == 2:
        assert cells[4] == "2" and float(cells[5]) == float(cells[5]), line
    elif i == 4:
        assert cells[4] == "0;4" and len(cells[5].split(";")) == 2, line
    else:
        assert cells[4:] == ["", ""], line
        assert ",".join(cells[:4]) == plain[i], (line, plain[i])
' "$TMP/out" scores41.csv
run "$EBMD_TRAIN" score --model model.ebm --data holes.csv
expect_rc 0 "score with empty cells, no --imputed"
check "score without --imputed keeps its four columns" "$PY" -c '
import sys
lines = open(sys.argv[1]).read().splitlines()
assert lines[0] == "energy,score,p_value,anomaly"
assert all(len(l.split(",")) == 4 for l in lines), lines[:3]
' "$TMP/out"
run "$EBMD_TRAIN" eval --model model.ebm --data holes.csv --json
expect_rc 0 "eval with empty cells"
"$PY" -c '
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))[:6]
rows[3] = ["" for _ in rows[3][:-1]] + [rows[3][-1]]
csv.writer(open(sys.argv[2], "w", newline=""), lineterminator="\n").writerows(rows)
' "$THYROID" allholes.csv
run "$EBMD_TRAIN" score --model model.ebm --data allholes.csv
expect_rc 1 "score with a row of empty cells only"
expect_err 'allholes\.csv:4: every feature is missing' \
	"the message names the file and line"
run "$EBMD_TRAIN" train --data holes.csv --out bad.ebm "${SMALL[@]}"
expect_rc 1 "train with an empty cell"
expect_err "holes\.csv:3:3 \(column 'f2'\): expected a number, got an empty cell" \
	"train still refuses empty cells with file, line and column"

# Calibration with holes: a model of the first 2/3 of thyroid's normal
# rows; the other third, with 1 and 2 random cells emptied per row, must
# have p_value < 0.1 for a share within [0.05, 0.15] (nominal 0.1; the
# share's sd is ~0.02 with 245 reference rows and 1227 held-out rows).
"$PY" -c '
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
normal = [r for r in rows[1:] if r[-1] == "0"]
k = len(normal) * 2 // 3
w = csv.writer(open(sys.argv[2], "w", newline=""), lineterminator="\n")
w.writerows([rows[0]] + normal[:k])
w = csv.writer(open(sys.argv[3], "w", newline=""), lineterminator="\n")
w.writerows([rows[0]] + normal[k:])
' "$THYROID" cal-train.csv cal-held.csv
run "$EBMD_TRAIN" train --data cal-train.csv --out cal.ebm "${SMALL[@]}"
expect_rc 0 "train the calibration model"
for k in 1 2; do
	"$PY" -c '
import csv, random, sys
rows = list(csv.reader(open(sys.argv[1])))
rng = random.Random(int(sys.argv[3]))
for r in rows[1:]:
    for j in rng.sample(range(len(r) - 1), int(sys.argv[3])):
        r[j] = ""
csv.writer(open(sys.argv[2], "w", newline=""), lineterminator="\n").writerows(rows)
' cal-held.csv "cal-held-$k.csv" "$k"
	run "$EBMD_TRAIN" score --model cal.ebm --data "cal-held-$k.csv"
	expect_rc 0 "score held-out normal rows with $k missing"
	check "calibrated with $k missing: share of p < 0.1 in [0.05, 0.15]" \
		"$PY" -c '
import sys
p = [float(l.split(",")[2]) for l in open(sys.argv[1]).read().splitlines()[1:]]
share = sum(v < 0.1 for v in p) / len(p)
print("share", share)
assert 0.05 <= share <= 0.15, share
' "$TMP/out"
done

run "$EBMD_TRAIN" score --model missing.ebm --data "$THYROID"
expect_rc 1 "score with a missing model"
run "$EBMD_TRAIN" score --model model.ebm
expect_rc 2 "score without --data"

# ---- eval ----------------------------------------------------------------------

run "$EBMD_TRAIN" eval --model model.ebm --data "$THYROID"
expect_rc 0 "eval"
check "eval prints AUROC" grep -Eq '^AUROC +[0-9]\.[0-9]+' "$TMP/out"
check "eval prints AUPRC" grep -Eq '^AUPRC +[0-9]\.[0-9]+' "$TMP/out"
check "eval prints precision, recall and F1" \
	grep -Eq '^F1 +[0-9]\.[0-9]+' "$TMP/out"

run "$EBMD_TRAIN" eval --model model.ebm --data "$THYROID" --json
expect_rc 0 "eval --json"
check "eval --json prints one JSON object" "$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("auroc", "auprc", "precision", "recall", "f1"):
    assert 0 <= d[k] <= 1, (k, d[k])
assert d["rows"] == int(sys.argv[2]), d["rows"]
assert 0 < d["anomalies"] < d["rows"]
assert 0 < d["alpha"] < 1
' "$TMP/out" "$N_ROWS"

run "$EBMD_TRAIN" eval --model model.ebm --data shuffled.csv
expect_rc 1 "eval without a label column"
expect_err 'shuffled\.csv' "the message names the file"

# All rows normal: AUROC is undefined, not an error.
awk -F, 'NR == 1 || $7 == 0' "$THYROID" >normal-rows.csv
run "$EBMD_TRAIN" eval --model model.ebm --data normal-rows.csv --json
expect_rc 0 "eval with one class only"
check "AUROC is null with a note" "$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["auroc"] is None, d["auroc"]
assert d.get("note"), d
' "$TMP/out"

# ---- sample ------------------------------------------------------------------

run "$EBMD_TRAIN" sample --model model.ebm -n 5 --seed 3
expect_rc 0 "sample -n 5"
check "sample -n 5 prints 6 lines" test "$(wc -l <"$TMP/out")" -eq 6
check "sample's header is the feature names" \
	test "$(head -n 1 "$TMP/out")" = "f0,f1,f2,f3,f4,f5"
check "sample rows are 6 numbers" "$PY" -c '
import math, sys
for line in open(sys.argv[1]).read().splitlines()[1:]:
    v = [float(x) for x in line.split(",")]
    assert len(v) == 6 and all(math.isfinite(x) for x in v), line
' "$TMP/out"
run "$EBMD_TRAIN" sample --model model.ebm -n 5 --sampler mala --steps 10
expect_rc 0 "sample --sampler mala"
expect_err 'acceptance' "mala reports its acceptance rate"
run "$EBMD_TRAIN" sample --model model.ebm -n 5 --sampler gibbs
expect_rc 2 "sample with an unknown sampler"
run "$EBMD_TRAIN" sample --model model.ebm -n 0
expect_rc 2 "sample -n 0"

# ---- bad data ------------------------------------------------------------------

run "$EBMD_TRAIN" train --data missing.csv --out bad.ebm "${SMALL[@]}"
expect_rc 1 "train with a missing file"
expect_err 'missing\.csv' "the message names the missing file"

head -n 20 "$THYROID" >ragged.csv
sed -i '3s/,[^,]*$//' ragged.csv
run "$EBMD_TRAIN" train --data ragged.csv --out bad.ebm "${SMALL[@]}"
expect_rc 1 "train with a ragged row"
expect_err 'ragged\.csv:3([^0-9]|$)' "the message names the file and line"

head -n 20 "$THYROID" >cell.csv
sed -i '3s/^\([^,]*\),[^,]*,/\1,abc,/' cell.csv
run "$EBMD_TRAIN" train --data cell.csv --out bad.ebm "${SMALL[@]}"
expect_rc 1 "train with a non-numeric cell"
expect_err 'cell\.csv:3:[0-9]+' "the message names the file, line and column"
run "$EBMD_TRAIN" score --model model.ebm --data cell.csv
expect_rc 1 "score with a non-numeric cell"
expect_err 'cell\.csv:3:[0-9]+' "score's message names the file, line and column"

run "$EBMD_TRAIN" train --data shuffled.csv --out bad.ebm "${SMALL[@]}" \
	--normal-only
expect_rc 1 "train --normal-only without a label column"

# ---- usage errors ----------------------------------------------------------------

run "$EBMD_TRAIN" train --data "$THYROID" --out bad.ebm --bogus
expect_rc 2 "unknown flag"
expect_err "'--bogus'" "the message names the flag"
expect_err '--help' "the message points to --help"

run "$EBMD_TRAIN" train --data "$THYROID" --out bad.ebm --lr abc
expect_rc 2 "--lr abc"
expect_err "^ebmd-train: --lr: expected a positive number, got 'abc'$" \
	"the message names the flag and the value"
for bad in "--epochs 1.5" "--epochs -3" "--lr -1" "--lr inf" "--alpha 1" \
		"--alpha 0" "--hidden 32,,32" "--hidden 0" "--members 0" \
		"--objective gan" "--seed x" "--batch 10abc"; do
	# shellcheck disable=SC2086
	run "$EBMD_TRAIN" train --data "$THYROID" --out bad.ebm $bad
	expect_rc 2 "train $bad"
	expect_err "${bad%% *}" "train $bad: the message names the flag"
done
run "$EBMD_TRAIN" train --data "$THYROID" --out bad.ebm --objective cd \
	--batch 64 --cd-buffer 10
expect_rc 2 "train --objective cd with --cd-buffer below --batch"
expect_err '^ebmd-train: cd-buffer \(10\) must be at least batch \(64\)' \
	"the message names both values"
run "$EBMD_TRAIN" train --data "$THYROID"
expect_rc 2 "train without --out"
SOURCE_DATE_EPOCH=yesterday run "$EBMD_TRAIN" train --data "$THYROID" \
	--out bad.ebm "${SMALL[@]}"
expect_rc 2 "SOURCE_DATE_EPOCH that is not a number"
expect_err 'SOURCE_DATE_EPOCH' "the message names SOURCE_DATE_EPOCH"
check "no model is written after errors" test ! -e bad.ebm

# ---- an existing --out survives failures -------------------------------------------

cp model.ebm keep.ebm
run "$EBMD_TRAIN" train --data cell.csv --out keep.ebm "${SMALL[@]}"
expect_rc 1 "train over an existing --out with bad data"
check "the existing --out is untouched" cmp model.ebm keep.ebm
run "$EBMD_TRAIN" train --data "$THYROID" --out keep.ebm --lr abc
check "the existing --out is untouched after a usage error" \
	cmp model.ebm keep.ebm
check "no temporary files are left behind" \
	test "$(find . -name '*keep*' | wc -l)" -eq 1

# SIGINT: stop at the end of an epoch, exit 130, leave --out alone.
"$EBMD_TRAIN" train --data "$THYROID" --out keep.ebm --hidden 64,64 \
	--epochs 100000 --patience 0 --seed 7 --threads 1 --protos 0 \
	>"$TMP/out" 2>"$TMP/err" &
pid=$!
for _ in $(seq 600); do
	grep -q 'epoch' "$TMP/err" && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
kill -INT "$pid" 2>/dev/null
for _ in $(seq 600); do
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
	kill -KILL "$pid"
	not_ok "SIGINT stops training within 60 s"
fi
wait "$pid"
rc=$?
expect_rc 130 "train interrupted by SIGINT"
expect_err 'interrupted; keep\.ebm not written' "SIGINT is reported"
check "the existing --out is untouched after SIGINT" cmp model.ebm keep.ebm

finish
