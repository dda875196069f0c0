#!/usr/bin/env bash
# peers.sh — the comparison runtimes' per-container attach, scripted the way their runtimes invoke
# them (the approach of shared/peer-bench/cni-bridge.sh and netavark.sh), for attach.bench.mjs.
#
#   cni       containernetworking-plugins: exec /usr/lib/cni/bridge (host-local IPAM, ipMasq) then
#             /usr/lib/cni/portmap with the bridge result as prevResult, CNI_* in the environment and
#             the config on stdin, as containerd/CRI-O/podman-3 do; one published port per container.
#   netavark  `netavark --config DIR setup /run/netns/X` with podman's JSON on stdin (static IPs
#             chosen by the caller, as podman's IPAM does), one published port per container.
#
# Usage (as root, inside the namespace that plays the host: attach.bench.mjs runs it under
# `ip netns exec HOSTNS`, so nothing here touches the machine's own namespace):
#   peers.sh cni|netavark TAG N
# Creates N container namespaces TAG-c<i> (not timed), attaches them one after another (timed),
# prints "STATE attached <iptables -A rules> <links>", detaches them all (timed), prints
# "SAMPLE attach|detach <microseconds>" per container, then removes everything it made: container
# namespaces, the bridge, IPAM/config directories. The host namespace itself (and its firewall)
# is deleted by the caller.
set -euo pipefail
TOOL=$1
TAG=$2
N=$3
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 2; }
CNI_BIN=${CNI_BIN:-/usr/lib/cni}
NETAVARK=${NETAVARK:-/usr/lib/podman/netavark}
WORK=$(mktemp -d -t cnmpeer.XXXXXX)
BRIDGE=pb${TAG: -6}
NS=$TAG-c
now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }
rules() { { iptables-save 2>/dev/null || true; } | grep -c '^-A' || true; }

ATTACHED=()
cleanup() {
  set +e
  for i in "${ATTACHED[@]}"; do detach "$i" >/dev/null 2>&1; done
  for i in $(seq 1 "$N"); do ip netns del "$NS$i" 2>/dev/null; done
  ip link del "$BRIDGE" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

case $TOOL in
cni)
  cat > "$WORK/bridge.json" <<EOF
{"cniVersion":"1.0.0","name":"$TAG","type":"bridge","bridge":"$BRIDGE","isGateway":true,"ipMasq":true,
 "hairpinMode":false,"ipam":{"type":"host-local","ranges":[[{"subnet":"10.231.0.0/16"}]],
 "routes":[{"dst":"0.0.0.0/0"}],"dataDir":"$WORK/ipam"}}
EOF
  cni() { CNI_COMMAND=$1 CNI_CONTAINERID=$TAG$3 CNI_NETNS=/var/run/netns/$NS$3 CNI_IFNAME=eth0 CNI_PATH=$CNI_BIN "$CNI_BIN/$2"; }
  portmap() { # portmap i [prevResult-file]
    local prev=""
    [ -n "${2:-}" ] && prev=",\"prevResult\":$(cat "$2")"
    printf '{"cniVersion":"1.0.0","name":"%s","type":"portmap","capabilities":{"portMappings":true},"runtimeConfig":{"portMappings":[{"hostPort":%d,"containerPort":80,"protocol":"tcp"}]}%s}' \
      "$TAG" $((20000 + $1)) "$prev"
  }
  attach() {
    cni ADD bridge "$1" < "$WORK/bridge.json" > "$WORK/res.$1"
    portmap "$1" "$WORK/res.$1" | cni ADD portmap "$1" > /dev/null
  }
  detach() {
    portmap "$1" | cni DEL portmap "$1" > /dev/null
    cni DEL bridge "$1" < "$WORK/bridge.json" > /dev/null
  }
  ;;
netavark)
  export NETAVARK_FW=iptables
  mkdir -p "$WORK/config"
  NETID=$(printf 'c%.0s' $(seq 1 64))
  opts() {
    local k=$(( $1 + 1 ))
    cat <<EOF
{"container_id":"$(printf '%064x' "$1")","container_name":"$TAG$1",
 "networks":{"$TAG":{"interface_name":"eth0","static_ips":["10.232.$((k / 256)).$((k % 256))"],"aliases":["$TAG$1"]}},
 "network_info":{"$TAG":{"name":"$TAG","id":"$NETID","driver":"bridge","network_interface":"$BRIDGE",
   "subnets":[{"subnet":"10.232.0.0/16","gateway":"10.232.0.1"}],"ipv6_enabled":false,"internal":false,
   "dns_enabled":false,"ipam_options":{"driver":"host-local"}}},
 "port_mappings":[{"host_ip":"","container_port":80,"host_port":$((21000 + $1)),"range":1,"protocol":"tcp"}]}
EOF
  }
  attach() { opts "$1" | "$NETAVARK" --config "$WORK/config" setup "/var/run/netns/$NS$1" > /dev/null; }
  detach() { opts "$1" | "$NETAVARK" --config "$WORK/config" teardown "/var/run/netns/$NS$1" > /dev/null; }
  ;;
*) echo "unknown tool $TOOL" >&2; exit 2 ;;
esac

for i in $(seq 1 "$N"); do ip netns add "$NS$i"; done
R0=$(rules)
for i in $(seq 1 "$N"); do
  t0=$(now_us)
  attach "$i"
  t1=$(now_us)
  ATTACHED+=("$i")
  echo "SAMPLE attach $((t1 - t0))"
done
echo "STATE before $R0 $(ip -o link | wc -l)"
echo "STATE attached $(rules) $(ip -o link | wc -l)"
for i in $(seq 1 "$N"); do
  t0=$(now_us)
  detach "$i"
  t1=$(now_us)
  echo "SAMPLE detach $((t1 - t0))"
done
ATTACHED=()
