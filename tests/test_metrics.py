"""DCASE metrics against hand-computed examples, the 2020 log-loss formula and scikit-learn."""

import json
import math

import numpy as np
import pytest

from asc_keras.evaluation import metrics

CLASSES = ("a_cls", "b_cls", "c_cls")
# Five clips, three classes. Predictions (argmax): 0, 1, 1, 0, 2.
Y = np.array([0, 0, 1, 2, 1])
P = np.array(
    [
        [0.7, 0.2, 0.1],
        [0.2, 0.5, 0.3],
        [0.1, 0.8, 0.1],
        [0.5, 0.25, 0.25],
        [0.1, 0.1, 0.8],
    ]
)
DEVICES = ["a", "b", "a", "c", "a"]
TRUE_P = [0.7, 0.2, 0.8, 0.25, 0.1]  # probability of the true class, per clip


def sklearn_log_loss(y_true, probs, eps=1e-15):
    """sklearn.metrics.log_loss (as of DCASE 2020) written out: clip, renormalise, mean."""
    y_pred = np.clip(np.asarray(probs, dtype=np.float64), eps, 1 - eps)
    y_pred /= y_pred.sum(axis=1)[:, np.newaxis]
    onehot = np.eye(y_pred.shape[1])[np.asarray(y_true)]
    return float(np.mean(-(onehot * np.log(y_pred)).sum(axis=1)))


def test_hand_example_all_devices():
    m = metrics.compute_metrics(Y, P, DEVICES, CLASSES, device_order=("a", "b", "c", "s1"))
    a = m["all"]
    assert a["num_examples"] == 5
    # class-wise accuracy: class 0 1/2, class 1 1/2, class 2 0/1 -> macro 1/3; micro 2/5.
    assert a["class_wise"]["a_cls"]["accuracy"] == pytest.approx(0.5)
    assert a["class_wise"]["b_cls"]["accuracy"] == pytest.approx(0.5)
    assert a["class_wise"]["c_cls"]["accuracy"] == pytest.approx(0.0)
    assert a["accuracy"] == pytest.approx(1 / 3)
    assert a["micro_accuracy"] == pytest.approx(0.4)
    losses = [-math.log(p) for p in TRUE_P]
    assert a["log_loss"] == pytest.approx(np.mean(losses))
    assert a["log_loss"] == pytest.approx(sklearn_log_loss(Y, P))
    assert a["class_wise"]["a_cls"]["log_loss"] == pytest.approx((losses[0] + losses[1]) / 2)
    assert a["class_wise"]["c_cls"]["log_loss"] == pytest.approx(losses[3])
    assert a["macro_log_loss"] == pytest.approx(
        np.mean([(losses[0] + losses[1]) / 2, (losses[2] + losses[4]) / 2, losses[3]])
    )
    assert a["confusion_matrix"] == [[1, 1, 0], [0, 1, 1], [1, 0, 0]]
    assert list(a["device_wise"]) == ["a", "b", "c"]
    assert a["device_wise"]["a"] == {
        "accuracy": pytest.approx(2 / 3),
        "log_loss": pytest.approx((losses[0] + losses[2] + losses[4]) / 3),
        "num_examples": 3,
    }
    assert a["device_wise"]["b"]["accuracy"] == 0.0
    json.dumps(m)  # JSON-ready


def test_device_a_subset():
    m = metrics.compute_metrics(Y, P, DEVICES, CLASSES)["device_a"]
    # device a: clips 0, 2, 4 with labels 0, 1, 1 and predictions 0, 1, 2.
    assert m["num_examples"] == 3
    assert m["class_wise"]["c_cls"] == {"accuracy": None, "log_loss": None, "num_examples": 0}
    assert m["accuracy"] == pytest.approx((1.0 + 0.5) / 2)  # classes present only
    assert m["micro_accuracy"] == pytest.approx(2 / 3)
    assert m["log_loss"] == pytest.approx(sklearn_log_loss(Y[[0, 2, 4]], P[[0, 2, 4]]))
    assert m["confusion_matrix"] == [[1, 0, 0], [0, 1, 1], [0, 0, 0]]
    assert list(m["device_wise"]) == ["a"]


def test_no_device_a_gives_none():
    m = metrics.compute_metrics(Y, P, ["b"] * 5, CLASSES)
    assert m["device_a"] is None and m["all"]["num_examples"] == 5


def test_log_loss_clipping_and_renormalisation():
    eps = 1e-15
    # A zero probability for the true class is clipped to eps: -log(1e-15) = 34.54.
    y = np.array([0, 0])
    p = np.array([[0.0, 1.0], [1.0, 0.0]])
    per = metrics.per_example_log_loss(y, p)
    assert per[0] == pytest.approx(-math.log(eps / (eps + 1 - eps)))
    assert per[0] == pytest.approx(34.538776394910684)
    assert per[1] == pytest.approx(0.0, abs=1e-12)
    assert metrics.log_loss(y, p) == pytest.approx(sklearn_log_loss(y, p))
    # Rows that do not sum to one are renormalised (sklearn): [2, 2] -> [0.5, 0.5].
    assert metrics.log_loss([1], [[2.0, 2.0]]) == pytest.approx(math.log(2))
    # A larger eps changes the clipped value.
    assert metrics.log_loss([0], [[0.0, 1.0]], eps=1e-7) == pytest.approx(
        sklearn_log_loss([0], [[0.0, 1.0]], eps=1e-7)
    )


