"""Training: `trainer.run(feature_cfg, data_cfg, model_cfg, train_cfg, *, datasets=None)`.

- `setup`: run settings, the model/feature checks, normalization, model + optimizer +
  checkpoint state and the input data of a run;
- `optimizer`: Adam on the paper's staircase schedule (1e-3 * 0.91^floor(step / 200));
- `checkpoints`: the model_dir layout, config.json and the refusal to resume another run,
  checkpoints of model + optimizer + step; `lock`: one train.py per run folder;
- `callbacks`: TensorBoard summaries, console lines, the NaN guard;
- `distribute`: default / mirrored / multi_worker strategies, input prefetched to the device;
- `loop`: K training steps per tf.function call, validation predicted in one call, the
  `--deterministic` pre-flight;
- `validation`: validation between loops, BatchNorm recalibration, the confusion image;
- `progress_bar`: the step bar on a terminal (advanced once per loop call);
- `trainer`: the training run (host side: build, restore, loops with logs, checkpoints and
  validation between them, save, final evaluation).
"""
