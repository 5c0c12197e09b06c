"""Precompute the spectrogram features of a DCASE 2020 Task 1 folder into sharded TFRecords.

    python prepare.py --flagfile=configs/base_1b.flags --data_dir=DIR [--features_dir=OUT]
        [--representations=logmel,cqt,gamma,mfcc] [--num_workers=N] [--splits=train,evaluate]
        [--num_shards=M --shard_index=K] [--feature_dtype=float16] [--skip_bad_files]
        [--fingerprint=stat|sha256] [--dir_folder=IRS --dir_copies=K [--dir_seed=S]]
        [--engine=beam [--beam_pipeline_options="--runner=DirectRunner --direct_num_workers=2
                                                 --direct_running_mode=multi_processing"]]

Writes `<features_dir>/<settings hash>/` with shards and `manifest.json`, then prints a summary.
Rerunning after an interruption resumes; finished shards are verified first and recomputed
(saying why) when truncated, when their audio changed (--fingerprint=sha256 also recomputes shards
made without content hashes), or, without --skip_bad_files, when they skipped clips. A complete
features folder is only read (it may be a read-only mount). A bad input stops with one line naming
the file. `--dir_folder=IRS --dir_copies=K` also stores K copies of every device-a training clip
convolved with device impulse responses drawn from IRS (DIR augmentation, see docs/training.md).

`--engine=beam` computes the missing shards with an Apache Beam pipeline instead of local worker
processes (`pip install -e '.[beam]'`; the DirectRunner with --num_workers processes unless
--beam_pipeline_options names a runner): the same shards, sidecars and manifest, byte for byte.
"""

import time

from asc_keras import cli
from asc_keras import flags as flags_lib


def main(argv):
    del argv
    from asc_keras.data import manifest, precompute

    t0 = time.time()
    feature_cfg = flags_lib.feature_config()
    data_cfg = flags_lib.data_config()
    try:
        folder = precompute.ensure_features(feature_cfg, data_cfg, splits=data_cfg.splits)
    except precompute.PrecomputeIncomplete as e:  # this machine's shards are done: success
        print(e)
        return 0
    print(precompute.summarize(manifest.load_manifest(folder)))
    if data_cfg.dir_copies and "train" in data_cfg.splits:  # DIR copies of the device-a clips
        from asc_keras.data import dir_shards

        print(dir_shards.summarize(dir_shards.ensure_copies(folder, feature_cfg, data_cfg)))
    print(f"prepare.py: {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    cli.main(
        main,
        groups=(flags_lib.define_feature_flags, flags_lib.define_data_flags),
        required=("data_dir",),
        doc=__doc__,
    )
