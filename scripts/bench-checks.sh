#!/usr/bin/env bash
# Reproduce the "gRPC API: checks over the network" figures of docs/BENCHMARKS.md in one command.
#
# Sets up a one-validator devnet in a temporary directory, registers a dataset and issues one
# grant (so the bench question is ALLOWed by a real grant, answered from the node's in-memory
# CheckIndex at the latest height), runs `gongzhi bench checks` at each concurrency, prints the
# load average before each run, then stops the node and deletes the directory.
#
# Usage: scripts/bench-checks.sh [extra `gongzhi bench checks` arguments…]
# Environment:
#   GONGZHI       the binary (default: $CARGO_TARGET_DIR/release/gongzhi, else target/release/gongzhi)
#   CONCURRENCY   space-separated concurrencies to run (default: "16 24 32")
#   DURATION      measured duration of each run (default: 15s)
#   KEEP=1        keep the devnet directory (its path is printed)
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
gongzhi="${GONGZHI:-${CARGO_TARGET_DIR:-$here/target}/release/gongzhi}"
concurrency="${CONCURRENCY:-16 24 32}"
duration="${DURATION:-15s}"
[[ -x "$gongzhi" ]] || {
    echo "no gongzhi binary at $gongzhi: build with cargo build --release --locked --workspace, or set GONGZHI" >&2
    exit 1
}

dir="$(mktemp -d "${TMPDIR:-/tmp}/gongzhi-bench-checks.XXXXXX")"
node_pid=""
cleanup() {
    if [[ -n "$node_pid" ]] && kill -0 "$node_pid" 2>/dev/null; then
        kill "$node_pid" 2>/dev/null || true
        wait "$node_pid" 2>/dev/null || true
    fi
    if [[ "${KEEP:-0}" == 1 ]]; then
        echo "devnet kept in $dir"
    else
        rm -rf "$dir"
    fi
}
trap cleanup EXIT INT TERM

# Create the devnet (keys, genesis, node home). `devnet up` also starts the node for a moment
# and begins seeding the demo district; we only keep the files it made, and the bench uses a
# dataset of its own so that whatever the story got to does not matter.
"$gongzhi" devnet up --validators 1 --dir "$dir/net" --fresh --duration-secs 1 \
    >"$dir/devnet-up.log" 2>&1 || true
home="$dir/net/node0"
[[ -f "$home/config.toml" ]] || {
    cat "$dir/devnet-up.log" >&2
    echo "devnet up made no node home" >&2
    exit 1
}
addr="$(sed -n '/^\[rpc\]/,/^\[/s/^listen = "\(.*\)"/\1/p' "$home/config.toml")"
owner_key="$dir/net/keys/yuetan-street/operator.key"

"$gongzhi" start --home "$home" >"$dir/node.log" 2>&1 &
node_pid=$!
for _ in $(seq 1 100); do
    "$gongzhi" query --node "$addr" status >/dev/null 2>&1 && break
    kill -0 "$node_pid" 2>/dev/null || {
        cat "$dir/node.log" >&2
        exit 1
    }
    sleep 0.2
done

dataset=bench-checks-roll
"$gongzhi" tx --key "$owner_key" --node "$addr" register-dataset --id "$dataset" \
    --name 'Elderly-care subsidy roll (养老补贴)' \
    --field age:internal --field subsidy_level:sensitive --field street:public >/dev/null
"$gongzhi" tx --key "$owner_key" --node "$addr" issue-grant --grantee health-commission \
    --dataset "$dataset" --fields age,street --purposes elderly-care --until +1d >/dev/null

echo "node $addr (pid $node_pid), $(nproc) cores, $("$gongzhi" --version)"
for c in $concurrency; do
    echo
    echo "== concurrency $c; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    "$gongzhi" bench checks --node "$addr" --dataset "$dataset" --concurrency "$c" \
        --duration "$duration" "$@"
    echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
done
