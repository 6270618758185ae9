"""A gradient-boosted-trees baseline (LightGBM) on the same split and the same 13 inputs.

It answers the question a reader should ask of any neural network on tabular data: does it
beat a strong off-the-shelf model? Used by chapter 4 and by bench/train_quality.py.
"""
import time

from census import data, metrics, schema

PARAMS = dict(objective="binary", learning_rate=0.05, num_leaves=31, min_data_in_leaf=20,
              bagging_fraction=0.8, bagging_freq=1, feature_fraction=0.8, seed=0,
              num_threads=1, deterministic=True, force_col_wise=True, verbose=-1)
# One thread: OpenMP threads that busy-wait collapse when the cores are shared (with the
# TensorFlow runtime in the same notebook, or with other jobs): 33 s instead of 2 s, measured.
ROUNDS = 400


def features(frame):
    """The model's 13 inputs (no fnlwgt), categories as pandas categories; and the 0/1 label."""
    import pandas as pd
    x = frame[list(schema.INPUT_COLUMNS)].copy()
    for column, vocabulary in schema.VOCABULARIES.items():
        x[column] = pd.Categorical(x[column], categories=list(vocabulary))
    y = (frame[schema.LABEL_COLUMN] == schema.HIGH).astype(int)
    return x, y


def lightgbm_baseline(train_path, score_paths, **params):
    """Fit LightGBM (`PARAMS`, updated by `params`; `ROUNDS` rounds) on the CSV file
    `train_path`, then score the fitted model on each file of `score_paths` ({name: path}).
    Returns {name: {"accuracy": float, "auc": float}} and "seconds": the fit's wall time. The
    AUC is exact: `census.metrics.roc_auc`."""
    import lightgbm

    x_train, y_train = features(data.load_frame(train_path))
    start = time.perf_counter()
    booster = lightgbm.train(dict(PARAMS, **params), lightgbm.Dataset(x_train, y_train),
                             num_boost_round=ROUNDS)
    results = {"seconds": round(time.perf_counter() - start, 2)}
    for name, path in score_paths.items():
        x, y = features(data.load_frame(path))
        probability, y = booster.predict(x), y.to_numpy()
        results[name] = {"accuracy": float(((probability > 0.5) == y).mean()),
                         "auc": metrics.roc_auc(y, probability)}
    return results

