"""Write a teacher's logits for knowledge distillation (`train.py --teacher=FILE`).

    python teach.py --model_dir=RUN[,RUN2,...] --data_dir=DIR [--features_dir=F] --out=FILE
        [--fusion_weights=W1,W2,...] [--batch_size=N] [--train_csv=LIST]
    python teach.py --teacher=LOGITS.csv|.npz --data_dir=DIR --out=FILE

- From runs: the logits of every clip of the training split, from one run's model.keras or from
  several runs fused as evaluate.py fuses them (the parts of one model, e.g. a paper row's runs
  of the reproduction, with that model's weights; other runs averaged, or --fusion_weights).
  The models output probabilities: the logits are log(clip(fused probabilities, 1e-7, 1)).
  The training split's features are computed first when missing (with the runs' settings).
- From a file made elsewhere (--teacher): a CSV with a filename column and one column per class,
  or an NPZ with `filenames` and `logits` (optionally `classes`), checked against the task's
  classes and training clips.

Writes one NPZ (filenames, logits float32 [N, C], classes, config: runs, weights, fusion), rows
sorted by clip name, byte-identical on rerun. Errors are one line naming the file or clip.
"""

from asc_keras import cli
from asc_keras import flags as flags_lib


def main(argv):
    del argv
    from asc_keras.evaluation import teacher

    teacher.run(flags_lib.teach_config(), flags_lib.data_config())


if __name__ == "__main__":
    cli.main(
        main,
        groups=(flags_lib.define_data_flags,),
        required=("data_dir", "out"),
        also_shown=("model_dir", "teacher", "fusion_weights", "batch_size"),
        doc=__doc__,
    )
