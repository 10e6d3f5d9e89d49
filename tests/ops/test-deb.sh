#!/bin/sh
# The Debian package: built from a copy of the tree with
# dpkg-buildpackage -b -us -uc (debian/), its contents checked with
# dpkg-deb, unpacked into a scratch root with dpkg -x, and the unpacked
# ebmd run with --check-config on the unpacked /etc/ebmd/ebmd.conf.
#   test-deb.sh SOURCE_ROOT WORK_DIR
# The source tree is never written to: the build happens in WORK_DIR/src.
# The check-config runs in a private mount namespace (unshare) where the
# package's /var/lib is mounted on /var/lib, so that the installed
# configuration's absolute models directory is the package's own.
set -eu

src=$(cd "$1" && pwd)
work=$2
rm -rf "$work"
mkdir -p "$work/src/ebmd" "$work/root"
work=$(cd "$work" && pwd)
failures=0
fail() {
	echo "FAIL: $*"
	failures=$((failures + 1))
}

# ---- a copy of the tree (tracked and new files, not the build dirs) --------
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
	git -C "$src" ls-files -z --cached --others --exclude-standard |
		(cd "$src" && xargs -0 tar -cf - --no-recursion) |
		tar -xf - -C "$work/src/ebmd"
	before=$(git -C "$src" status --porcelain)
else
	tar -C "$src" --exclude='./build*' -cf - . | tar -xf - -C "$work/src/ebmd"
	before=""
fi

# ---- build ------------------------------------------------------------------
# nocheck: the test suite runs in the tree already; here it would double
# the time. parallel=2: the build machine's cores.
start=$(date +%s)
if ! (cd "$work/src/ebmd" && DEB_BUILD_OPTIONS="nocheck parallel=${JOBS:-2}" \
		dpkg-buildpackage -b -us -uc) >"$work/build.log" 2>&1; then
	tail -n 60 "$work/build.log"
	echo "FAIL: dpkg-buildpackage -b -us -uc (log: $work/build.log)"
	exit 1
fi
echo "dpkg-buildpackage: $(($(date +%s) - start)) s"
deb=$(ls "$work"/src/ebmd_*.deb | head -n 1)
[ -f "$deb" ] || { echo "FAIL: no ebmd_*.deb in $work/src"; exit 1; }
echo "package: $(basename "$deb")"
if [ -n "$before" ] || [ -n "$(git -C "$src" status --porcelain 2>/dev/null)" ]; then
	[ "$before" = "$(git -C "$src" status --porcelain)" ] ||
		fail "the source tree changed during the build"
fi

# ---- contents ---------------------------------------------------------------
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|; s|/$||' \
	>"$work/contents"
for path in /usr/sbin/ebmd /usr/bin/ebmd-train /etc/ebmd/ebmd.conf \
		/var/lib/ebmd/models \
		/usr/share/man/man8/ebmd.8.gz /usr/share/man/man1/ebmd-train.1.gz \
		/usr/share/man/man5/ebmd.conf.5.gz \
		/usr/share/doc/ebmd/copyright; do
	grep -qx "$path" "$work/contents" || fail "$path is not in the package"
done
# dh_compress leaves small files as they are.
for doc in README.md daemon.md deployment.md; do
	grep -qE "^/usr/share/doc/ebmd/$doc(\.gz)?\$" "$work/contents" ||
		fail "/usr/share/doc/ebmd/$doc is not in the package"
done
grep -qE '^/(usr/)?lib/systemd/system/ebmd.service$' "$work/contents" ||
	fail "ebmd.service is not in the package"
# The models directory ships empty.
if grep -q '^/var/lib/ebmd/models/.' "$work/contents"; then
	fail "/var/lib/ebmd/models is not empty: $(grep '^/var/lib/ebmd/models/.' "$work/contents")"