def test_log_loss_matches_sklearn_formula_on_random_data():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 4)) * 5
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    p[:3, 0] = 0.0  # a few hard zeros
    y = rng.integers(0, 4, size=50)
    assert metrics.log_loss(y, p) == pytest.approx(sklearn_log_loss(y, p), rel=1e-12)


def test_confusion_matrix_counts():
    cm = metrics.confusion_matrix([0, 1, 1, 2, 2, 2], [0, 1, 2, 2, 2, 0], 3)
    np.testing.assert_array_equal(cm, [[1, 0, 0], [0, 1, 1], [1, 0, 2]])
    assert cm.sum() == 6


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="unlabeled"):
        metrics.compute_metrics([0, -1], P[:2], ["a", "a"], CLASSES)
    with pytest.raises(ValueError, match="probs must be"):
        metrics.compute_metrics([0], [[1.0, 0.0]], ["a"], CLASSES)
    with pytest.raises(ValueError, match="lengths differ"):
        metrics.compute_metrics([0, 1], P[:2], ["a"], CLASSES)


# ---------------------------------------------------------------------------------------------
# scikit-learn as the oracle: log loss, balanced (macro) accuracy, confusion matrix.


def _random_case(seed, n=240, num_classes=5, devices=("a", "b", "c", "s1", "s2")):
    """Random labelled clips on several devices, every class present on every device."""
    rng = np.random.default_rng(seed)
    y = np.tile(np.arange(num_classes), n // num_classes)  # [N], every class present
    rng.shuffle(y)
    logits = rng.normal(size=(n, num_classes)) * 2.0 + 1.5 * np.eye(num_classes)[y]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)  # [N, C], far from 0 and 1
    d = np.asarray(devices, dtype=object)[np.arange(n) % len(devices)]
    rng.shuffle(d)
    return y, p, list(d)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_equal_sklearn(seed):
    sk = pytest.importorskip("sklearn.metrics")
    classes = tuple(f"cls{c}" for c in range(5))
    y, p, devices = _random_case(seed)
    assert 1e-6 < p.min() and p.max() < 1 - 1e-6  # no clipping: any sklearn version agrees
    pred = p.argmax(axis=1)
    m = metrics.compute_metrics(y, p, devices, classes, device_order=("a", "b", "c"))
    labels = list(range(len(classes)))
    d = np.asarray(devices)
    for key, mask in (("all", np.ones(len(y), bool)), ("device_a", d == "a")):
        entry, yy, pp = m[key], y[mask], p[mask]
        assert entry["num_examples"] == int(mask.sum())
        assert entry["log_loss"] == pytest.approx(sk.log_loss(yy, pp, labels=labels), rel=1e-10)
        # DCASE accuracy = macro class-wise accuracy = sklearn's balanced accuracy (every class
        # present); micro accuracy = sklearn's accuracy.
        assert entry["accuracy"] == pytest.approx(
            sk.balanced_accuracy_score(yy, pred[mask]), rel=1e-12
        )
        assert entry["micro_accuracy"] == pytest.approx(sk.accuracy_score(yy, pred[mask]))
        np.testing.assert_array_equal(
            entry["confusion_matrix"], sk.confusion_matrix(yy, pred[mask], labels=labels)
        )
        recall = sk.recall_score(yy, pred[mask], labels=labels, average=None)
        for c, name in enumerate(classes):
            assert entry["class_wise"][name]["accuracy"] == pytest.approx(recall[c])
            sel = yy == c
            assert entry["class_wise"][name]["log_loss"] == pytest.approx(
                sk.log_loss(yy[sel], pp[sel], labels=labels), rel=1e-10
            )
    assert list(m["all"]["device_wise"]) == ["a", "b", "c", "s1", "s2"]
    for dev, entry in m["all"]["device_wise"].items():
        sel = d == dev
        assert entry["num_examples"] == int(sel.sum())
        assert entry["accuracy"] == pytest.approx(sk.accuracy_score(y[sel], pred[sel]))
        assert entry["log_loss"] == pytest.approx(
            sk.log_loss(y[sel], p[sel], labels=labels), rel=1e-10
        )
    # The standalone helpers agree too.
    assert metrics.log_loss(y, p) == pytest.approx(sk.log_loss(y, p), rel=1e-10)
    np.testing.assert_array_equal(
        metrics.confusion_matrix(y, pred, len(classes)), sk.confusion_matrix(y, pred, labels=labels)
    )


def test_log_loss_with_hard_zeros_equals_sklearn_on_clipped_input():
    """With exact zeros, the 2020 rule (clip at 1e-15, renormalise) is applied first; sklearn on
    the already clipped probabilities (which it leaves unchanged) gives the same number."""
    sk = pytest.importorskip("sklearn.metrics")
    y, p, _ = _random_case(3, n=60, num_classes=4)
    p[:5] = np.eye(4)[(y[:5] + 1) % 4]  # five confident misses: true class exactly 0
    p[5:10] = np.eye(4)[y[5:10]]  # five confident hits: true class exactly 1
    clipped = metrics.clip_probs(p)
    assert metrics.log_loss(y, p) == pytest.approx(sk.log_loss(y, clipped), rel=1e-9)
    assert metrics.log_loss(y, p) > 5 * 34.5 / 60  # the misses cost -log(1e-15) each
