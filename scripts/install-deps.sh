#!/bin/sh
# Installs every package needed to build and test ebmd on Debian 12.
# Packages already present are not fetched again, so this is cheap to run
# before every build. Needs root (or sudo) only when something is missing.
set -eu

PACKAGES="
	gcc
	meson
	ninja-build
	pkg-config
	libopenblas-dev
	libjansson-dev
	libevent-dev
	libxxhash-dev
	libinih-dev
	libsystemd-dev
	systemd
	check
	python3
	clang
	libclang-rt-14-dev
	valgrind
"

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
