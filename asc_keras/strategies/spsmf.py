"""SPSMF frequency bands (paper section 2.3): where the bands lie and the layer that cuts one.

`num_bands` bands of `width` bins with an even hop chosen so the first starts at bin 0 and the
last ends at the top bin: 40 bins -> hop 6 (0-16, 6-22, 12-28, 18-34, 24-40), 64 bins -> hop 12
(0-16, ..., 48-64). A band is cut with a `Lambda` around the registered
`asc_keras.models.layers.frequency_band`: `[batch, T, F, c] -> [batch, T, width, c]`.
"""

from __future__ import annotations

import math

from asc_keras.models.layers import band_layer


def band_bounds(bins: int, *, num_bands: int, width: int) -> tuple[tuple[int, int], ...]:
    """`(start, stop)` of each band; together the bands cover every bin.

    Args:
        bins: Frequency bins of the spectrogram.
        num_bands: Number of bands.
        width: Bins per band.

    Returns:
        `num_bands` pairs, starts rounded from an even hop of `(bins - width) / (num_bands - 1)`.

    Raises:
        ValueError: If the bands cannot cover all bins (too narrow or too few) or do not fit.
    """
    if not 1 <= width <= bins:
        raise ValueError(f"band width {width} does not fit a spectrogram of {bins} bins")
    if num_bands == 1:
        if width != bins:
            raise ValueError(f"one band of {width} bins cannot cover {bins} bins")
        return ((0, bins),)
    hop = (bins - width) / (num_bands - 1)
    if hop > width:
        raise ValueError(
            f"{num_bands} bands of {width} bins leave gaps in {bins} bins (hop {hop:g} > width)"
        )
    starts = [int(math.floor(k * hop + 0.5)) for k in range(num_bands)]
    return tuple((s, s + width) for s in starts)


def cut_band(x, *, band: int, num_bands: int, width: int, name: str):
    """Band `band` of `x`, `[batch, T, F, c] -> [batch, T, width, c]`."""
    start, stop = band_bounds(x.shape[2], num_bands=num_bands, width=width)[band]
    return band_layer(start, stop, name=name)(x)
