"""Training: `run.run(feature_cfg, data_cfg, model_cfg, train_cfg, *, datasets=None)`.

- `optimizer`: Adam on the paper's staircase schedule (1e-3 * 0.91^floor(step / 200));
- `checkpoints`: the model_dir layout, config.json and the refusal to resume another run,
  checkpoints of model + optimizer + step;
- `callbacks`: TensorBoard summaries, console lines, the NaN guard;
- `distribute`: default / mirrored / multi_worker strategies, input prefetched to the device;
- `loop`: K training steps per tf.function call, validation predicted in one call, the
  `--deterministic` pre-flight;
- `run`: the training run (host side: logs, checkpoints, validation between loops).
"""
