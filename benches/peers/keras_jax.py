#!/usr/bin/env python3
"""Peer benchmark: Keras 3 on JAX (CPU) training throughput for Cadenza's networks.

Builds the three networks Cadenza trains (the roll LSTM, the article's network and
the composer with its NADE output), checks their parameter counts against Cadenza's,
and times training at batch 32 with Adam(1e-3) on synthetic 0/1 data. Throughput
does not depend on the values, only on the shapes, so the data is random (fixed
seed) rather than read from a corpus.

Each network is timed two ways, and the faster is reported:
  * train_on_batch: one call per pre-made numpy batch. Keras syncs the weights and
    the loss back to the host after every call.
  * fit: model.fit(epochs=1, shuffle=False) over an in-memory array of many
    batches, repeated until the time is up. Same jitted train step, but the state
    stays on the device between steps.

Figures are only comparable with `cadenza bench model` when both run on the same
machine in the same session (see README.md beside this file).
"""

import os

# Both must be set before jax or keras is imported. The CPU unless the caller
# names another platform (JAX_PLATFORMS=cuda for the GPU figures).
os.environ["KERAS_BACKEND"] = "jax"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse
import json
import platform
import sys
import time

import jax
import jaxlib
import keras
import numpy as np
from keras import layers, ops

BATCH = 32
PITCHES = 106  # roll rows
STEPS = 64  # steps per training stretch (roll LSTM, composer)
WINDOW = 9  # the article's input window
METER = 14  # composer's metre features
GAP = 13  # composer's gap features: [has a gap, 12 distance buckets]
PROFILE = 12 + 24  # composer's pitch-class profile and key weights
ROLL_DENSITY = 0.04  # share of cells on in a typical roll
SEED = 0

# Weight of each gap-distance bucket in the composer's `near` feature.
NEAR = [1, 1 / 2, 1 / 3, 1 / 4, 1 / 5, 1 / 7, 1 / 10, 1 / 14, 1 / 20, 1 / 28, 1 / 40, 1 / 64]

# Largest in-memory array prepared for fit, so the small article batches get many
# steps per fit call (amortising its setup) without the big ones using much memory.
FIT_ARRAY_BYTES = 256 * 2**20
FIT_MIN_BATCHES = 4


def log(message):
    """Progress goes to stderr so that --json output stays one clean object."""
    print(message, file=sys.stderr, flush=True)


def roll(rng, shape):
    return (rng.random(shape) < ROLL_DENSITY).astype(np.float32)


# --- networks -------------------------------------------------------------------


def build_roll():
    """The roll LSTM: each step's notes predict the next step's, at every step."""
    x = keras.Input((STEPS, PITCHES), name="roll")
    h = layers.LSTM(256, return_sequences=True)(x)
    h = layers.Dropout(0.2)(h)
    logits = layers.Dense(PITCHES)(h)
    model = keras.Model(x, logits, name="roll_lstm")
    return model, keras.losses.BinaryCrossentropy(from_logits=True)


def batch_roll(rng):
    # One stretch one step longer than the input: the targets are the next steps.
    r = roll(rng, (BATCH, STEPS + 1, PITCHES))
    return r[:, :-1], r[:, 1:]


def build_article():
    """The article's network: 9-step window -> the next step."""
    x = keras.Input((WINDOW, PITCHES), name="window")
    h = layers.Conv1D(128, 1, activation="relu")(x)
    h = layers.MaxPooling1D(2)(h)
    h = layers.Conv1D(128, 1, activation="relu")(h)
    h = layers.MaxPooling1D(2)(h)
    h = layers.Conv1D(128, 1, activation="relu")(h)
    h = layers.MaxPooling1D(2)(h)
    h = layers.Conv1D(128, 1, activation="relu")(h)  # 9 -> 4 -> 2 -> 1 steps
    h = layers.Flatten()(h)
    h = layers.Reshape((1, 128))(h)
    h = layers.LSTM(128, return_sequences=True)(h)
    h = layers.LSTM(64)(h)
    h = layers.BatchNormalization(momentum=0.99, epsilon=1e-3)(h)
    y = layers.Dense(PITCHES, activation="sigmoid")(h)
    model = keras.Model(x, y, name="article")
    return model, keras.losses.MeanSquaredError()


def batch_article(rng):
    return roll(rng, (BATCH, WINDOW, PITCHES)), roll(rng, (BATCH, PITCHES))


