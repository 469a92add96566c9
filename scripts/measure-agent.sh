#!/usr/bin/env bash
# Measures the real agent's footprint (the figures in docs/install.md "Sizing"): peak RSS and CPU
# time for the initial sync and for a one-pod change, on a generated cluster.
#
#   sudo scripts/measure-agent.sh [PODS POLICIES [NODE]]        (default 10000 2000 node-3)
#
# The agent runs with --manifests inside a throwaway network namespace, so nft applies only there;
# the namespace, the agent and the temp dir are removed on exit (also on failure or Ctrl-C).
# Needs root, ip, nft, python3, curl and a release build (cargo build --release -p policyc).
set -euo pipefail

PODS=${1:-10000}
POLICIES=${2:-2000}
NODE=${3:-node-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
POLICYC=${POLICYC:-$ROOT/target/release/policyc}
PORT=19750
NS=policyc-measure-$$
WORK=$(mktemp -d)
AGENT=

cleanup() {
    [ -n "$AGENT" ] && kill "$AGENT" 2>/dev/null && wait "$AGENT" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

for tool in ip nft python3 curl /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
[ -x "$POLICYC" ] || { echo "no $POLICYC: cargo build --release -p policyc" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root (network namespace, nft)" >&2; exit 1; }

python3 "$ROOT/scripts/gen-cluster.py" "$WORK/cluster" "$PODS" "$POLICIES"
# nft as the agent runs it, with its own peak RSS and CPU logged per call.
cat >"$WORK/nft" <<WRAP
#!/bin/sh
exec /usr/bin/time -a -o "$WORK/nft.log" -f '%M %U %S' nft "\$@"
WRAP
chmod +x "$WORK/nft"

ip netns add "$NS"
ip -n "$NS" link set lo up
in_ns() { ip netns exec "$NS" "$@"; }
metric() { in_ns curl -sf "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
ticks() { awk '{ print $14 + $15, $16 + $17 }' "/proc/$AGENT/stat"; } # self, reaped children
hwm() { awk '/^VmHWM/ { print $2 }' "/proc/$AGENT/status"; }
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$AGENT/status"; }
HZ=$(getconf CLK_TCK)
secs() { awk -v t="$1" -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }'; }
wait_applies() { # until policyc_applies_total >= $1
    for _ in $(seq 1 1200); do
        local n; n=$(metric policyc_applies_total 2>/dev/null || true)
        [ -n "$n" ] && [ "$n" -ge "$1" ] && return 0
        sleep 0.05
    done
    echo "timed out waiting for apply #$1" >&2; exit 1
}
nft_peak() { awk 'NF == 3 { if ($1 > m) m = $1 } END { print m + 0 }' "$WORK/nft.log"; }

start=$(date +%s.%N)
RUST_LOG=${RUST_LOG:-warn} ip netns exec "$NS" "$POLICYC" agent --manifests "$WORK/cluster" --node-name "$NODE" \
    --listen "127.0.0.1:$PORT" --nft "$WORK/nft" &
AGENT=$!
wait_applies 1
ready=$(date +%s.%N)
read -r self0 kids0 < <(ticks)
echo "cluster: $PODS pods, $POLICIES policies, 50 namespaces, 20 nodes; agent for $NODE"
echo "table: $(metric policyc_table_chains) chains, $(metric policyc_table_rules) rules, $(metric policyc_table_sets) sets, $(metric policyc_table_elements) elements"
echo "initial sync: $(awk -v a="$start" -v b="$ready" 'BEGIN { printf "%.2f", b - a }') s wall, agent CPU $(secs "$self0") s, nft CPU $(secs "$kids0") s"
echo "  agent peak RSS (VmHWM) $(hwm) KiB, RSS now $(rss) KiB; nft peak RSS $(nft_peak) KiB"

sleep 3 # idle: the 250 ms directory poll only
read -r self1 kids1 < <(ticks)
echo "idle 3 s: agent CPU $(secs $((self1 - self0))) s"

# One new pod on this node: the directory is re-read and one element delta applied.
cat >"$WORK/cluster/zz-one-more.yaml" <<POD
apiVersion: v1
kind: Pod
metadata: {name: one-more, namespace: ns-1, labels: {app: app1, tier: web}}
spec: {nodeName: $NODE, containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]}
status: {phase: Running, podIP: 10.244.250.1, podIPs: [{ip: 10.244.250.1}]}
POD
: >"$WORK/nft.log"
t0=$(date +%s.%N)
wait_applies 2
t1=$(date +%s.%N)
read -r self2 kids2 < <(ticks)
echo "one-pod change: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s wall (incl. the directory poll), agent CPU $(secs $((self2 - self1))) s, nft CPU $(secs $((kids2 - kids1))) s"
echo "  agent peak RSS (VmHWM) $(hwm) KiB, RSS now $(rss) KiB; nft peak RSS $(nft_peak) KiB"
echo "sync histogram: $(metric policyc_sync_duration_seconds_sum) s total over $(metric policyc_sync_duration_seconds_count) syncs"
