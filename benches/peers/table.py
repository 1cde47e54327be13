#!/usr/bin/env python3
"""Prints Cadenza's and the peer's training figures side by side, as Markdown.

    table.py CADENZA_JSON PEER_JSON

CADENZA_JSON is `cadenza bench model --json`, PEER_JSON `keras_jax.py --json`,
both from the same run on the same machine.
"""

import datetime
import json
import sys


def main():
    with open(sys.argv[1]) as f:
        ours = json.load(f)
    with open(sys.argv[2]) as f:
        peer = json.load(f)
    env = peer["environment"]
    theirs = {n["network"]: n for n in peer["networks"]}
    print(
        f"Measured {datetime.date.today()} on {env['cpu_count']} CPUs ({env['cpu_model']}); "
        f"peer: Keras {env['keras']} on JAX {env['jax']} ({', '.join(env['devices'])}), "
        f"its faster of train_on_batch and fit."
    )
    print()
    print("| network | unit | Cadenza | engine | Keras 3 + JAX | Cadenza / peer |")
    print("|---|---|---:|---|---:|---:|")
    for figure in ours["training"]:
        peer_figure = theirs.get(figure["network"])
        settings = f" ({figure['settings']})" if figure["settings"] else ""
        if peer_figure and not figure["settings"].startswith("its defaults"):
            peer_rate = f"{peer_figure['units_per_s']:,.0f}"
            ratio = f"{figure['per_s'] / peer_figure['units_per_s']:.2f}x"
        else:
            peer_rate, ratio = "", ""
        print(
            f"| {figure['network']}{settings} | {figure['unit']} | {figure['per_s']:,.0f} | "
            f"{figure['engine']} on {figure['device']} | {peer_rate} | {ratio} |"
        )


if __name__ == "__main__":
    main()
