"""The DCASE 2024/25 recipe on the synthetic TAU 2022 set: the 128 kB student alone, with
Freq-MixStyle, with DIR augmentation, distilled from one big CNN and from the paper's
SPSMR + SPSMF + SPSMT ensemble, and fine-tuned per device; several seeds each.

    python bench/recipe_bench.py [--out=DIR] [--seeds=3] [--steps=250] [--teacher_steps=300]
        [--finetune_steps=60] [--clips_per_class=20]

Every run is the command a user types on the real data (printed at the end with
`--data_dir=/data/TAU-2022-mobile`), trained here in one process from exactly those flags. The
student is `configs/tau2022_ef_spsmt.flags` as it is; the teachers are `configs/1a_logmel.flags`
(one CNN, width 0.25) and `configs/1a_spsmr_spsmf_spsmt.flags` (24 CNNs, width 0.125), both with
`--task=tau2022`, trained once (seed 0). Scores: macro class accuracy on the evaluate split, the
device groups (real a-c, seen s1-s3, unseen s4-s6: the mean of their per-device accuracies) and
log loss, mean +- std over seeds; the student's int8 parameter bytes and MACs per clip with the
task's rule. Synthetic numbers show that the machinery works, not what it is worth on real data.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

CONFIGS = os.path.join(REPO, "configs")
STUDENT = os.path.join(CONFIGS, "tau2022_ef_spsmt.flags")
TEACHERS = {
    "one CNN (1A Log-Mel, width 0.25)": (
        os.path.join(CONFIGS, "1a_logmel.flags"),
        ("--task=tau2022", "--width=0.25"),
    ),
    "SPSMR + SPSMF + SPSMT (24 CNNs, width 0.125)": (
        os.path.join(CONFIGS, "1a_spsmr_spsmf_spsmt.flags"),
        ("--task=tau2022", "--width=0.125"),
    ),
}
MIXSTYLE = ("--freq_mixstyle_p=0.4", "--freq_mixstyle_alpha=0.3")
TRAIN_DEVICES = ("a", "b", "c", "s1", "s2", "s3")
GROUPS = ("real", "seen", "unseen")


def _train(flagfile: str, extra: tuple[str, ...], *, log) -> str:
    """Train one run in this process from `flagfile` + `extra`; returns its model_dir."""
    from asc_keras import flags as flags_lib
    from asc_keras.training import trainer

    fv = flags_lib.flagfile_values(flagfile, extra)
    feature_cfg = flags_lib.feature_config(fv, log=lambda _: None)
    train_cfg = flags_lib.train_config(fv)
    if os.path.exists(os.path.join(train_cfg.model_dir, "metrics.json")):
        return train_cfg.model_dir
    log(f"train {os.path.basename(flagfile)} {' '.join(extra)}")
    trainer.run(
        feature_cfg,
        flags_lib.data_config(fv),
        flags_lib.model_config(feature_cfg, fv),
        train_cfg,
        flags_text=flags_lib.resolved_flags(fv),
        progress=False,
        log=lambda _: None,
    )
    return train_cfg.model_dir


def _script(name: str, *args: str, log_path: str) -> None:
    """Run one of the repository's scripts, its output into `log_path` (shown on failure)."""
    with open(log_path, "w") as f:
        done = subprocess.run(
            [sys.executable, os.path.join(REPO, name), *args], stdout=f, stderr=subprocess.STDOUT
        )
    if done.returncode:
        with open(log_path) as f:
            sys.exit(f"{name} failed:\n{f.read()[-3000:]}")


def _scores(metrics: dict) -> dict:
    """Macro accuracy %, log loss and each device group's macro accuracy % (the task's groups,
    `metrics.json`'s `device_groups`)."""
    groups = metrics["all"]["device_groups"]
    out = {"acc": 100 * metrics["all"]["accuracy"], "log_loss": metrics["all"]["log_loss"]}
    for group in GROUPS:
        out[group] = 100 * groups[group]["accuracy"] if group in groups else float("nan")
    return out


