"""BatchNorm settings side by side: Keras defaults vs the authors' PyTorch settings (+ precise
statistics), on the project's synthetic 1A and 1B sets.

    python bench/bn_bench.py [--out=/tmp/bn_bench] [--width=0.125] [--steps=300,1000]

For each row flagfile (1a_logmel, 1a_gamma, 1a_gamma_spsmt, 1b_ef_spsmt) and each BatchNorm
setting (Keras: momentum 0.99, epsilon 1e-3, Adam epsilon 1e-7; PyTorch: 0.9, 1e-5, 1e-8), one
run is trained to the first step count and scored, then resumed to the next and scored again.
Scores are macro-average accuracy in inference mode on the evaluate split and on the run's own
training split, with the saved model's moving statistics and after `recalibrate_bn` (50 clean
training batches). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROWS = ("1a_logmel", "1a_gamma", "1a_gamma_spsmt", "1b_ef_spsmt")
SETTINGS = {
    "keras": ("--bn_momentum=0.99", "--bn_epsilon=0.001", "--adam_epsilon=1e-7"),
    "pytorch": ("--bn_momentum=0.9", "--bn_epsilon=1e-5", "--adam_epsilon=1e-8"),
}


def _dataset(root: str, task: str, clips_per_class: int) -> str:
    from asc_keras.data import synthetic

    if not os.path.exists(os.path.join(root, "meta.csv")):
        synthetic.generate(root, task=task, clips_per_class=clips_per_class, seed=7)
    return root


def _accuracy(model, manifest, split):
    from asc_keras.evaluation import evaluator
    from asc_keras.inference import predictors

    probs, meta = evaluator.predict(
        predictors.KerasPredictor(model), manifest, split=split, normalization=None, batch_size=32
    )
    return (
        100 * evaluator.score(probs, meta, manifest.classes, task=manifest.task)["all"]["accuracy"]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", default=os.path.join(os.path.expanduser("~"), ".cache", "asc_keras", "bn_bench")
    )
    parser.add_argument("--width", type=float, default=0.125)
    parser.add_argument("--steps", default="300,1000")
    parser.add_argument("--rows", default=",".join(ROWS))
    args = parser.parse_args()

    import keras

    from asc_keras import flags as flags_lib
    from asc_keras.data import pipeline
    from asc_keras.data.manifest import load_manifest
    from asc_keras.training import batchnorm, trainer

    data = {
        "1a": _dataset(os.path.join(args.out, "data_1a"), "1a", 20),
        "1b": _dataset(os.path.join(args.out, "data_1b"), "1b", 60),
    }
    steps_list = [int(s) for s in args.steps.split(",")]
    print(
        "| row | BatchNorm | steps | evaluate acc % | train acc % (inference) | "
        "evaluate acc % after recalibrate_bn | train acc % after recalibrate_bn |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in args.rows.split(","):
        task = row[:2]
        for name, setting in SETTINGS.items():
            for steps in steps_list:
                argv = (
                    f"--data_dir={data[task]}",
                    f"--features_dir={os.path.join(args.out, 'features')}",
                    f"--model_dir={os.path.join(args.out, 'runs', f'{row}_{name}')}",
                    f"--width={args.width}",
                    f"--train_steps={steps}",
                    "--batch_size=32",
                    "--eval_every=0",
                    "--checkpoint_every=100",
                    *setting,
                )
                fv = flags_lib.flagfile_values(os.path.join(REPO, "configs", f"{row}.flags"), argv)
                feature_cfg = flags_lib.feature_config(fv)
                model_cfg = flags_lib.model_config(feature_cfg, fv)
                out = trainer.run(
                    feature_cfg,
                    flags_lib.data_config(fv),
                    model_cfg,
                    flags_lib.train_config(fv),
                    progress=False,
                    log=lambda *_: None,
                )
                manifest = load_manifest(out["features"])
                reps = model_cfg.inputs
                model = keras.saving.load_model(out["model_path"])
                before = (
                    _accuracy(model, manifest, "evaluate"),
                    _accuracy(model, manifest, "train"),
                )
                clean = pipeline.train_dataset(
                    manifest,
                    representations=reps,
                    batch_size=32,
                    seed=1,
                    mixup_alpha=0.0,
                    cache=False,
                    shuffle_buffer=1024,
                )
                batchnorm.recalibrate(model, iter(clean), 50)
                after = (
                    _accuracy(model, manifest, "evaluate"),
                    _accuracy(model, manifest, "train"),
                )
                print(
                    f"| {row} | {name} | {steps} | {before[0]:.1f} | {before[1]:.1f} | "
                    f"{after[0]:.1f} | {after[1]:.1f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
