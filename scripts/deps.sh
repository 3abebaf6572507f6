#!/usr/bin/env bash
# Installs the Debian packages the tests need, only those missing, so a second
# `make test` on the same machine does not touch apt at all.
set -euo pipefail
pkgs=(mosquitto mosquitto-clients qemu-user pcscd libpcsclite-dev vsmartcard-vpcd pkg-config)
missing=()
for p in "${pkgs[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# mosquitto's package starts a system broker on 1883 where an init system runs;
# the tests start their own on random loopback ports and need none.
echo "deps: ok (${pkgs[*]})"
