#!/usr/bin/env bash
# Scans a running Tocsin node's TLS from outside with sslyze (from PyPI),
# and checks: TLS 1.3 only, a client certificate required, nothing weak
# offered. Exits non-zero if any check fails.
#
#   deploy/tls-scan.sh [path/to/tocsin]     (default: builds the release binary)
#
# It makes a throw-away PKI, starts one node on a free loopback port, scans
# it twice (without a client certificate, then with an operator's), stops
# the node, and prints each check. The JSON reports stay in the work
# directory it names. The result is recorded in docs/tls-scan.md.
set -euo pipefail
cd "$(dirname "$0")/.."

tocsin=${1:-}
if [[ -z "$tocsin" ]]; then
    echo "== building tocsin (release)"
    cargo build --release --locked -p tocsin-cli >/dev/null
    tocsin=target/release/tocsin
fi
tocsin=$(realpath "$tocsin")

venv=${TOCSIN_SCAN_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/tocsin/sslyze-venv}
if [[ ! -x "$venv/bin/sslyze" ]]; then
    echo "== installing sslyze into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet sslyze
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/tocsin-tls-scan.XXXXXX")
node_pid=
cleanup() {
    if [[ -n "$node_pid" ]]; then
        kill "$node_pid" 2>/dev/null || true
        wait "$node_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed "s/127.0.0.1:7101/127.0.0.1:$port/" deploy/examples/two-agencies.toml >"$work/federation.toml"
"$tocsin" pki init --federation "$work/federation.toml" --out "$work/pki" >/dev/null
"$tocsin" pki issue-operator --dir "$work/pki" --agency TR-MIT --name scanner >/dev/null
"$tocsin" node --config "$work/pki/agencies/TR-MIT/node.toml" >"$work/node.log" 2>&1 &
node_pid=$!
for _ in $(seq 1 100); do
    if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then
        break
    fi
    sleep 0.1
done

echo "== scanning TR-MIT's node at 127.0.0.1:$port (work directory $work)"
"$venv/bin/sslyze" --json_out "$work/anonymous.json" "127.0.0.1:$port" >"$work/anonymous.txt" 2>&1 || true
"$venv/bin/sslyze" --cert "$work/pki/operators/TR-MIT/scanner.crt" \
    --key "$work/pki/operators/TR-MIT/scanner.key" \
    --json_out "$work/operator.json" "127.0.0.1:$port" >"$work/operator.txt" 2>&1 || true

python3 - "$work/anonymous.json" "$work/operator.json" <<'PY'
import json
import sys

def load(path):
    with open(path) as f:
        return json.load(f)["server_scan_results"][0]

anonymous, scanned = load(sys.argv[1]), load(sys.argv[2])
results = scanned["scan_result"]
failures = 0

def check(ok, what, detail=""):
    global failures
    failures += not ok
    print(f"  {'ok  ' if ok else 'FAIL'} {what}" + (f": {detail}" if detail else ""))

def accepted(name):
    r = results[name]
    if r["status"] != "COMPLETED":
        return None
    return [s["cipher_suite"]["name"] for s in r["result"]["accepted_cipher_suites"]]

required = anonymous["connectivity_result"]["client_auth_requirement"]
check(required == "REQUIRED", "client certificate required", required)
check(scanned["connectivity_status"] == "COMPLETED", "scan with an operator certificate completed")
for name, shown in [("ssl_2_0", "SSL 2.0"), ("ssl_3_0", "SSL 3.0"), ("tls_1_0", "TLS 1.0"),
                    ("tls_1_1", "TLS 1.1"), ("tls_1_2", "TLS 1.2")]:
    suites = accepted(f"{name}_cipher_suites")
    check(suites == [], f"{shown} not offered", ", ".join(suites or []) or "none accepted")
tls13 = accepted("tls_1_3_cipher_suites") or []
strong = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
check(bool(tls13) and set(tls13) <= strong, "TLS 1.3 with AEAD suites only", ", ".join(tls13))
check(not results["tls_compression"]["result"]["supports_compression"], "no TLS compression")
check(not results["heartbleed"]["result"]["is_vulnerable_to_heartbleed"], "not vulnerable to Heartbleed")
check(not results["openssl_ccs_injection"]["result"]["is_vulnerable_to_ccs_injection"], "not vulnerable to CCS injection")
early = results["tls_1_3_early_data"]
check(early["status"] != "COMPLETED" or not early["result"]["supports_early_data"], "no 0-RTT early data")
curves = results["elliptic_curves"]["result"]
names = [c["name"] for c in curves["supported_curves"]]
weak = [n for n in names if n not in ("X25519", "prime256v1", "secp256r1", "secp384r1")]
check(not weak, "key exchange groups", ", ".join(names))
print("tls scan:", "FAILED" if failures else "passed", f"({failures} failing)")
sys.exit(1 if failures else 0)
PY