class NadeOutput(layers.Layer):
    """NADE over the pitches of each step, lowest first, teacher-forced.

    Pitch p's hidden units see the context (through c) plus the true notes of the
    pitches below it: an exclusive cumulative sum over the pitch axis of
    targets * W. Computed for all (batch, step, pitch) at once, which is the
    (32, 64, 106, 128) tensor that dominates this network's cost.
    """

    def __init__(self, hidden, **kwargs):
        super().__init__(**kwargs)
        self.hidden = hidden

    def build(self, input_shape):
        pitches = input_shape[0][-1]
        self.w = self.add_weight(
            shape=(pitches, self.hidden), initializer="glorot_uniform", name="W"
        )
        self.v = self.add_weight(
            shape=(pitches, self.hidden), initializer="glorot_uniform", name="V"
        )

    def call(self, inputs):
        targets, b, c = inputs
        added = targets[..., :, None] * self.w  # (batch, time, pitch, hidden)
        below = ops.cumsum(added, axis=-2) - added  # only the pitches below
        hidden = ops.sigmoid(below + c[..., None, :])
        return ops.sum(hidden * self.v, axis=-1) + b

    def compute_output_shape(self, input_shape):
        return input_shape[0]


def nade_loss(targets, logits):
    """Per step: the sum over pitches of the binary cross-entropy. Keras's default
    reduction then takes the mean over (batch, time)."""
    return ops.sum(ops.binary_crossentropy(targets, logits, from_logits=True), axis=-1)


def build_composer():
    """The composer: past (LSTM over what came before), future (LSTM run backwards
    over the targets, read where the gap after each step ends) -> NADE output."""
    previous = keras.Input((STEPS, PITCHES), name="previous")
    meter = keras.Input((STEPS, METER), name="meter")
    targets = keras.Input((STEPS, PITCHES), name="targets")
    gap = keras.Input((STEPS, GAP), name="gap")
    gap_end = keras.Input((STEPS,), dtype="int32", name="gap_end")
    # The pitch-class profile and the key weights: data, computed before the network
    # in Cadenza too.
    profile = keras.Input((STEPS, PROFILE), name="profile")

    past = layers.LSTM(256, return_sequences=True)(layers.Concatenate()([previous, meter]))
    ahead = ops.flip(layers.Concatenate()([targets, meter]), axis=1)
    future = ops.flip(layers.LSTM(128, return_sequences=True)(ahead), axis=1)

    has_after = gap[..., 0:1]
    at = ops.expand_dims(gap_end, -1)  # broadcast over the feature axis
    future_at = ops.take_along_axis(future, at, axis=1) * has_after
    first_after = ops.take_along_axis(targets, at, axis=1) * has_after

    past_d = layers.Dropout(0.2)(past)
    future_d = layers.Dropout(0.2)(future_at)
    nearness = ops.sum(gap[..., 1:] * ops.convert_to_tensor(NEAR, "float32"), axis=-1, keepdims=True)
    near = first_after * nearness

    context = layers.Concatenate()([past_d, future_d, first_after, gap, meter, near, profile])
    b = layers.Dense(PITCHES)(context)
    c = layers.Dense(128)(context)
    logits = NadeOutput(128)([targets, b, c])
    inputs = [previous, meter, targets, gap, gap_end, profile]
    return keras.Model(inputs, logits, name="composer"), nade_loss


