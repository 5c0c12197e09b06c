"""Where several representations meet (paper Figure 1): input images, EF, MF and LF.

Inputs are `{name: [batch, num_frames, bins]}`; each gets a channel axis once,
`<name>_channels: [batch, T, F, 1]`, shared by every part that reads it.

- EF: every image resized along frequency to `ef_bins` (bilinear; a no-op when the sizes already
  agree) and stacked as channels: `[batch, T, ef_bins, n]`; one CNN follows.
- MF: one first conv block per representation (`mf_<name>_block1`), outputs resized along
  frequency to the largest of their sizes and concatenated on channels
  (1A, four inputs: `[batch, 215, 32, 4 * 64]`), then the shared blocks 2.. (`mf_block2`...).
- LF: one full conv stack per representation (`lf_<name>_block1`...), final maps concatenated
  along frequency (1A: `[batch, 26, 5 + 8 + 8 + 5, 512]`); shared global pooling and head.
"""

from __future__ import annotations

import keras

from asc_keras.config import ModelConfig
from asc_keras.models.backbones import BACKBONES, Norm, conv_block, conv_stack
from asc_keras.models.layers import frequency_resize


class SharedInputs:
    """Input-side tensors built once and shared by every part of a model (all weightless).

    Args:
        cfg: The model config (gives the frame count and bins of each input).
        inputs: `{name: keras.Input [batch, T, F]}`.
    """

    def __init__(self, cfg: ModelConfig, inputs: dict):
        self._cfg = cfg
        self._inputs = inputs
        self._cache: dict[str, object] = {}

    def _once(self, key, build):
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def image(self, name: str):
        """`[batch, T, F, 1]` of input `name`."""
        shape = (self._cfg.num_frames, self._cfg.bins(name), 1)
        return self._once(
            name, lambda: keras.layers.Reshape(shape, name=f"{name}_channels")(self._inputs[name])
        )

    def early_fusion(self, names: tuple[str, ...], ef_bins: int):
        """EF stack `[batch, T, ef_bins, len(names)]`."""

        def build():
            images = [
                frequency_resize(self.image(n), ef_bins, name=f"ef_{n}_resize") for n in names
            ]
            return keras.layers.Concatenate(axis=-1, name="ef_stack")(images)

        return self._once("ef_stack", build)


def norm(cfg: ModelConfig) -> Norm:
    """The BatchNorm settings of `cfg`."""
    return Norm(cfg.bn_momentum, cfg.bn_epsilon)


def spectrogram(cfg: ModelConfig, shared: SharedInputs):
    """The one image a single or EF network reads: `[batch, T, F, channels]`."""
    if cfg.fusion == "single":
        return shared.image(cfg.inputs[0])
    if cfg.fusion == "ef":
        return shared.early_fusion(cfg.inputs, cfg.ef_bins)
    raise ValueError(f"fusion {cfg.fusion!r} has no single input spectrogram")


def middle_fusion(cfg: ModelConfig, shared: SharedInputs, *, seed: int):
    """MF feature map after the last conv block, `[batch, t, f, c]`; kernels seeded by `seed`."""
    backbone = BACKBONES[cfg.backbone]
    branches = {
        n: conv_block(
            shared.image(n),
            backbone.blocks[0],
            width=cfg.width,
            name=f"mf_{n}_block1",
            seed=seed,
            norm=norm(cfg),
        )
        for n in cfg.inputs
    }  # {name: [b, T/4, F_n/2, 64]}
    common = max(x.shape[2] for x in branches.values())
    resized = [frequency_resize(x, common, name=f"mf_{n}_resize") for n, x in branches.items()]
    x = keras.layers.Concatenate(axis=-1, name="mf_concat")(resized)  # [b, T/4, common, n*64]
    return conv_stack(x, backbone, width=cfg.width, prefix="mf", seed=seed, first=2, norm=norm(cfg))


def late_fusion(cfg: ModelConfig, shared: SharedInputs, *, seed: int):
    """LF feature map: the per-representation final maps side by side in frequency."""
    backbone = BACKBONES[cfg.backbone]
    maps = [
        conv_stack(
            shared.image(n), backbone, width=cfg.width, prefix=f"lf_{n}", seed=seed, norm=norm(cfg)
        )
        for n in cfg.inputs
    ]  # [b, t, f_n, c] each
    return keras.layers.Concatenate(axis=2, name="lf_concat")(maps)  # [b, t, sum f_n, c]
