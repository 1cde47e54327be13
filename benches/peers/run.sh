#!/usr/bin/env bash
# Runs the Keras-on-JAX peer benchmark in its own virtual environment, made once
# (and remade when requirements.txt changes). Arguments go to keras_jax.py:
#   benches/peers/run.sh --networks roll,article,composer --seconds 10 --json
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${CADENZA_PEERS_VENV:-$HOME/.cache/cadenza/peers-venv}"
stamp="$venv/.cadenza-requirements.txt"

if [[ ! -x "$venv/bin/python" ]]; then
    echo "peers: creating $venv" >&2
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
fi

# The stamp is the requirements file the venv was last installed from; written
# only after pip succeeds, so an interrupted install is retried next time.
if ! cmp -s "$here/requirements.txt" "$stamp"; then
    echo "peers: installing $here/requirements.txt" >&2
    "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
    "$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt" >&2
    cp "$here/requirements.txt" "$stamp"
fi

exec "$venv/bin/python" "$here/keras_jax.py" "$@"
