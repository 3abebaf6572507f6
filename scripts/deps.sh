#!/usr/bin/env bash
# Installs the Debian packages the tests and the firmware builds need, only
# those missing, so a second `make test` on the same machine does not touch
# apt at all.
#
#   scripts/deps.sh           everything `make test` needs
#   scripts/deps.sh cross     only the ARM cross toolchains and PC/SC for armhf/arm64
#   scripts/deps.sh demo      the CJK font for make demo's slip pictures (make demo runs
#                             without it, with text slips, and installs nothing)
set -euo pipefail
# Arch-qualified: once the armhf/arm64 instances are installed too, a bare
# `dpkg -s libpcsclite-dev` is "ambiguous" and would look missing every run.
arch=$(dpkg --print-architecture)
native=(mosquitto mosquitto-clients qemu-user pcscd "libpcsclite-dev:$arch" vsmartcard-vpcd pkg-config socat openssl
	fonts-wqy-microhei rabbitmq-server prometheus)
# make demo's optional CJK font, for its slip pictures.
demo=(fonts-wqy-microhei)
# cgo cross builds: ebfe/scard links libpcsclite, found through pkg-config in
# each architecture's multiarch directory.
cross=(gcc-arm-linux-gnueabihf gcc-aarch64-linux-gnu libc6-dev-armhf-cross libc6-dev-arm64-cross
	libpcsclite-dev:armhf libpcsclite-dev:arm64 qemu-user pkg-config)
case "${1:-all}" in
all) pkgs=("${native[@]}" "${cross[@]}") ;;
cross) pkgs=("${cross[@]}") ;;
demo) pkgs=("${demo[@]}") ;;
*) echo "usage: scripts/deps.sh [all|cross|demo]" >&2; exit 2 ;;
esac

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
missing=()
for p in "${pkgs[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	for arch in armhf arm64; do
		if printf '%s\n' "${missing[@]}" | grep -q ":$arch\$" && ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
			$sudo dpkg --add-architecture "$arch"
		fi
	done
	# A mirror caught mid-sync fails one index (seen here: bookworm-security
	# armhf "File has unexpected size"); apt then uses the others. Only the
	# install decides whether what we need is there.
	$sudo apt-get update -qq || echo "deps: apt-get update reported errors; trying the install anyway" >&2
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# mosquitto's package starts a system broker on 1883 where an init system runs,
# rabbitmq-server one on 5672 and prometheus one on 9090; the tests start their
# own on loopback ports (scripts/rabbitmq-cluster.sh) and need none.
echo "deps: ok (${pkgs[*]})"
