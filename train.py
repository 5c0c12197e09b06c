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

    python train.py --flagfile=GENERAL/flags.txt --init_from=GENERAL --train_devices=b
        --model_dir=DEVICES/b [--train_steps=N --learning_rate=5e-4]

fine-tunes a copy of the run GENERAL (its final weights; same model flags) on device b's training
clips (DCASE 2025 per-device models; `--devices` is reproduce.py's GPU list and is refused here).
`--freq_mixstyle_p=0.4 --freq_mixstyle_alpha=0.3` turns on Freq-MixStyle (training batches only).
"""

from asc_keras import cli
from asc_keras import flags as flags_lib


def main(argv):
    del argv
    from asc_keras.training.trainer import run

    feature_cfg = flags_lib.feature_config()
    data_cfg = flags_lib.data_config()
    model_cfg = flags_lib.model_config(feature_cfg)
    train_cfg = flags_lib.train_config()
    run(feature_cfg, data_cfg, model_cfg, train_cfg, flags_text=flags_lib.resolved_flags())


if __name__ == "__main__":
    cli.main(
        main,
        groups=(
            flags_lib.define_feature_flags,
            flags_lib.define_data_flags,
            flags_lib.define_model_flags,
            flags_lib.define_train_flags,
        ),
        required=("data_dir", "model_dir"),
        doc=__doc__,
    )
