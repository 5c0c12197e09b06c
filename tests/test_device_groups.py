"""Device groups (real / seen / unseen): the task table, group accuracies against scikit-learn,
and the evaluation report's group rows."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.metrics import log_loss as sk_log_loss

from asc_keras import tasks
from asc_keras.evaluation import evaluator, metrics, report

CLASSES = tuple(f"c{i}" for i in range(4))


def _predictions(seed=0, n=180):
    rng = np.random.default_rng(seed)
    devices = np.asarray(["a", "b", "c", "s1", "s2", "s3", "s4", "s5", "s6"])[rng.integers(0, 9, n)]
    y = rng.integers(0, len(CLASSES), n)
    logits = rng.normal(size=(n, len(CLASSES))) + 1.5 * np.eye(len(CLASSES))[y]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, probs, devices


def test_tasks_define_the_dcase_groups():
    for name in ("1a", "tau2022"):
        groups = tasks.get(name).device_groups
        assert groups["real"] == ("a", "b", "c")
        assert groups["seen"] == ("s1", "s2", "s3")
        assert groups["unseen"][:3] == ("s4", "s5", "s6")
        assert {"d", "s7", "s8", "s9", "s10", "s11"} <= set(groups["unseen"])
        every = [d for members in groups.values() for d in members]
        assert len(every) == len(set(every))  # a device belongs to one group
    assert not tasks.get("1b").device_groups and not tasks.get("custom").device_groups


def test_group_accuracy_matches_sklearn_on_the_groups_clips():
    y, probs, devices = _predictions()
    groups = tasks.get("tau2022").device_groups
    out = metrics.compute_metrics(y, probs, devices, CLASSES, device_groups=groups)
    found = out["all"]["device_groups"]
    assert list(found) == ["real", "seen", "unseen"]
    pred = probs.argmax(axis=1)
    for name, members in groups.items():
        mask = np.isin(devices, members)
        assert found[name]["num_examples"] == int(mask.sum())
        assert found[name]["accuracy"] == pytest.approx(
            balanced_accuracy_score(y[mask], pred[mask]), abs=1e-12
        )
        assert found[name]["micro_accuracy"] == pytest.approx(
            accuracy_score(y[mask], pred[mask]), abs=1e-12
        )
        assert found[name]["log_loss"] == pytest.approx(
            sk_log_loss(y[mask], probs[mask], labels=range(len(CLASSES))), abs=1e-9
        )
    # Macro over the group's clips, not the mean of its devices' accuracies.
    real = [out["all"]["device_wise"][d]["accuracy"] for d in ("a", "b", "c")]
    assert found["real"]["accuracy"] != pytest.approx(np.mean(real), abs=1e-9)


def test_groups_without_clips_are_left_out_and_names_match_any_case():
    y, probs, _ = _predictions(n=40)
    devices = np.asarray(["A", "S7"] * 20)
    found = metrics.group_metrics(y, probs, devices, CLASSES, tasks.get("tau2022").device_groups)
    assert set(found) == {"real", "unseen"}
    assert found["unseen"]["devices"] == ["S7"]
    assert "device_groups" not in metrics.compute_metrics(y, probs, devices, CLASSES)["all"]


def test_scores_and_reports_show_groups_only_for_tasks_that_define_them():
    y, probs, devices = _predictions(n=90)
    meta = {"label": y, "device": devices}
    scored = evaluator.score(probs, meta, CLASSES, task="tau2022")
    table = report.format_table(scored, CLASSES)
    assert "per device group (macro acc over the group's clips)" in table
    real = scored["all"]["device_groups"]["real"]["accuracy"]
    assert "  real (a, b, c)" in table and f"{100 * real:6.2f}" in table
    meta_a = {"label": y, "device": np.asarray(["a"] * len(y))}
    plain = evaluator.score(probs, meta_a, CLASSES, task="1b")
    assert "device_groups" not in plain["all"]
    assert "device group" not in report.format_table(plain, CLASSES)
