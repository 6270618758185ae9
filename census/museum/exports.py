"""Two exports run side by side in one TensorFlow (the appendix): the 2017 code's and today's
take the same 13 named inputs (`census.schema.INPUT_COLUMNS`: float32 numbers, strings as the
files spell them), so one reader feeds both and one exact AUC (`census.metrics.roc_auc`)
scores both. It runs in TensorFlow 2.15 as in 2.21: TensorFlow is imported when called.
"""
import csv

import numpy as np

from census import schema, signature
from census.metrics import roc_auc


def read_split(path):
    """A cleaned split (CSV rows of `schema.CSV_COLUMNS`, no header) → ({input column: list
    of values}, labels): numbers as float, strings as the file has them (leading space
    included, as in 2017), labels an int array (1 for ">50K")."""
    features = {c: [] for c in schema.INPUT_COLUMNS}
    labels = []
    with open(path, newline="") as f:
        for row in csv.reader(f):
            if not row:
                continue
            values = dict(zip(schema.CSV_COLUMNS, row))
            for c in schema.INPUT_COLUMNS:
                features[c].append(float(values[c]) if c in schema.NUMERIC_COLUMNS else values[c])
            labels.append(schema.CLASSES.index(values[schema.LABEL_COLUMN].strip().rstrip(".")))
    return features, np.array(labels)


def load(export_dir):
    """The export's default signature as a callable, and its name: `serving_default`, or
    `predict` for an export without one (the 2017 code's: `census.signature.choose`). Raises
    `census.signature.MissingSignature`, naming the signatures it has, if neither."""
    import tensorflow as tf
    model = tf.saved_model.load(str(export_dir))
    name = signature.choose(None, model.signatures)
    function = model.signatures[name]
    function.loaded_model = model  # its variables live as long as the function is used
    return function, name


def predict(export_dir, features, batch_size=1000):
    """Every output of the export's servable signature (`load`) on `features` ({input
    column: list of n values}), in batches: {output key: array of n rows}."""
    import tensorflow as tf
    function, _ = load(export_dir)
    n = len(next(iter(features.values())))
    parts = []
    for start in range(0, n, batch_size):
        feeds = {c: tf.constant(values[start:start + batch_size],
                                tf.float32 if c in schema.NUMERIC_COLUMNS else tf.string)
                 for c, values in features.items()}
        parts.append({k: v.numpy() for k, v in function(**feeds).items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def score(export_dir, path):
    """The export's `accuracy` (a person is ">50K" when the logit is above 0) and exact `auc`
    on the cleaned split at `path`, and its number of `rows`."""
    features, labels = read_split(path)
    logits = predict(export_dir, features)["logits"].ravel()
    return {"accuracy": float(np.mean((logits > 0) == labels)), "auc": roc_auc(labels, logits),
            "rows": int(labels.size)}
