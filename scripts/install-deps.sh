#!/bin/sh
# Installs the Debian 12 packages ebmd needs. Packages already present are
# not fetched again, so this is cheap to run before every build. Needs root
# (or sudo) only when something is missing.
#   scripts/install-deps.sh          everything: build, tests and fuzzing
#   scripts/install-deps.sh --build  only what building and running needs
set -eu

# Building and running: compiler, build system, and the libraries the
# README's "Dependencies" section explains (check is needed to configure
# the unit tests, which meson builds by default; scdoc the manual pages).
BUILD="
	gcc
	meson
	ninja-build
	pkg-config
	libopenblas-dev
	libjansson-dev
	libevent-dev
	libxxhash-dev
	libsystemd-dev
	check
	scdoc
"
# Testing: python3 drives the daemon's integration tests, systemd provides
# systemd-analyze for the unit checks, clang + compiler-rt build libFuzzer;
# wrk and curl drive the benchmarks in bench/, valgrind scripts/test.sh
# --valgrind. The ops suite (tests/ops/): dpkg-dev, debhelper and
# build-essential build the Debian package, man-db renders its pages,
# haproxy balances the replicas test, python3-yaml parses the Kubernetes
# manifests and the alerting rules, and prometheus brings promtool for
# the rules (its service is not needed; where systemd runs, Debian enables
# it: "systemctl disable --now prometheus"). chromium (headless) renders
# the status page GET /ui in tests/daemon/test_monitor.py.
TEST="
	systemd
	python3
	clang
	libclang-rt-14-dev
	wrk
	curl
	valgrind
	build-essential
	dpkg-dev
	debhelper
	man-db
	haproxy
	python3-yaml
	prometheus
	chromium
"

case "${1:-}" in
"") PACKAGES="$BUILD $TEST" ;;
--build) PACKAGES="$BUILD" ;;
*) echo "usage: scripts/install-deps.sh [--build]" >&2; exit 2 ;;
esac

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	exit 0
fi

echo "install-deps: installing:$missing" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then
	SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