fi
dpkg-deb -e "$deb" "$work/control"
grep -qx /etc/ebmd/ebmd.conf "$work/control/conffiles" ||
	fail "/etc/ebmd/ebmd.conf is not a conffile: $(cat "$work/control/conffiles" 2>/dev/null)"
# debhelper enables and reloads the unit on install and upgrade.
grep -q 'deb-systemd-helper' "$work/control/postinst" ||
	fail "postinst does not enable ebmd.service"
for field in Package Version Architecture Depends Description; do
	dpkg-deb -f "$deb" "$field" | grep -q . || fail "no $field in the control file"
done
dpkg-deb -f "$deb" Depends | grep -q libopenblas ||
	fail "Depends lacks OpenBLAS: $(dpkg-deb -f "$deb" Depends)"

# ---- unpacked ---------------------------------------------------------------
root=$work/root
dpkg -x "$deb" "$root"
conf=$root/etc/ebmd/ebmd.conf
grep -qx 'dir = /var/lib/ebmd/models' "$conf" ||
	fail "the installed ebmd.conf does not serve /var/lib/ebmd/models: $(grep -n '^dir' "$conf")"
unit=$(ls "$root"/lib/systemd/system/ebmd.service "$root"/usr/lib/systemd/system/ebmd.service 2>/dev/null | head -n 1)
grep -qx 'ExecStart=/usr/sbin/ebmd --config /etc/ebmd/ebmd.conf' "$unit" ||
	fail "the unit's ExecStart: $(grep ExecStart "$unit")"
grep -qx 'DynamicUser=yes' "$unit" || fail "the unit has no DynamicUser=yes"
"$root/usr/sbin/ebmd" --version | grep -q "^ebmd $(dpkg-deb -f "$deb" Version)" ||
	fail "ebmd --version: $("$root/usr/sbin/ebmd" --version) (package $(dpkg-deb -f "$deb" Version))"
for page in man8/ebmd.8 man1/ebmd-train.1 man5/ebmd.conf.5; do
	warn=$(MANWIDTH=80 man -l "$root/usr/share/man/$page.gz" 2>&1 >/dev/null)
	[ -z "$warn" ] || fail "man $page: $warn"
done

# The installed ebmd on the installed configuration, with the package's
# /var/lib in place of the host's.
if [ "$(id -u)" = 0 ]; then
	ns="unshare --mount"
else
	ns="unshare --mount --map-root-user"
fi
check_config() {
	$ns sh -c 'mount --bind "$1/var/lib" /var/lib && cd / &&
		exec "$1/usr/sbin/ebmd" --config "$1/etc/ebmd/ebmd.conf" --check-config' \
		sh "$root"
}
if ! $ns true 2>/dev/null; then
	fail "cannot make a mount namespace ($ns): the installed configuration cannot be checked"
else
	if out=$(check_config 2>&1); then
		echo "$out" | grep -q 'models from /var/lib/ebmd/models' ||
			fail "check-config on the installed config: $out"
		echo "check-config, empty models directory: ok"
	else
		fail "ebmd --check-config on the installed config failed: $out"
	fi
	cp "$src/models/demo.ebm" "$root/var/lib/ebmd/models/"
	if out=$(check_config 2>/dev/null); then
		echo "$out" | grep -q '^model demo version' ||
			fail "check-config does not list the model copied in: $out"
		echo "check-config, one model: $(echo "$out" | grep '^model')"
	else
		fail "ebmd --check-config with a model in /var/lib/ebmd/models failed"
	fi
	# A broken configuration is refused by the installed binary too.
	echo "no_such_key = 1" >>"$conf"
	if check_config >/dev/null 2>&1; then
		fail "check-config accepted an unknown key"
	fi
fi

if command -v lintian >/dev/null 2>&1; then
	lintian --fail-on error,warning "$deb" || fail "lintian reports errors or warnings"
else
	echo "lintian not installed: not run"
fi

if [ "$failures" -gt 0 ]; then
	echo "$failures problems"
	exit 1
fi
echo "package ok"
rm -rf "$work"
