"""The course's reported scores, computed exactly from labels and scores (numpy only, no
TensorFlow): one AUC for every model a table compares.

`keras.metrics.AUC`, the training metric (`census.model`), approximates the area with a
Riemann sum over 200 fixed thresholds: good enough to follow training and to pick the best
export, but not the figure to set beside another model's. `roc_auc` is exact, from the ranks.
It is our own 15 lines because the package's core (the trainer, `predict.score`) needs only
numpy: scikit-learn's `roc_auc_score` and SciPy's `mannwhitneyu` compute the same figure
(the tests check it against the definition), but neither is a dependency of the trainer
that Vertex AI installs.
"""
import numpy as np


def roc_auc(labels, scores):
    """Exact area under the ROC curve: the chance that a random positive (label 1) gets a
    higher score than a random negative (label 0), ties counting half (the Mann-Whitney U
    statistic, with average ranks). `labels`: 0/1 (or bool); `scores`: any values that rank
    the examples, probabilities or logits alike (the AUC depends only on their order), both
    array-likes of one length. Raises ValueError unless both classes are present."""
    labels = np.asarray(labels).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"{labels.size} labels but {scores.size} scores")
    positives = labels == 1
    n_pos = int(positives.sum())
    n_neg = labels.size - n_pos
    if not n_pos or not n_neg:
        raise ValueError("the AUC needs positive and negative examples both: got "
                         f"{n_pos} positive and {n_neg} negative")
    _, group, size = np.unique(scores, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(size) - (size - 1) / 2  # 1-based ranks, ties sharing their mean
    pos_ranks = average_rank[group.ravel()][positives].sum()
    return float((pos_ranks - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
