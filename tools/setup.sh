#!/usr/bin/env bash
# Prepares a fresh Debian 12 machine (as root) to build, test and benchmark cnm.
# Installs the kernel tools, the comparison peers, then the workspace with pnpm fetched by npx.
set -euo pipefail
cd "$(dirname "$0")/.."
PNPM="npx -y pnpm@10.34.9"
pkgs=(iproute2 iptables nftables dnsutils iputils-ping procps kmod conntrack netcat-openbsd
  python3 make g++ containernetworking-plugins netavark aardvark-dns dnsperf)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
$PNPM install --frozen-lockfile
$PNPM build
