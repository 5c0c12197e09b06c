"""The shards of a features folder: their plan, and which finished ones can be trusted.

A split's clips are cut into `<split>-SSSSS-of-NNNNN.tfrecord` shards (`plan_shards`), each with a
sidecar `<shard>.json` written after it: `{"split", "files": [clip names], "num_examples",
"skipped": [{"filename", "reason"}], "inputs": {clip name: {"size", "mtime_ns"[, "sha256"]}},
"stats": {rep: normalization partial sums}, "versions": {feature library: version}}` (train
shards only hold stats; `versions` is `library_versions.current()` of the run that wrote it).

`verify_shard` says whether a finished shard may be used, and if not why (truncated, audio
changed, clips skipped in a strict run, ...). `choose_plan` plans a split with the run's
`clips_per_shard`, or takes a complete set of shards made with another one (a train run and an
evaluate run with different `clips_per_shard` share one folder without recomputing).
`remove_leftovers` deletes the temporary files that no run needs and nothing else.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Sequence

import pandas as pd

from asc_keras.config import DataConfig
from asc_keras.data import schema


@dataclasses.dataclass(frozen=True)
class ShardPlan:
    split: str
    index: int
    count: int
    rows: pd.DataFrame  # the clips of this shard, in order

    @property
    def name(self) -> str:
        return f"{self.split}-{self.index:05d}-of-{self.count:05d}.tfrecord"


def plan_shards(split: str, table: pd.DataFrame, clips_per_shard: int) -> list[ShardPlan]:
    count = max(1, -(-len(table) // clips_per_shard))
    return [
        ShardPlan(split, i, count, table.iloc[i * clips_per_shard : (i + 1) * clips_per_shard])
        for i in range(count)
    ]


_SHARD = r"(?P<split>train|evaluate|test)-\d{5}-of-(?P<count>\d{5})\.tfrecord"
# The temporary files precompute writes into a features folder.
_TEMPORARIES = (
    re.compile(rf"\.(?P<shard>{_SHARD})\.tmp-\d+"),  # shard being written
    re.compile(rf"(?P<shard>{_SHARD})\.json\.tmp-\d+"),  # sidecar being written
)
_MANIFEST_TMP = re.compile(r"manifest\.json\.tmp-(?P<pid>\d+)")
_SHOWN = 3  # file names shown in a message before "+N more"


def sidecar_path(folder: str, plan: ShardPlan) -> str:
    return os.path.join(folder, plan.name + ".json")


def recorded_versions(folder: str, plan: ShardPlan) -> dict | None:
    """The feature library versions a finished shard's sidecar records; None when it records
    none (written before versions were) or cannot be read (`verify_shard` says why)."""
    try:
        with open(sidecar_path(folder, plan)) as f:
            versions = json.load(f).get("versions")
    except (OSError, ValueError, AttributeError):
        return None
    return versions if isinstance(versions, dict) else None


def names_shown(names: Sequence[str]) -> str:
    more = f" (+{len(names) - _SHOWN} more)" if len(names) > _SHOWN else ""
    return ", ".join(names[:_SHOWN]) + more


def file_fingerprint(path: str, mode: str = "stat") -> dict:
    """`{'size', 'mtime_ns'}` of a file, plus its `'sha256'` when `mode` is 'sha256'."""
    st = os.stat(path)
    fp = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if mode == "sha256":
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        fp["sha256"] = h.hexdigest()
    return fp


def _input_changed(recorded: dict, path: str, mode: str) -> bool:
    """Whether a file differs from its recorded fingerprint. `mode` 'size' compares sizes only;
    'sha256' compares content (the caller checks first that a hash was recorded)."""
    try:
        now = file_fingerprint(path)
    except OSError:
        return True
    if now["size"] != recorded.get("size"):
        return True
    if mode == "size":
        return False
    if mode == "sha256":
        return file_fingerprint(path, "sha256")["sha256"] != recorded["sha256"]
    return now["mtime_ns"] != recorded.get("mtime_ns")


def verify_shard(
    folder: str, plan: ShardPlan, data_cfg: DataConfig, *, own: bool
) -> tuple[bool, str | None]:
    """`(usable, why not)` of a shard; `why not` is None for a shard that was never finished.

    Checks, cheapest first: sidecar and shard present; the sidecar lists this plan's clips; in a
    strict run (no `skip_bad_files`), no clip skipped; the shard's record count (its framing
    walked) equals the sidecar's; no input file changed since (`own`: by `data_cfg.fingerprint`;
    another machine's shard: by size only). A shard computed with `fingerprint='stat'` holds no
    content hashes, so a `sha256` run cannot tell whether its audio kept its content: it is
    recomputed (and then holds the hashes).
    """
    shard = os.path.join(folder, plan.name)
    try:
        with open(sidecar_path(folder, plan)) as f:
            side = json.load(f)
    except FileNotFoundError:
        return False, None
    except (OSError, ValueError):
        return False, "its sidecar is unreadable"
    if not os.path.exists(shard):
        return False, "the shard file is missing"
    if side.get("files") != list(plan.rows["filename"]):
        return False, "its sidecar lists other clips"
    skipped = [s["filename"] for s in side.get("skipped", ())]
    if skipped and not data_cfg.skip_bad_files:
        return False, (
            f"{len(skipped)} clip(s) were skipped by a --skip_bad_files run "
            f"({names_shown(skipped)})"
        )
    count = schema.count_records(shard)
    if count != side.get("num_examples"):
        held = "a partial record" if count is None else f"{count} record(s)"
        return False, f"truncated: holds {held}, {side.get('num_examples')} were written"
    inputs = side.get("inputs")
    if inputs is None:
        return False, "no fingerprints of its audio files (made by an older version)"
    mode = data_cfg.fingerprint if own else "size"
    if mode == "sha256" and not all(
        "sha256" in (inputs.get(n) or {}) for n in plan.rows["filename"]
    ):
        return False, (
            "no content hashes of its audio (computed with --fingerprint=stat), so "
            "--fingerprint=sha256 cannot check it"
        )
    changed = [
        name
        for name in plan.rows["filename"]
        if _input_changed(inputs.get(name) or {}, os.path.join(data_cfg.data_dir, name), mode)
    ]
    if changed:
        return False, f"audio changed since it was computed: {names_shown(changed)}"
    return True, None


def own(plan: ShardPlan, data_cfg: DataConfig) -> bool:
    return plan.index % data_cfg.num_shards == data_cfg.shard_index


State = dict[str, tuple[bool, "str | None"]]  # {shard name: verify_shard's (usable, why not)}


def _verify_all(
    folder: str, plans: list[ShardPlan], data_cfg: DataConfig, *, stop_early: bool = False
) -> State:
    state = {}
    for p in plans:
        state[p.name] = verify_shard(folder, p, data_cfg, own=own(p, data_cfg))
        if stop_early and not state[p.name][0]:
            break
    return state


def _other_sizes(folder: str, split: str, table: pd.DataFrame, clips_per_shard: int) -> list[int]:
    """The `clips_per_shard` of the other shard sets of `split` in `folder` that fit `table`
    (read from their first sidecar), fewest shards first."""
    counts = set()
    for name in os.listdir(folder):
        m = re.fullmatch(rf"{split}-00000-of-(\d{{5}})\.tfrecord\.json", name)
        if m is not None:
            counts.add(int(m[1]))
    cut = [len(p.rows) for p in plan_shards(split, table, clips_per_shard)]  # clips per shard
    sizes = []
    for c in sorted(counts):
        try:
            with open(os.path.join(folder, f"{split}-00000-of-{c:05d}.tfrecord.json")) as f:
                size = len(json.load(f)["files"]) if c > 1 else max(1, len(table))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        other = [len(p.rows) for p in plan_shards(split, table, size)] if size else []
        if len(other) == c and other != cut:
            sizes.append(size)
    return sizes


def choose_plan(
    folder: str, split: str, table: pd.DataFrame, data_cfg: DataConfig
) -> tuple[list[ShardPlan], State]:
    """The shards of `split` and their state: the plan of `data_cfg.clips_per_shard`, unless
    that one is unfinished and the folder holds a complete, usable set made with another
    `clips_per_shard`, which is then used as it is (nothing recomputed, nothing deleted)."""
    plans = plan_shards(split, table, data_cfg.clips_per_shard)
    state = _verify_all(folder, plans, data_cfg)
    if all(ok for ok, _ in state.values()):
        return plans, state
    for size in _other_sizes(folder, split, table, data_cfg.clips_per_shard):
        other = plan_shards(split, table, size)
        other_state = _verify_all(folder, other, data_cfg, stop_early=True)
        if len(other_state) == len(other) and all(ok for ok, _ in other_state.values()):
            return other, other_state
    return plans, state


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # alive, someone else's
        return True
    return True


def _leftovers(folder: str, settled: set[str]) -> list[str]:
    """This module's files in `folder` that no run needs: temporary files of `settled` shards
    (complete, or about to be rewritten by this run) and manifest temporaries of dead processes.
    Shards of another shard count (another `clips_per_shard`) are kept: `choose_plan` uses
    them."""
    out = []
    for name in sorted(os.listdir(folder)):
        for pattern in _TEMPORARIES:
            m = pattern.fullmatch(name)
            if m is not None and m["shard"] in settled:
                out.append(name)
        mt = _MANIFEST_TMP.fullmatch(name)
        if mt is not None and not _pid_alive(int(mt["pid"])):
            out.append(name)
    return out


def remove_leftovers(folder: str, settled: set[str], log) -> None:
    names = _leftovers(folder, settled)
    for name in names:
        os.remove(os.path.join(folder, name))
    if names:
        log(
            f"precompute: removed {len(names)} leftover file(s) of earlier runs "
            f"(unfinished): {names_shown(names)}"
        )
