#!/usr/bin/env bash
# Lays out posagent in a root file system (make install):
#
#   DESTDIR=/path/to/rootfs PREFIX=/usr scripts/install.sh [POSAGENT_BIN POSCTL_BIN]
#
#   $PREFIX/bin/posagent, $PREFIX/bin/posctl         0755
#   /etc/posagent/posagent.yaml                      0640 (kept if present)
#   /lib/systemd/system/posagent.service             0644
#   $PREFIX/lib/sysusers.d/posagent.conf             0644 (the service user)
#   /etc/init.d/posagent                             0755 (busybox/sysvinit)
#   /var/lib/posagent                                0700 (the state dir)
#
# The binaries default to bin/posagent and bin/posctl (make build); a firmware
# image passes the cross builds (make install ARCH=armv7). Nothing is chowned:
# a firmware build runs unprivileged, and the owners are root except the state
# dir, which systemd (StateDirectory) hands to the service user at start.
set -euo pipefail
cd "$(dirname "$0")/.."
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr}
posagent=${1:-bin/posagent}
posctl=${2:-bin/posctl}
pkg=scripts/packaging

if [ -z "$DESTDIR" ] && [ "$(id -u)" != 0 ]; then
	echo "install: installing into / needs root (or set DESTDIR)" >&2
	exit 1
fi
for f in "$posagent" "$posctl"; do
	[ -x "$f" ] || { echo "install: $f missing (make build, or make cross for ARCH=)" >&2; exit 1; }
done

install -D -m 0755 "$posagent" "$DESTDIR$PREFIX/bin/posagent"
install -D -m 0755 "$posctl" "$DESTDIR$PREFIX/bin/posctl"

# The unit and the init script name the binary by its installed path.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s|/usr/bin/posagent|$PREFIX/bin/posagent|g" "$pkg/posagent.service" >"$tmp/posagent.service"
sed "s|/usr/bin/posagent|$PREFIX/bin/posagent|g" "$pkg/posagent.init" >"$tmp/posagent.init"
install -D -m 0644 "$tmp/posagent.service" "$DESTDIR/lib/systemd/system/posagent.service"
install -D -m 0755 "$tmp/posagent.init" "$DESTDIR/etc/init.d/posagent"
install -D -m 0644 "$pkg/posagent.sysusers" "$DESTDIR$PREFIX/lib/sysusers.d/posagent.conf"

# The config is the terminal's own (identity, broker password): an upgrade
# never overwrites it; the shipped default lands beside it instead.
install -d -m 0755 "$DESTDIR/etc/posagent"
conf=$DESTDIR/etc/posagent/posagent.yaml
if [ -e "$conf" ]; then
	install -m 0640 "$pkg/posagent.yaml" "$conf.dist"
	echo "install: kept $conf; the shipped default is $conf.dist"
else
	install -m 0640 "$pkg/posagent.yaml" "$conf"
fi

install -d -m 0755 "$DESTDIR/var/lib"
install -d -m 0700 "$DESTDIR/var/lib/posagent"
# install -d leaves an existing dir's mode alone: the state dir must be 0700.
chmod 0700 "$DESTDIR/var/lib/posagent"
echo "install: posagent in ${DESTDIR:-/} (prefix $PREFIX)"
