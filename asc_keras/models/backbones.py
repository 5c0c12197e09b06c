"""The two CNNs of the paper (Table 1) as tables walked by tiny block builders.

A backbone is a tuple of conv blocks `(filters, kernel, convs, pool)`: `convs` times
[Conv kxk without bias, BatchNorm, ReLU], then `AveragePooling2D(pool)` unless `pool` is None.
Pool sizes are `(time, freq)`: the paper's "4 x 2" pools 4 frames and 2 bins.

    1A, input [batch, 862, 40, 1]:
      block1 2x Conv3x3@64   -> [b, 862, 40, 64]   pool (4, 2) -> [b, 215, 20, 64]
      block2 2x Conv3x3@128  -> [b, 215, 20, 128]  pool (4, 2) -> [b, 53, 10, 128]
      block3 2x Conv3x3@256  -> [b, 53, 10, 256]   pool (2, 2) -> [b, 26, 5, 256]
      block4 2x Conv3x3@512  -> [b, 26, 5, 512]
      head: mean over freq [b, 26, 512], max over time [b, 512], Dense 512 + ReLU, Dropout,
            Dense 10 + softmax [b, 10]
    1B, input [batch, 862, 64, channels]:
      block1 Conv7x7@32 pool (4, 2), block2 Conv7x7@32 pool (4, 2), block3 Conv3x3@64 pool (2, 2),
      block4 Conv3x3@64 -> [b, 26, 8, 64]; head Dense 200 + ReLU, Dropout, Dense 3 + softmax

Layer names are `<prefix>_block<i>_conv<j>`, `_bn<j>`, `_relu<j>`, `_pool` (blocks from 1).
`width` scales the filters (and, in `heads`, the hidden units); 1.0 is the paper.

Framework defaults the paper leaves to PyTorch follow the authors' PyTorch code:
convolution and dense kernels He-uniform (`kaiming_uniform_`), biases zero, and
BatchNorm with PyTorch's momentum 0.1 (= Keras momentum 0.9) and epsilon 1e-5 (`Norm()`).
Every kernel is seeded from the run's `seed` and its layer name (`initializers`), so each part
of an ensemble starts from its own weights.
"""

from __future__ import annotations

from typing import NamedTuple

import keras

from asc_keras.models import initializers


class ConvBlock(NamedTuple):
    filters: int
    kernel: int
    convs: int
    pool: tuple[int, int] | None  # (time, freq)


class Norm(NamedTuple):
    """BatchNorm settings: Keras momentum (weight of the old moving average) and epsilon."""

    momentum: float = 0.9
    epsilon: float = 1e-5


PYTORCH_NORM = Norm()


class Backbone(NamedTuple):
    blocks: tuple[ConvBlock, ...]
    hidden_units: int  # the first fully connected layer of the head


BACKBONES: dict[str, Backbone] = {
    "1a": Backbone(
        blocks=(
            ConvBlock(64, 3, 2, (4, 2)),
            ConvBlock(128, 3, 2, (4, 2)),
            ConvBlock(256, 3, 2, (2, 2)),
            ConvBlock(512, 3, 2, None),
        ),
        hidden_units=512,
    ),
    "1b": Backbone(
        blocks=(
            ConvBlock(32, 7, 1, (4, 2)),
            ConvBlock(32, 7, 1, (4, 2)),
            ConvBlock(64, 3, 1, (2, 2)),
            ConvBlock(64, 3, 1, None),
        ),
        hidden_units=200,
    ),
}


def scaled(units: int, width: float) -> int:
    """`units * width`, rounded, at least 1."""
    return max(1, int(round(units * width)))


def conv_block(
    x, block: ConvBlock, *, width: float, name: str, seed: int, norm: Norm = PYTORCH_NORM
):
    """One table row: `[Conv, BN, ReLU] x convs`, then average pooling.

    Args:
        x: `[batch, time, freq, channels]`.
        block: The table row.
        width: Filter multiplier.
        name: Layer-name prefix, e.g. `logmel_block2`.
        seed: The run's seed; each conv kernel is seeded from it and the layer name.
        norm: BatchNorm momentum and epsilon.

    Returns:
        `[batch, time / pool_t, freq / pool_f, filters * width]` (floor division).
    """
    for j in range(1, block.convs + 1):
        conv_name = f"{name}_conv{j}"
        x = keras.layers.Conv2D(
            scaled(block.filters, width),
            block.kernel,
            padding="same",
            use_bias=False,
            kernel_initializer=initializers.kernel_initializer(seed, conv_name),
            name=conv_name,
        )(x)
        x = keras.layers.BatchNormalization(
            momentum=norm.momentum, epsilon=norm.epsilon, name=f"{name}_bn{j}"
        )(x)
        x = keras.layers.ReLU(name=f"{name}_relu{j}")(x)
    if block.pool is not None:
        x = keras.layers.AveragePooling2D(block.pool, name=f"{name}_pool")(x)
    return x


def conv_stack(
    x,
    backbone: Backbone,
    *,
    width: float,
    prefix: str,
    seed: int,
    first: int = 1,
    last: int | None = None,
    norm: Norm = PYTORCH_NORM,
):
    """Blocks `first..last` (1-based, inclusive; default all) of `backbone`.

    Args:
        x: `[batch, time, freq, channels]`.
        backbone: A `BACKBONES` entry.
        width: Filter multiplier.
        prefix: Layer-name prefix; block i is named `<prefix>_block<i>`.
        seed: The run's seed (see `conv_block`).
        first: First block to build.
        last: Last block to build (None: the last of the table).
        norm: BatchNorm momentum and epsilon.

    Returns:
        The feature map after the last built block, `[batch, time', freq', channels']`.
    """
    last = len(backbone.blocks) if last is None else last
    for i in range(first, last + 1):
        x = conv_block(
            x, backbone.blocks[i - 1], width=width, name=f"{prefix}_block{i}", seed=seed, norm=norm
        )
    return x
