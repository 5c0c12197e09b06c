"""Synthetic DCASE 2020 Task 1, TAU 2022 and custom-labelled sets, in the official folder layouts.

The job of this module is to stand in for TAU Urban Acoustic Scenes 2020 Mobile (1A) and
3Class (1B) where the real data is absent: as the test fixture and as the demo's data. It writes

- `audio/<scene>-<city>-<location>-<segment>-<device>.wav`: 24-bit PCM; 1A 44.1 kHz mono,
  1B 48 kHz stereo (two correlated "binaural" channels);
- `meta.csv` (`filename  scene_label  identifier  source_label`), `evaluation_setup/fold1_train.csv`
  and `fold1_evaluate.csv` (`filename  scene_label`), `fold1_test.csv` (`filename`), all
  tab-separated and sorted by file name, exactly as the official packages; 1B's `scene_label`
  holds the 3-class label while the file name keeps the 10-scene prefix;
- `README.txt` saying that the data is synthetic and how it was made.

How a clip sounds. Every scene has a profile: a coloured noise bed (spectral tilt, band limits),
a tonal hum (bus engine, metro motor whine, tram rail hum, indoor HVAC/mains), continuous layers
(babble, music, wind, distant traffic, rail joints) and events at scene-specific rates (footsteps,
voices as formant-filtered pulse trains, announcements with chimes, beeps, bird trills, car
pass-bys with Doppler, horns, train arrivals, brake squeal, rolling suitcases, cutlery clinks,
doors), all sent through a room (exponentially decaying noise impulse response: long indoors,
short outdoors). Cities shift levels, tilt, event rates and reverberation; locations jitter every
profile value; clips draw their own event timing. So classes overlap, partially. A recording
device then colours the sound: band limits, a fixed EQ curve, self noise, gain and (for phones)
soft saturation. 1A segments are recorded by device `a` and, in parallel, by other devices (a
fraction of the training segments by b, c, s1-s3; every evaluate segment by all nine devices, so
s4-s6 occur only in the evaluate split), exactly the same sound coloured differently. As in the
official setup, where only the parallel-recorded part of the evaluate locations is used, 1A
evaluate locations keep one segment in three; evaluate then has equal counts for every device.

Whole locations (`identifier`) sit on one side of the train/evaluate split (about 70/30 of the
locations of each class). Generation is deterministic: the same arguments write byte-identical
files. Everything between the room and the device runs in one FFT per clip (numpy/scipy only).

`generate` writes a development set (`task="tau2022"`: the 1A sound cut into 1 s clips named
`<scene>-<city>-<location>-<segment>-<subsegment>-<device>.wav`), `make_unlabeled_eval` a
challenge-evaluation-style folder (`audio/0.wav`, ..., `evaluation_setup/fold1_test.csv` without
labels), `generate_custom` a set with labels of its own (class subfolders or the DCASE layout),
`scene_recording` several scenes back to back in one recording. Command line:

    python -m asc_keras.data.synthetic --task=1b --out=DIR [--clips_per_class=90]

The package is split by job, each module importing only those before it: `signals` (helpers and
event sounds), `grid` (a dataset's sample rate, clip length and FFT grid), `scenes` (profiles,
locations, the dry sound), `devices` (rooms, device colouring, rendering), `writing` (files),
`layouts` (the official development and evaluation layouts), `custom` (custom labels, long
recordings), `irs` (device impulse responses for DIR augmentation: `--write_irs=N`).
"""

from asc_keras.data.synthetic.custom import CUSTOM_LABELS, generate_custom, scene_recording
from asc_keras.data.synthetic.irs import IR_FOLDER, write_device_irs
from asc_keras.data.synthetic.layouts import (
    CHANNELS,
    SAMPLE_RATES,
    TRAIN_DEVICES_1A,
    generate,
    make_unlabeled_eval,
)
from asc_keras.data.synthetic.writing import SUBTYPE, DatasetSummary

__all__ = [
    "CHANNELS",
    "CUSTOM_LABELS",
    "IR_FOLDER",
    "SAMPLE_RATES",
    "SUBTYPE",
    "TRAIN_DEVICES_1A",
    "DatasetSummary",
    "generate",
    "generate_custom",
    "make_unlabeled_eval",
    "scene_recording",
    "write_device_irs",
]
