#!/bin/sh
# The one command that starts ebmd: installs what is missing, builds an
# optimized ebmd in build/, and runs it in the foreground on the
# models shipped in models/ with the shipped config/ebmd.conf (listening on
# 127.0.0.1:8080; stop it with Ctrl-C). Extra arguments go to ebmd:
#   scripts/run.sh --listen 127.0.0.1:9090
set -eu
cd "$(dirname "$0")/.."

scripts/install-deps.sh --build
# The same optimized build directory the test command uses.
scripts/setup-build.sh build -Dbuildtype=release
meson compile -C build ebmd
exec build/src/ebmd --config config/ebmd.conf --models models "$@"
