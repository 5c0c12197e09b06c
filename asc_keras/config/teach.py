"""TeachConfig: what `teach.py` turns into a teacher logits file (knowledge distillation).

Its fields are read from flags other configs own (`--model_dir`, `--batch_size`,
`--fusion_weights`, `--teacher`, `--out`), so it adds no flag of its own.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class TeachConfig:
    """What `teach.py` writes.

    `model_dirs`: trained runs whose (fused) probabilities teach; `import_path`: instead, a
    teacher file made elsewhere (CSV or NPZ) to check and convert; `out`: the teacher NPZ to
    write; `fusion_weights`: one weight per run (default: the parts' weights or equal);
    `batch_size`: clips per inference batch.
    """

    out: str
    model_dirs: tuple[str, ...] = ()
    import_path: str = ""
    fusion_weights: tuple[float, ...] = ()
    batch_size: int = 64

    def __post_init__(self):
        object.__setattr__(self, "model_dirs", tuple(self.model_dirs))
        object.__setattr__(self, "fusion_weights", tuple(float(w) for w in self.fusion_weights))
        if not self.out:
            raise ValueError("--out (the teacher file to write) is required")
        if bool(self.model_dirs) == bool(self.import_path):
            raise ValueError(
                "give either --model_dir (runs that teach) or --teacher (a file made elsewhere)"
            )
        if self.fusion_weights and (
            len(self.fusion_weights) != len(self.model_dirs)
            or min(self.fusion_weights) < 0
            or sum(self.fusion_weights) <= 0
        ):
            raise ValueError(
                f"fusion_weights needs {len(self.model_dirs)} non-negative weights "
                f"(one per model_dir), got {list(self.fusion_weights)}"
            )
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