def batch_composer(rng):
    r = roll(rng, (BATCH, STEPS + 1, PITCHES))
    previous, targets = r[:, :-1], r[:, 1:]
    meter = (rng.random((BATCH, STEPS, METER)) < 0.3).astype(np.float32)

    # Half the rows have no gap (features all zero, gap_end = the step itself); the
    # others a gap at every step ending 1..32 steps later, in a random bucket.
    t = np.arange(STEPS, dtype=np.int32)
    gap = np.zeros((BATCH, STEPS, GAP), np.float32)
    gap_end = np.broadcast_to(t, (BATCH, STEPS)).copy()
    rows = rng.permutation(BATCH)[: BATCH // 2]
    gap[rows, :, 0] = 1.0
    bucket = rng.integers(0, GAP - 1, size=(len(rows), STEPS))
    gap[rows[:, None], t[None, :], 1 + bucket] = 1.0
    gap_end[rows] = np.minimum(t + rng.integers(1, 33, size=(len(rows), STEPS)), STEPS - 1)

    shares = rng.random((BATCH, STEPS, PROFILE), dtype=np.float32)
    x = {
        "previous": previous,
        "meter": meter,
        "targets": targets,
        "gap": gap,
        "gap_end": gap_end,
        "profile": shares,
    }
    return x, targets


# name: (builder, batch maker, expected parameters, unit, units per batch)
NETWORKS = {
    "roll": (build_roll, batch_roll, 398_954, "predicted steps", BATCH * STEPS),
    "article": (build_article, batch_article, 251_370, "windows", BATCH),
    "composer": (build_composer, batch_composer, 695_112, "predicted steps", BATCH * STEPS),
}


# --- timing ---------------------------------------------------------------------


def nbytes(tree):
    return sum(a.nbytes for a in jax.tree_util.tree_leaves(tree))


def stack(batches, count):
    """`count` batches cycled from `batches`, as one array (or dict of arrays)."""
    picked = [batches[i % len(batches)] for i in range(count)]
    return jax.tree_util.tree_map(lambda *parts: np.concatenate(parts), *picked)


def time_train_on_batch(model, batches, warmup, seconds):
    start = time.perf_counter()
    model.train_on_batch(*batches[0])  # traces and compiles the train step
    first = time.perf_counter() - start
    for i in range(1, warmup):
        model.train_on_batch(*batches[i % len(batches)])

    count = 0
    start = time.perf_counter()
    while True:
        # train_on_batch returns the loss as a Python float: every call is synced.
        model.train_on_batch(*batches[count % len(batches)])
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return {"batches": count, "seconds": elapsed, "first_call_s": first}


def time_fit(model, batches, warmup, seconds, per_call):
    x, y = stack(batches, per_call)

    # fit feeds the step its data in another structure than train_on_batch does,
    # so its first call traces and compiles once more; that call also runs the
    # warm-up batches, and its time (first_call_s) covers both.
    head = lambda a: a[: max(warmup, 1) * BATCH]
    start = time.perf_counter()
    model.fit(jax.tree_util.tree_map(head, x), head(y), batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    first = time.perf_counter() - start

    count = 0
    start = time.perf_counter()
    while True:
        model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
        count += per_call
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return {"batches": count, "seconds": elapsed, "first_call_s": first, "batches_per_call": per_call}


def bench(name, seconds, warmup):
    builder, make_batch, expected, unit, per_batch = NETWORKS[name]
    keras.utils.set_random_seed(SEED)
    rng = np.random.default_rng(SEED)

    model, loss = builder()
    params = model.count_params()
    assert params == expected, f"{name}: {params:,} parameters, Cadenza's has {expected:,}"
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, jit_compile=True)

    # A few distinct batches, cycled: enough that no step sees the same data twice
    # in a row, few enough to stay small.
    batches = [make_batch(rng) for _ in range(4)]

    log(f"{name}: train_on_batch ...")
    methods = {"train_on_batch": time_train_on_batch(model, batches, warmup, seconds)}

    # Size the fit array for about half the time per call (so at least two calls
    # are averaged), within the memory cap.
    tob = methods["train_on_batch"]
    wanted = int(tob["batches"] / tob["seconds"] * seconds / 2)
    cap = FIT_ARRAY_BYTES // nbytes(batches[0])
    per_call = max(FIT_MIN_BATCHES, min(wanted, cap))
    log(f"{name}: fit ({per_call} batches a call) ...")
    methods["fit"] = time_fit(model, batches, warmup, seconds, per_call)

    for m in methods.values():
        m["units_per_s"] = m["batches"] * per_batch / m["seconds"]
    best = max(methods, key=lambda k: methods[k]["units_per_s"])
    return {
        "network": name,
        "parameters": params,
        "unit": f"{unit}/s",
        "units_per_batch": per_batch,
        "batch_size": BATCH,
        "method": best,
        "units_per_s": methods[best]["units_per_s"],
        "seconds": methods[best]["seconds"],
        "batches": methods[best]["batches"],
        "methods": methods,
    }


def environment():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "backend": keras.backend.backend(),
        "devices": [str(d) for d in jax.devices()],
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu,
    }


def print_table(report):
    env = report["environment"]
    print(
        f"Keras {env['keras']} on JAX {env['jax']} (jaxlib {env['jaxlib']}), numpy {env['numpy']}, "
        f"Python {env['python']}; {env['cpu_count']} CPUs, {env['cpu_model']}"
    )
    print(f"training, batch {BATCH}, Adam(1e-3), float32, jit_compile=True")
    print()
    header = f"{'network':<9} {'params':>9} {'units/s':>10}  {'unit':<18} {'method':<15} {'batches':>7} {'seconds':>7}  other method / first call (compile)"
    print(header)
    for r in report["networks"]:
        other = next(k for k in r["methods"] if k != r["method"])
        o = r["methods"][other]
        firsts = ", ".join(f"{k} {m['first_call_s']:.1f} s" for k, m in r["methods"].items())
        print(
            f"{r['network']:<9} {r['parameters']:>9,} {r['units_per_s']:>10,.0f}  {r['unit']:<18} "
            f"{r['method']:<15} {r['batches']:>7} {r['seconds']:>7.1f}  "
            f"{other} {o['units_per_s']:,.0f}; {firsts}"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", default=",".join(NETWORKS), help="comma-separated: " + ", ".join(NETWORKS))
    parser.add_argument("--seconds", type=float, default=10.0, help="minimum timed seconds per network and method")
    parser.add_argument("--batches-warmup", type=int, default=3, help="untimed batches first (the first compiles)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()

    names = [n.strip() for n in args.networks.split(",") if n.strip()]
    unknown = [n for n in names if n not in NETWORKS]
    if unknown or not names:
        parser.error(f"unknown network(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(NETWORKS)}")
    if args.seconds <= 0 or args.batches_warmup < 1:
        parser.error("--seconds must be > 0 and --batches-warmup >= 1")

    report = {
        "peer": "keras-jax",
        "environment": environment(),
        "settings": {"seconds": args.seconds, "batches_warmup": args.batches_warmup, "seed": SEED},
        "networks": [bench(n, args.seconds, args.batches_warmup) for n in names],
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)


if __name__ == "__main__":
    main()
