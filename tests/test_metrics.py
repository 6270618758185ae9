"""census.metrics: the exact AUC every comparison table reports."""
import numpy as np
import pytest

from census import metrics


def pairwise_auc(labels, scores):
    """The definition, pair by pair: P(positive's score > negative's), ties counting half."""
    pos = [s for s, y in zip(scores, labels) if y == 1]
    neg = [s for s, y in zip(scores, labels) if y == 0]
    return sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))


def test_roc_auc_is_the_pairwise_definition_ties_included():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.normal(labels * 0.8, 1.0), 1)  # rounded: many ties, across classes
    assert metrics.roc_auc(labels, scores) == pytest.approx(pairwise_auc(labels, scores), abs=1e-12)
    assert metrics.roc_auc([0, 1], [0.2, 0.9]) == 1.0
    assert metrics.roc_auc([1, 0], [0.2, 0.9]) == 0.0
    assert metrics.roc_auc([0, 1, 0, 1], [0.5] * 4) == 0.5


def test_roc_auc_takes_logits_or_probabilities_and_any_label_shape():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 1000).astype(np.float32)[:, None]  # as the input pipeline's
    logits = rng.normal(labels * 1.5, 1.0).astype(np.float32)
    probabilities = 1 / (1 + np.exp(-logits.astype(np.float64)))
    assert metrics.roc_auc(labels, logits) == metrics.roc_auc(labels.ravel() == 1, probabilities)


def test_roc_auc_needs_both_classes_and_one_length():
    with pytest.raises(ValueError, match="positive and negative"):
        metrics.roc_auc([1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="3 labels but 2 scores"):
        metrics.roc_auc([0, 1, 1], [0.1, 0.2])


def test_keras_auc_only_approximates_it():
    """The training metric (200 thresholds) lands near the exact figure, not on it."""
    import tf_keras as keras
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 5000)
    logits = rng.normal(labels * 2.0, 1.0)
    approximate = keras.metrics.AUC(from_logits=True)
    approximate.update_state(labels[:, None], logits[:, None])
    exact = metrics.roc_auc(labels, logits)
    assert abs(float(approximate.result()) - exact) < 0.01
