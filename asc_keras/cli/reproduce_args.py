"""reproduce.py's command-line values beyond the typed configs: the seeds, and the flagfile and
overrides of `--protocol=dcase2024`.

- `reproduce_seeds(fv) -> (seed, ...)`: `--seeds=3` is seeds 0, 1, 2; `--seeds=0,1,2` those
  seeds (`config.options.seed_list`);
- `protocol_command(argv) -> (flagfile, overrides)`: the one top-level `--flagfile=F` of the
  command line (the network the protocol trains) and the asc-keras flags given beside it, which
  apply to every run (as `flags.reproduce_overrides`: no reproduction or per-run flag).
"""

from __future__ import annotations

from collections.abc import Sequence

from absl import flags

from asc_keras import flags as flags_lib
from asc_keras.config import options


def reproduce_seeds(fv: flags.FlagValues | None = None) -> tuple[int, ...]:
    """`--seeds` as a tuple of seeds."""
    values = (flags.FLAGS if fv is None else fv).seeds
    seeds = options.seed_list(values)
    if seeds is None:
        raise ValueError(f"--seeds={','.join(values)}: expected N or a list 0,1,2")
    return seeds


def protocol_command(argv: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """`(flagfile, overrides)` of `reproduce.py --protocol=... --flagfile=F [flags]` (argv[0]
    the script).

    Raises:
        ValueError: Not exactly one `--flagfile=`.
    """
    given = [a.split("=", 1)[1] for a in argv[1:] if a.startswith("--flagfile=")]
    if len(given) != 1:
        raise ValueError(
            "--protocol=dcase2024 trains one flagfile: give exactly one "
            "--flagfile=<TAU 2022 flagfile>, e.g. configs/tau2022_ef_spsmt.flags"
        )
    fv = flags.FlagValues()
    flags_lib.define_all(fv)
    flags_lib.parse(["reproduce", *(a for a in argv[1:] if not a.startswith("--flagfile="))], fv)
    return given[0], flags_lib.reproduce_overrides(fv)
