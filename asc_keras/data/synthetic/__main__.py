"""Command line of the synthetic sets:

python -m asc_keras.data.synthetic --task=1b --out=DIR [--clips_per_class=90]
python -m asc_keras.data.synthetic --task=tau2022 --out=DIR --clip_seconds=1
python -m asc_keras.data.synthetic --task=custom --out=DIR [--layout=folders|dcase]
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from asc_keras.data.synthetic.custom import generate_custom
from asc_keras.data.synthetic.layouts import generate, make_unlabeled_eval


def _define_flags() -> None:
    from absl import flags

    flags.DEFINE_enum(
        "task",
        "1b",
        ["1a", "1b", "tau2022", "custom"],
        "Which development set to imitate (custom: labels of its own).",
    )
    flags.DEFINE_string("out", None, "Output dataset folder.", required=True)
    flags.DEFINE_integer("clips_per_class", 90, "Device-a segments per class.", lower_bound=2)
    flags.DEFINE_integer(
        "clips_per_location",
        3,
        "Segments per location (unless given, fewer when --clips_per_class "
        "would leave a class one location).",
        lower_bound=1,
    )
    flags.DEFINE_integer("num_cities", 10, "Number of cities.", lower_bound=1, upper_bound=10)
    flags.DEFINE_float(
        "clip_seconds",
        None,
        "Clip duration in seconds; default 10 (1 for tau2022 and custom).",
        lower_bound=0.01,
    )
    flags.DEFINE_integer(
        "subsegments", 2, "tau2022: 1 s clips cut from each segment.", lower_bound=1
    )
    flags.DEFINE_enum(
        "layout",
        "folders",
        ["folders", "dcase"],
        "custom: train/<class>/*.wav and evaluate/<class>/*.wav, or the DCASE "
        "layout with the custom labels.",
    )
    flags.DEFINE_integer("seed", 0, "Random seed.", lower_bound=0)
    flags.DEFINE_integer(
        "unlabeled_clips",
        0,
        "If positive, write a challenge-style unlabeled evaluation folder of this many clips "
        "instead of a development set.",
        lower_bound=0,
    )
    flags.DEFINE_bool("overwrite", False, "Replace an earlier synthetic set in --out.")


def main(argv: Sequence[str]) -> int:
    """CLI entry: writes one synthetic folder and prints a one-line summary."""
    from absl import app, flags

    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    f = flags.FLAGS
    seconds = f.clip_seconds or (1.0 if f.task in ("tau2022", "custom") else 10.0)
    try:
        summary = _write(f, seconds)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(summary.line())
    return 0


def _write(f, seconds: float):
    if f.task == "custom":
        return generate_custom(
            f.out,
            clips_per_class=f.clips_per_class,
            clip_seconds=seconds,
            layout=f.layout,
            seed=f.seed,
            overwrite=f.overwrite,
        )
    if f.unlabeled_clips:
        return make_unlabeled_eval(
            f.out,
            task=f.task,
            num_clips=f.unlabeled_clips,
            clip_seconds=seconds,
            seed=f.seed,
            overwrite=f.overwrite,
        )
    per_location = f.clips_per_location
    if not f["clips_per_location"].present and f.clips_per_class <= per_location:
        per_location = max(1, f.clips_per_class // 2)  # a location for each split
    return generate(
        f.out,
        task=f.task,
        clips_per_class=f.clips_per_class,
        clips_per_location=per_location,
        num_cities=f.num_cities,
        clip_seconds=seconds,
        seed=f.seed,
        overwrite=f.overwrite,
        subsegments=f.subsegments,
    )


if __name__ == "__main__":
    from absl import app

    _define_flags()
    app.run(main)