def _read(model_dir: str, name: str = "metrics.json") -> dict:
    with open(os.path.join(model_dir, name)) as f:
        return json.load(f)


def _mean_std(values) -> str:
    values = np.asarray(values, float)
    return f"{values.mean():.1f} +- {values.std(ddof=1) if len(values) > 1 else 0.0:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        default=os.path.join(os.path.expanduser("~"), ".cache", "asc_keras", "recipe_bench"),
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=250)
    parser.add_argument("--teacher_steps", type=int, default=300)
    parser.add_argument("--finetune_steps", type=int, default=60)
    parser.add_argument("--clips_per_class", type=int, default=20)
    parser.add_argument("--batch_size", type=int, default=32)
    args = parser.parse_args()

    from asc_keras.cli import quiet

    quiet.setup(sys.argv)  # before TensorFlow loads: no native log lines unless asked
    quiet.quiet_python_logs()
    from asc_keras.data import synthetic

    data = os.path.join(args.out, "data")
    irs = os.path.join(data, "device_irs")
    if not os.path.exists(os.path.join(data, "meta.csv")):
        synthetic.generate(
            data, task="tau2022", clips_per_class=args.clips_per_class, clip_seconds=1.0, seed=7
        )
    if not os.path.isdir(irs):
        from asc_keras.data.synthetic.irs import write_device_irs

        write_device_irs(data, 8, seed=7)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    def common(steps: int, model_dir: str, seed: int) -> tuple[str, ...]:
        return (
            f"--data_dir={data}",
            f"--features_dir={os.path.join(args.out, 'features')}",
            f"--model_dir={model_dir}",
            f"--train_steps={steps}",
            f"--batch_size={args.batch_size}",
            f"--eval_every={steps}",
            f"--checkpoint_every={steps}",
            f"--log_every={min(50, steps)}",
            f"--seed={seed}",
        )

    runs = os.path.join(args.out, "runs")
    teacher_files = {}
    teacher_scores = {}
    for i, (name, (flagfile, extra)) in enumerate(TEACHERS.items()):
        model_dir = os.path.join(runs, f"teacher{i}")
        _train(flagfile, common(args.teacher_steps, model_dir, 0) + extra, log=log)
        teacher_scores[name] = _scores(_read(model_dir))
        out = os.path.join(args.out, f"teacher{i}.npz")
        if not os.path.exists(out):
            _script(
                "teach.py",
                f"--model_dir={model_dir}",
                f"--data_dir={data}",
                f"--features_dir={os.path.join(args.out, 'features')}",
                f"--out={out}",
                log_path=out + ".log",
            )
        teacher_files[name] = out

    rows = student_rows(irs, teacher_files)
    results = {}
    for r, (row, extra) in enumerate(rows.items()):
        results[row] = []
        for seed in range(args.seeds):
            model_dir = os.path.join(runs, f"row{r}", f"seed{seed}")
            _train(STUDENT, common(args.steps, model_dir, seed) + extra, log=log)
            results[row].append(_scores(_read(model_dir)))

    # Per-device fine-tuning of the plain students (row 0), scored with the device models.
    row = f"+ per-device fine-tuning ({args.finetune_steps} steps per device)"
    results[row] = []
    for seed in range(args.seeds):
        general = os.path.join(runs, "row0", f"seed{seed}")
        folder = os.path.join(runs, "per_device", f"seed{seed}")
        for device in TRAIN_DEVICES:
            _train(
                STUDENT,
                common(args.finetune_steps, os.path.join(folder, device), seed)
                + (f"--init_from={general}", f"--train_devices={device}", "--learning_rate=5e-4"),
                log=log,
            )
        scored = os.path.join(folder, "evaluation")
        if not os.path.exists(os.path.join(scored, "metrics.json")):
            _script(
                "evaluate.py",
                f"--model_dir={general}",
                f"--device_models={folder}",
                f"--data_dir={data}",
                f"--features_dir={os.path.join(args.out, 'features')}",
                f"--out_dir={scored}",
                log_path=os.path.join(folder, "evaluate.log"),
            )
        results[row].append(_scores(_read(os.path.join(scored, "per_device"))))

    from asc_keras import flags as flags_lib
    from asc_keras.models import rules
    from asc_keras.strategies import build

    fv = flags_lib.flagfile_values(STUDENT, (f"--data_dir={data}", "--model_dir=/unused"))
    feature_cfg = flags_lib.feature_config(fv, log=lambda _: None)
    size = rules.size_summary(build.build_model(flags_lib.model_config(feature_cfg, fv)), fv.task)

    print(
        f"synthetic TAU 2022 ({args.clips_per_class} device-a segments per class, 1 s clips), "
        f"{args.steps} steps of batch {args.batch_size}, seeds 0-{args.seeds - 1}"
    )
    print("student (every row): " + " ".join(line.strip() for line in rules.rule_lines(size)))
    print()
    print("| system | accuracy % | real a-c % | seen s1-s3 % | unseen s4-s6 % | log loss |")
    print("|---|---|---|---|---|---|")
    for name, s in teacher_scores.items():
        print(
            f"| teacher: {name} (seed 0) | {s['acc']:.1f} | {s['real']:.1f} | {s['seen']:.1f} | "
            f"{s['unseen']:.1f} | {s['log_loss']:.3f} |"
        )
    for row, scores in results.items():
        cells = [_mean_std([s[k] for s in scores]) for k in ("acc", "real", "seen", "unseen")]
        losses = np.array([s["log_loss"] for s in scores])
        print(f"| {row} | {' | '.join(cells)} | {losses.mean():.3f} |")
    print()
    print("The same systems on the real data (TAU Urban Acoustic Scenes 2022 Mobile, MicIRP):")
    for line in real_commands():
        print(f"    {line}")


