#!/bin/sh
# Configures a meson build directory, or reconfigures it when it exists
# (so that changed options take effect), quietly.
#   scripts/setup-build.sh DIR [MESON_OPTION ...]
#   scripts/setup-build.sh --fuzz     the libFuzzer build, build-fuzz/: clang
#                                     (kept apart from gcc's), ASan + UBSan
set -eu
cd "$(dirname "$0")/.."

if [ "${1:-}" = --fuzz ]; then
	export CC=clang
	set -- build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
		-Db_lundef=false
fi
[ $# -ge 1 ] || { echo "usage: scripts/setup-build.sh DIR [OPTION ...] | --fuzz" >&2; exit 2; }
dir=$1
shift
if [ -d "$dir" ]; then
	meson setup --reconfigure "$dir" "$@" >/dev/null
else
	meson setup "$dir" "$@" >/dev/null
fi
