"""Command line of the synthetic sets:

python -m asc_keras.data.synthetic --task=1b --out=DIR [--clips_per_class=90]
python -m asc_keras.data.synthetic --task=tau2022 --out=DIR --clip_seconds=1
python -m asc_keras.data.synthetic --task=custom --out=DIR [--layout=folders|dcase]
python -m asc_keras.data.synthetic --task=tau2022 --out=DIR --write_irs=8   (+ DIR/device_irs/)
"""

from __future__ import annotations

from collections.abc import Sequence

from asc_keras.data.synthetic.custom import generate_custom
from asc_keras.data.synthetic.irs import write_device_irs
from asc_keras.data.synthetic.layouts import generate, make_unlabeled_eval


def _define_flags(fv) -> None:
    """Define the flags of this command in `fv` (an absl FlagValues)."""
    from absl import flags

    flags.DEFINE_enum(
        "task",
        "1b",
        ["1a", "1b", "tau2022", "custom"],
        "Which development set to imitate (custom: labels of its own).",
        flag_values=fv,
    )
    flags.DEFINE_string("out", None, "Output dataset folder.", flag_values=fv)
    flags.DEFINE_integer(
        "clips_per_class", 90, "Device-a segments per class.", lower_bound=2, flag_values=fv
    )
    flags.DEFINE_integer(
        "clips_per_location",
        3,
        "Segments per location (unless given, fewer when --clips_per_class "
        "would leave a class one location).",
        lower_bound=1,
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "num_cities", 10, "Number of cities.", lower_bound=1, upper_bound=10, flag_values=fv
    )
    flags.DEFINE_float(
        "clip_seconds",
        None,
        "Clip duration in seconds; default 10 (1 for tau2022 and custom).",
        lower_bound=0.01,
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "subsegments", 2, "tau2022: 1 s clips cut from each segment.", lower_bound=1, flag_values=fv
    )
    flags.DEFINE_enum(
        "layout",
        "folders",
        ["folders", "dcase"],
        "custom: train/<class>/*.wav and evaluate/<class>/*.wav, or the DCASE "
        "layout with the custom labels.",
        flag_values=fv,
    )
    flags.DEFINE_integer("seed", 0, "Random seed.", lower_bound=0, flag_values=fv)
    flags.DEFINE_integer(
        "unlabeled_clips",
        0,
        "If positive, write a challenge-style unlabeled evaluation folder of this many clips "
        "instead of a development set.",
        lower_bound=0,
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "write_irs",
        0,
        "Also write this many synthetic device impulse responses to <out>/device_irs/*.wav "
        "(for --dir_folder).",
        lower_bound=0,
        flag_values=fv,
    )
    flags.DEFINE_bool(
        "overwrite", False, "Replace an earlier synthetic set in --out.", flag_values=fv
    )


def main(argv: Sequence[str]) -> int:
    """CLI entry: writes one synthetic folder and prints a one-line summary."""
    from absl import flags

    del argv
    f = flags.FLAGS
    seconds = f.clip_seconds or (1.0 if f.task in ("tau2022", "custom") else 10.0)
    summary = _write(f, seconds)
    print(summary.line())
    if f.write_irs:
        folder = write_device_irs(f.out, f.write_irs, sample_rate=summary.sample_rate, seed=f.seed)
        print(f"{f.write_irs} synthetic device impulse responses in {folder}")
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
    from asc_keras import cli

    cli.main(main, groups=(_define_flags,), required=("out",), define=_define_flags, doc=__doc__)
