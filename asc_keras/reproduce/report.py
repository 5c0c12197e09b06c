"""Score every table row by fusing its runs, beside the paper's numbers.

For each seed, every finished run of a task predicts the evaluate split once
(`evaluation.evaluator.predict_many`: one pass over the features for all runs); each row's
probabilities are the weighted mean of its runs' (`evaluation.ensemble.fuse_probs`, the weights of
the plan) and are scored with `evaluation.evaluator.score` (macro-average accuracy and log loss,
for all devices and for device a; for a task with device groups, 1A, also the macro accuracy of
each group's clips: real a, b, c / seen s1-s3 / unseen s4-s6). A run trained on other feature
settings than the features folder read is refused (`Manifest.check_compatible`, the check
`evaluate.py` makes). Rows are reported as mean +- std over seeds; a row whose runs are not all
finished is marked missing with the runs it lacks.

Outputs (`write(out_dir, results)`): `results.json` (everything), `results.csv` (one line per
row), `results.md` (the table; its first line says when the recipe was shortened) and
`results.png` (paper vs ours per row).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from asc_keras import tasks as tasks_lib
from asc_keras.reproduce.plan import Plan
from asc_keras.reproduce.runner import run_dir

MODEL_NAME = "model.keras"
CSV_FIELDS = (
    "table",
    "config",
    "row",
    "paper_accuracy",
    "paper_log_loss",
    "paper_size",
    "accuracy_a",
    "accuracy_a_std",
    "accuracy_all",
    "accuracy_all_std",
    "log_loss_a",
    "log_loss_all",
    "difference_a",
    "accuracy_real",
    "accuracy_seen",
    "accuracy_unseen",
    "size",
    "seeds",
    "missing",
)


def _run_size(model, task: str) -> float:
    from asc_keras.models.size import model_size

    size = model_size(model)
    return size.dcase_kb if task == "1b" else size.mib_float32


def seed_probabilities(
    plan: Plan, out_dir: str, seed: int, *, manifests: Mapping[str, object], batch_size: int
) -> tuple[dict, dict, dict]:
    """Evaluate-split probabilities of every finished run of one seed.

    Returns:
        `({run: probs [N, C]}, {task: meta}, {run: size (MiB float32, 1B: DCASE KB)})`.

    Raises:
        ValueError: A run trained on other features than its task's manifest holds (one line).
    """
    from asc_keras.data.manifest import ManifestError
    from asc_keras.evaluation import evaluator
    from asc_keras.inference import predictors as predictors_lib
    from asc_keras.runs import read_run

    probs, metas, sizes = {}, {}, {}
    for task, manifest in manifests.items():
        names, members, norms = [], [], []
        for run in plan.runs:
            path = run_dir(out_dir, seed, run.name)
            if run.task != task or not os.path.exists(os.path.join(path, "metrics.json")):
                continue
            info = read_run(path)
            try:
                manifest.check_compatible(
                    info.feature_config, info.task, representations=run.model_config.inputs
                )
            except ManifestError as e:
                raise ValueError(f"{path}: not scored, trained on other features: {e}") from None
            predictor = predictors_lib.KerasPredictor.from_file(path, name=run.name)
            names.append(run.name)
            members.append(predictor)
            norms.append(info.normalization)
            sizes[run.name] = _run_size(predictor.model, task)
        if not members:
            continue
        out, meta = evaluator.predict_many(
            members, manifest, split="evaluate", normalizations=norms, batch_size=batch_size
        )
        probs.update(zip(names, out, strict=True))
        metas[task] = meta
    return probs, metas, sizes


def score_rows(
    plan: Plan, per_seed: Sequence[tuple[dict, dict]], classes: Mapping[str, tuple]
) -> dict[str, list]:
    """`{row config: [metrics per seed or {'missing': [runs]}]}` from seed probabilities."""
    from asc_keras.evaluation import ensemble, evaluator

    out = {}
    for row in plan.rows:
        scores = []
        for probs, metas in per_seed:
            missing = [name for name, _ in row.members if name not in probs]
            if missing:
                scores.append({"missing": missing})
                continue
            fused = ensemble.fuse_probs(
                [probs[n] for n, _ in row.members], weights=[w for _, w in row.members]
            )
            scores.append(evaluator.score(fused, metas[row.task], classes[row.task], task=row.task))
        out[row.config] = scores
    return out


def _mean_std(values: list) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return float(np.mean(values)), float(np.std(values))


def summarize(plan: Plan, scores: Mapping[str, list], sizes: Mapping[str, float]) -> list[dict]:
    """One result dict per row: the paper's numbers and ours (mean +- std over seeds)."""
    results = []
    for row in plan.rows:
        seeds = [s for s in scores[row.config] if s and "missing" not in s]
        missing = sorted(
            {m for s in scores[row.config] if s and "missing" in s for m in s["missing"]}
        )

        def stat(key, metric, seeds=seeds):
            return _mean_std([(s.get(key) or {}).get(metric) for s in seeds])

        acc_a, acc_a_std = stat("device_a", "accuracy")
        acc_all, acc_all_std = stat("all", "accuracy")
        ll_a, _ = stat("device_a", "log_loss")
        ll_all, _ = stat("all", "log_loss")
        groups = {}
        for group in tasks_lib.get(row.task).device_groups:
            mean, std = _mean_std(
                [((s["all"].get("device_groups") or {}).get(group) or {}).get("accuracy")
                 for s in seeds]
            )  # fmt: skip
            if mean is not None:
                groups[group] = {"accuracy": 100 * mean, "accuracy_std": 100 * std}
        size = (
            sum(sizes[n] for n, _ in row.members)
            if all(n in sizes for n, _ in row.members)
            else None
        )
        results.append(
            {
                "table": "/".join(map(str, row.paper.tables)),
                "config": row.config,
                "row": row.paper.label,
                "task": row.task,
                "paper_accuracy": row.paper.accuracy,
                "paper_log_loss": row.paper.log_loss,
                "paper_size": row.paper.size,
                "accuracy_a": None if acc_a is None else 100 * acc_a,
                "accuracy_a_std": None if acc_a_std is None else 100 * acc_a_std,
                "accuracy_all": None if acc_all is None else 100 * acc_all,
                "accuracy_all_std": None if acc_all_std is None else 100 * acc_all_std,
                "log_loss_a": ll_a,
                "log_loss_all": ll_all,
                "difference_a": None if acc_a is None else 100 * acc_a - row.paper.accuracy,
                **{
                    f"accuracy_{g}": groups.get(g, {}).get("accuracy")
                    for g in ("real", "seen", "unseen")
                },
                "groups": groups,
                "size": (
                    None
                    if size is None
                    else f"{size:.1f} KB"
                    if row.task == "1b"
                    else f"{size:.1f} MB"
                ),
                "seeds": len(seeds),
                "missing": " ".join(missing),
                "runs": [{"run": n, "weight": w} for n, w in row.members],
            }
        )
    return results


