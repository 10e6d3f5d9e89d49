#!/bin/sh
# The one-class split of ../shared/data/adbench/PUBLISHED.md (DTE's
# semi-supervised setting): the first round(0.5 * n_normal) normal rows in
# file order train, the other normal rows and every anomaly test. Python's
# round() rounds halves to even; so does this.
#   bench/split-oneclass.sh DATA.csv TRAIN.csv TEST.csv
# The label column must be the last one and be called "label".
set -eu
[ $# -eq 3 ] || { echo "usage: $0 DATA.csv TRAIN.csv TEST.csv" >&2; exit 2; }
data=$1 train=$2 test=$3
header=$(head -n 1 "$data" | tr -d '\r')
case "$header" in
*,label) ;;
*) echo "$0: $data: last column must be 'label'" >&2; exit 1 ;;
esac
n_normal=$(tail -n +2 "$data" | tr -d '\r' | awk -F, '$NF == 0' | wc -l)
n_train=$(awk -v n="$n_normal" 'BEGIN {
	h = n / 2; f = int(h);
	if (h - f > 0.5 || (h - f == 0.5 && f % 2 == 1)) f++;
	print f }')
tail -n +2 "$data" | tr -d '\r' | awk -F, -v k="$n_train" \
	-v train="$train.tmp" -v test="$test.tmp" -v header="$header" '
	BEGIN { print header > train; print header > test }
	$NF == 0 && seen < k { print > train; seen++; next }
	{ print > test }'
mv "$train.tmp" "$train"
mv "$test.tmp" "$test"
