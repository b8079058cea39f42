#!/usr/bin/env bash
# A two-agency walk-through with real processes and real mutual TLS:
# TR-MIT warns FR-DGSI while FR-DGSI's node is down; the alert waits in
# TR-MIT's durable outbox and is delivered, with a signed receipt, once
# FR-DGSI starts; FR-DGSI acknowledges and TR-MIT sees it. Everything lives under one temporary directory (or DIR).
#
#   bash deploy/walkthrough.sh [DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$(mktemp -d -t tocsin-walkthrough.XXXXXX)}"
mkdir -p "$dir"

echo "== building tocsin"
cargo build --quiet --locked --release -p tocsin-cli --manifest-path "$root/Cargo.toml"
tocsin="$root/target/release/tocsin"

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tr_port=$(free_port); fr_port=$(free_port)
sed -e "s/127.0.0.1:7101/127.0.0.1:$tr_port/" -e "s/127.0.0.1:7102/127.0.0.1:$fr_port/" \
    "$root/deploy/examples/two-agencies.toml" > "$dir/federation.toml"
cd "$dir"

echo "== tocsin pki init (in $dir)"
"$tocsin" pki init --federation federation.toml --out pki
"$tocsin" pki issue-operator --dir pki --agency TR-MIT --name alice
"$tocsin" pki issue-operator --dir pki --agency FR-DGSI --name bob
alice=pki/operators/TR-MIT/alice.toml
bob=pki/operators/FR-DGSI/bob.toml

wait_ready() {
    for _ in $(seq 100); do
        "$tocsin" alerts list --operator "$1" --json >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "node for $1 did not come up" >&2; return 1
}

echo "== starting TR-MIT's node (FR-DGSI's stays down for now)"
"$tocsin" node --config pki/agencies/TR-MIT/node.toml 2> tr-mit.log & pids+=($!)
wait_ready "$alice"

echo "== TR-MIT warns FR-DGSI"
"$tocsin" alert send --operator "$alice" --to FR-DGSI --precedence PRIORITY --category terrorism \
    --person "Ismaël Omar Mostefaï" --dob 1985-11-21 --nationality FR \
    --text "Subject linked to a terrorist network; travel to Syria suspected." \
    --reliability B --credibility 2 --tlp AMBER
sleep 1
echo "== TR-MIT's outbox while FR-DGSI is down"
"$tocsin" alerts list --operator "$alice" --outbox

echo "== starting FR-DGSI's node"
"$tocsin" node --config pki/agencies/FR-DGSI/node.toml 2> fr-dgsi.log & pids+=($!)
wait_ready "$bob"
for _ in $(seq 150); do
    "$tocsin" alerts list --operator "$alice" --outbox | grep -q "1/1 delivered" && break
    sleep 0.1
done
echo "== TR-MIT's outbox: delivered, with FR-DGSI's signed receipt"
"$tocsin" alerts list --operator "$alice" --outbox
echo "== FR-DGSI's inbox, and what it owes"
"$tocsin" alerts list --operator "$bob" --inbox
"$tocsin" alerts list --operator "$bob" --owed --json > owed.json
id=$(python3 -c 'import json; print(json.load(open("owed.json"))[0]["id"])')

echo "== FR-DGSI acknowledges"
"$tocsin" alert ack "$id" --operator "$bob" --disposition ACTIONED --note "Surveillance opened."
for _ in $(seq 100); do
    "$tocsin" alert show "$id" --operator "$alice" | grep -q "acknowledged ACTIONED" && break
    sleep 0.1
done
echo "== TR-MIT sees the signed acknowledgement"
"$tocsin" alert show "$id" --operator "$alice"
echo "== TR-MIT's event log"
timeout 2 "$tocsin" watch --from 0 --operator "$alice" || true
echo "== done; nodes stop now. Files and logs are in $dir"