def student_rows(irs: str, teachers: dict) -> dict:
    """`{row: extra train.py flags}` of the student systems, with the IR folder and the teacher
    files `{teacher name: path}` given."""
    rows = {
        "student alone": (),
        "+ Freq-MixStyle (p 0.4, alpha 0.3)": MIXSTYLE,
        "+ DIR (4 copies, p 0.6)": (f"--dir_folder={irs}", "--dir_copies=4", "--dir_p=0.6"),
    }
    for name, path in teachers.items():
        rows[f"KD from {name}"] = (f"--teacher={path}", "--kd_lambda=0.02", "--kd_temperature=2")
    return rows


def real_commands() -> list[str]:
    """The command lines of every system of the table on the real data, at the real recipe."""
    data = "--data_dir=/data/TAU-2022-mobile"
    student = f"python train.py --flagfile={os.path.relpath(STUDENT, REPO)} {data}"
    out = []
    for i, (flagfile, extra) in enumerate(TEACHERS.values()):
        name = os.path.relpath(flagfile, REPO)
        out.append(
            f"python train.py --flagfile={name} {' '.join(extra)} {data} "
            f"--model_dir=runs/teacher{i}"
        )
        out.append(f"python teach.py --model_dir=runs/teacher{i} {data} --out=teacher{i}.npz")
    teachers = {name: f"teacher{i}.npz" for i, name in enumerate(TEACHERS)}
    for r, extra in enumerate(student_rows("/data/MicIRP", teachers).values()):
        out.append(f"{student} --model_dir=runs/row{r} {' '.join(extra)}".rstrip())
    for device in TRAIN_DEVICES:
        out.append(
            f"{student} --model_dir=runs/per_device/{device} --init_from=runs/row0 "
            f"--train_devices={device} --learning_rate=5e-4"
        )
    out.append(f"python evaluate.py --model_dir=runs/row0 --device_models=runs/per_device {data}")
    return out


if __name__ == "__main__":
    main()