def _fmt(value, std=None, digits=1) -> str:
    if value is None:
        return "-"
    text = f"{value:.{digits}f}"
    return text + (f" ± {std:.{digits}f}" if std else "")


def _groups(r: Mapping) -> str:
    """`real / seen / unseen` accuracies (mean over seeds), '-' for a task without groups."""
    groups = r.get("groups") or {}
    if not groups:
        return "-"
    return " / ".join(_fmt(groups.get(g, {}).get("accuracy")) for g in ("real", "seen", "unseen"))


def markdown(results: Sequence[Mapping], *, banner: str) -> str:
    """The results table; `banner` (e.g. the shortened-recipe warning) is its first line."""
    lines = [
        banner,
        "",
        "| table | row | paper acc % | ours acc % (device a) | ours acc % (all) | "
        "paper log loss | ours log loss (a / all) | difference (a) | "
        "ours acc % real / seen / unseen | paper size | our size |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ours_ll = f"{_fmt(r['log_loss_a'], digits=3)} / {_fmt(r['log_loss_all'], digits=3)}"
        diff = "-" if r["difference_a"] is None else f"{r['difference_a']:+.1f}"
        missing = f" (missing: {r['missing']})" if r["missing"] else ""
        lines.append(
            f"| {r['table']} | {r['row']} (`{r['config']}`){missing} | {r['paper_accuracy']:.1f} "
            f"| {_fmt(r['accuracy_a'], r['accuracy_a_std'])} | "
            f"{_fmt(r['accuracy_all'], r['accuracy_all_std'])} | {r['paper_log_loss']:.3f} | "
            f"{ours_ll} | {diff} | {_groups(r)} | {r['paper_size']} | {r['size'] or '-'} |"
        )
    return "\n".join(lines) + "\n"


def _csv(results: Sequence[Mapping]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in results:
        writer.writerow({k: ("" if r.get(k) is None else r[k]) for k in CSV_FIELDS})
    return buf.getvalue()


def _png(results: Sequence[Mapping], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['row']} ({r['task']})" for r in results]
    y = np.arange(len(results))
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(results) + 1.5))
    ax.barh(y - 0.2, [r["paper_accuracy"] for r in results], height=0.4, label="paper")
    ax.barh(
        y + 0.2,
        [r["accuracy_a"] or 0 for r in results],
        height=0.4,
        xerr=[r["accuracy_a_std"] or 0 for r in results],
        label="ours (device a)",
    )
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("macro-average accuracy %")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(
    out_dir: str,
    results: Sequence[Mapping],
    *,
    banner: str,
    extra: Mapping,
    print_fn: Callable[[str], None] | None = print,
) -> dict[str, str]:
    """results.{md,csv,json,png} in `out_dir`; returns their paths. Prints the table."""
    from asc_keras import atomic
    from asc_keras.atomic import write_text as write_text_atomic

    paths = {ext: os.path.join(out_dir, f"results.{ext}") for ext in ("md", "csv", "json", "png")}
    text = markdown(results, banner=banner)
    write_text_atomic(paths["md"], text)
    write_text_atomic(paths["csv"], _csv(results))
    atomic.write_json(
        paths["json"],
        {"banner": banner, **dict(extra), "rows": json.loads(json.dumps(list(results)))},
    )
    _png(results, paths["png"])
    if print_fn:
        print_fn(text)
    return paths
