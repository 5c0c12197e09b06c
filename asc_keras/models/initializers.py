"""Seeded initial weights: every layer's random start depends on the run's seed and its name only.

A layer's initializer (and a Dropout layer's mask stream) is seeded with `layer_seed(seed, name)`,
a stable hash of the run's seed and the layer name; no global random state is read. Layer names
start with the part they belong to (`logmel_band2_block1_conv1`, `cqt_fc1`), and a part built
alone has the same layer names as inside a joint model, so:

- two parts of one model (SPSMR members, SPSMF bands) start from different weights, as the
  authors' independently initialized modules do;
- one part under one seed starts from bit-identical weights whether it is trained alone
  (a separate run) or inside the joint model;
- building a model twice with the same seed gives the same weights.

Kernels are He-uniform (PyTorch's `kaiming_uniform_`, a=0, fan_in: U(-sqrt(6 / fan_in),
sqrt(6 / fan_in))), biases zero (Keras's default).
"""

from __future__ import annotations

import hashlib

import keras


def layer_seed(seed: int, name: str) -> int:
    """A stable 31-bit seed for layer `name` of a run seeded with `seed` (same on every machine)."""
    digest = hashlib.sha256(f"{int(seed)}:{name}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def kernel_initializer(seed: int, name: str) -> keras.initializers.Initializer:
    """He-uniform initializer of the kernel of layer `name`."""
    return keras.initializers.HeUniform(seed=layer_seed(seed, name))


def dropout(rate: float, *, seed: int, name: str) -> keras.layers.Dropout:
    """A Dropout layer named `name` whose masks are seeded from `(seed, name)`."""
    return keras.layers.Dropout(rate, seed=layer_seed(seed, name), name=name)
