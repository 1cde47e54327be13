#!/usr/bin/env bash
# Cadenza's training throughput and Keras 3 on JAX's, measured one after the
# other in the same run on this machine, printed as the README's table.
#   benches/peers/compare.sh [DATA_DIR]      (default: ../shared/corpus)
# The JSON of both runs is kept in $CADENZA_PEERS_OUT (default: a new
# temporary folder, printed at the end).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
data="${1:-$repo/../shared/corpus}"
out="${CADENZA_PEERS_OUT:-$(mktemp -d)}"
mkdir -p "$out"

cd "$repo"
. .ci/env
cargo build --release --locked >&2
echo "compare: cadenza bench model (training on $data) ..." >&2
"$CARGO_TARGET_DIR/release/cadenza" bench model --data "$data" --json >"$out/cadenza.json"
echo "compare: Keras 3 + JAX ..." >&2
"$here/run.sh" --json --seconds "${CADENZA_PEERS_SECONDS:-10}" >"$out/peer.json"
python3 "$here/table.py" "$out/cadenza.json" "$out/peer.json"
echo "compare: figures kept in $out" >&2
