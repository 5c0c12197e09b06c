"""Train one model of the paper (or resume it) from flags.

    python train.py --flagfile=configs/1b_ef_spsmt.flags --data_dir=DIR --model_dir=RUN
        [--features_dir=F] [--train_steps=12000] [--batch_size=64] [--seed=0]
        [--eval_every=1000] [--checkpoint_every=200] [--distribution=default|mirrored|multi_worker]
        [--precision=float32|mixed_float16|mixed_bfloat16] [--steps_per_loop=K]
        [--jit_compile] [--deterministic] [--width=1.0]

Computes the features first when they are not in --features_dir yet (as prepare.py does). Writes
into --model_dir: config.json, flags.txt (replay with `--flagfile=RUN/flags.txt`),
normalization.json, checkpoints/, TensorBoard logs (train/, eval/), model.keras and the final
evaluation (metrics.json, confusion.png, devices.png, predictions.tsv, report.txt). Rerunning
the same command after an interruption resumes from the newest checkpoint (Ctrl-C prints
"interrupted at step N; checkpoint at step M; rerun to resume" and exits 130); a --model_dir that
holds another configuration, or that another train.py is using (its `train.lock` names the pid
and host), is refused. Errors are one line naming the file or step.
`--mixed_precision` is a deprecated alias of `--precision=mixed_float16`.
"""

import sys

from absl import app

from asc_keras import flags as flags_lib
from asc_keras import startup


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    startup.quiet_python_logs()
    from asc_keras.data import precompute
    from asc_keras.data.pipeline import CorruptShardError
    from asc_keras.oom import OutOfMemoryError
    from asc_keras.training.callbacks import NonFiniteLossError
    from asc_keras.training.trainer import run

    try:
        feature_cfg = flags_lib.feature_config()
        data_cfg = flags_lib.data_config()
        model_cfg = flags_lib.model_config(feature_cfg)
        train_cfg = flags_lib.train_config()
        run(feature_cfg, data_cfg, model_cfg, train_cfg, flags_text=flags_lib.resolved_flags())
    except precompute.PrecomputeIncomplete as e:
        print(e)
        return 1
    except (ValueError, OSError, CorruptShardError, NonFiniteLossError, OutOfMemoryError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:  # TrainingInterrupted says at which step
        print(str(e) or "interrupted; rerun to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    flags_lib.define_all()
    startup.begin(sys.argv, required=("data_dir", "model_dir"))  # before TensorFlow loads
    app.run(main, argv=flags_lib.cli_argv(sys.argv))
