#!/bin/bash
# Detection quality with the shipped defaults: train on the one-class split
# of tests/data/thyroid.csv (first half of the normal rows, file order) and
# require AUROC >= 0.95 on the held-out normals and all anomalies.
#   test-quality.sh EBMD_TRAIN SOURCE_ROOT
set -u
train=$1
root=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0
check() {
	if [ "$1" = 0 ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		echo "FAIL: $2"
	fi
}

"$root/bench/split-oneclass.sh" "$root/tests/data/thyroid.csv" \
	"$tmp/train.csv" "$tmp/test.csv"
check $? "split"
[ "$(wc -l <"$tmp/train.csv")" = 1841 ]
check $? "1840 training rows (DTE split of thyroid)"

for seed in 1 2; do
	"$train" train --data "$tmp/train.csv" --out "$tmp/m$seed.ebm" \
		--seed "$seed" --quiet
	check $? "train seed $seed"
	"$train" eval --model "$tmp/m$seed.ebm" --data "$tmp/test.csv" --json \
		>"$tmp/eval$seed.json"
	check $? "eval seed $seed"
	auroc=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["auroc"])' \
		"$tmp/eval$seed.json")
	echo "thyroid one-class split, seed $seed: AUROC $auroc"
	/usr/bin/python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= 0.95 else 1)' \
		"$auroc"
	check $? "seed $seed: AUROC $auroc >= 0.95"
done

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
