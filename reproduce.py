"""Reproduce the paper's Tables 2, 3 and 4 with one command.

    python reproduce.py --tables=2,3 --data_dir=DIR_1A --out=OUT [--features_dir=F]
        [--seeds=N] [--devices=0,1,...] [--jobs_per_device=K] [--shard=i/n]
        [--train_steps=... --batch_size=... --width=...] [--dry_run] [--retrain_stale]
    python reproduce.py --tables=4 --data_dir=DIR_1B --out=OUT
    python reproduce.py --tables=2,3,4 --data_dir=DIR_1A --data_dir_1b=DIR_1B --out=OUT
    python reproduce.py --protocol=dcase2024 --data_dir=TAU2022 \
        --flagfile=configs/tau2022_ef_spsmt.flags --seeds=0,1,2 --out=OUT

The row flagfiles of `configs/` become the minimal set of independent training runs (every
SPSMR / SPSMF row is a decision-level fusion of separately trained CNNs); `--dry_run` prints
that plan with its compute. Otherwise features are precomputed once per task, every run is
trained (finished runs skipped, interrupted ones resumed, failed ones reported while the others
go on) and every row is scored on fold1_evaluate by fusing its runs, beside the paper's numbers:
OUT/results.{md,csv,json,png}. Any other train.py flag (e.g. `--train_steps=300`) applies to
every run; the report then says that the recipe was shortened. A run folder in OUT that holds a
run of other settings (say an earlier `--width`) stops the tool before it trains anything, with
one line per such run; `--retrain_stale` moves them aside (`<run>.stale-<n>`) and trains them
again. `--protocol=dcase2024` trains the `--flagfile` on each DCASE 2024/25 train split, the
schedule scaled per split, into OUT/results_dcase2024.{md,csv,json} beside the 2024 baseline.
"""

import os
import sys

from absl import flags

from asc_keras import cli
from asc_keras import flags as flags_lib
from asc_keras.cli import reproduce_args

HERE = os.path.dirname(os.path.abspath(__file__))


def _data_configs(tasks, fv) -> dict:
    import dataclasses

    if not fv.data_dir:
        raise ValueError("--data_dir is required (the 1A folder; the 1B folder for Table 4 alone)")
    base = flags_lib.data_config(fv)
    dirs = {}
    if tasks == ("1b",):
        dirs["1b"] = fv.data_dir_1b or fv.data_dir
    else:
        dirs["1a"] = fv.data_dir
        if "1b" in tasks:
            if not fv.data_dir_1b:
                raise ValueError("Table 4 with 1A tables needs --data_dir_1b (the 1B folder)")
            dirs["1b"] = fv.data_dir_1b
    return {
        task: dataclasses.replace(base, data_dir=d, task=task, classes=())
        for task, d in dirs.items()
    }


def _protocol(fv, shard) -> int:
    import dataclasses

    from asc_keras.models import complexity
    from asc_keras.reproduce import progress, protocol_report, protocols, runner
    from asc_keras.strategies import build_model

    flagfile, overrides = reproduce_args.protocol_command(sys.argv)
    seeds = reproduce_args.reproduce_seeds(fv)
    plan = protocols.make_protocol_plan(
        flagfile,
        splits=[int(p) for p in fv.protocol_splits],
        read_flagfile=lambda path: flags_lib.flagfile_configs(path, overrides),
        count_macs=lambda cfg: complexity.macs(build_model(cfg)),
    )
    print(protocols.format_protocol_plan(plan, seeds))
    print(protocols.protocol_banner(plan, overrides))
    if fv.dry_run:
        return 0
    if not fv.out or not fv.data_dir:
        raise ValueError(
            "--out and --data_dir (the TAU 2022 folder with split_setup/) are required"
        )
    protocol_report.reproduce_protocol(
        plan,
        out_dir=fv.out,
        data_cfg=dataclasses.replace(flags_lib.data_config(fv), task=plan.tasks[0], classes=()),
        configs_dir=fv.configs_dir or os.path.join(HERE, "configs"),
        seeds=seeds,
        slots=runner.device_slots(fv.devices, fv.jobs_per_device),
        shard=shard,
        launch=fv.launch,
        train_script=os.path.join(HERE, "train.py"),
        overrides=overrides,
        eval_batch_size=fv.eval_batch_size,
        retrain_stale=fv.retrain_stale,
        live=progress.LiveLine(sys.stderr) if sys.stderr.isatty() else None,
    )
    return 0


def main(argv):
    del argv
    fv = flags.FLAGS
    shard = flags_lib.reproduce_shard(fv)  # a bad --shard fails before any model is built
    if fv.protocol == "dcase2024":
        return _protocol(fv, shard)
    from asc_keras.models import complexity
    from asc_keras.reproduce import plan as plan_lib
    from asc_keras.reproduce import progress, runner, tool
    from asc_keras.strategies import build_model

    overrides = flags_lib.reproduce_overrides(fv)
    tables = [int(t) for t in fv.tables]
    configs_dir = fv.configs_dir or os.path.join(HERE, "configs")
    plan = plan_lib.make_plan(
        configs_dir,
        tables=tables,
        read_flagfile=lambda path: flags_lib.flagfile_configs(path, overrides),
        count_macs=lambda cfg: complexity.macs(build_model(cfg)),
    )
    print(plan_lib.format_plan(plan))
    print(tool.banner(plan))
    if fv.dry_run:
        return 0
    if not fv.out:
        raise ValueError("--out is required (or --dry_run)")
    live = progress.LiveLine(sys.stderr) if sys.stderr.isatty() else None
    tool.reproduce(
        plan,
        out_dir=fv.out,
        data_cfgs=_data_configs(plan.tasks, fv),
        seeds=reproduce_args.reproduce_seeds(fv),
        slots=runner.device_slots(fv.devices, fv.jobs_per_device),
        shard=shard,
        launch=fv.launch,
        train_script=os.path.join(HERE, "train.py"),
        overrides=overrides,
        eval_batch_size=fv.eval_batch_size,
        retrain_stale=fv.retrain_stale,
        live=live,
    )
    return 0


if __name__ == "__main__":
    cli.main(
        main,
        groups=(flags_lib.define_reproduce_flags, flags_lib.define_data_flags),
        doc=__doc__,
        note="Any train.py flag (python train.py --help) also applies to every run.",
    )
