"""Chapter 3's measurement: how fast does each way of reading the CSV deliver batches?

Every variant yields the same endless stream: (dict of the 13 feature tensors, label tensor)
batches of `batch_size` rows from one CSV file. Two things are timed:

- `pipeline`: the input pipeline alone, read batch after batch from Python;
- `training`: `model.fit` fed by the variant, which is what the pipeline is for. Here the
  tf.data variants run inside TensorFlow's runtime, next to the training step, and prefetching
  can prepare the next batch while the model trains on this one.
"""
import time

import tensorflow as tf

from census import inputs, schema

_INPUT_INDEX = [schema.CSV_COLUMNS.index(c) for c in schema.INPUT_COLUMNS]
_LABEL_INDEX = schema.CSV_COLUMNS.index(schema.LABEL_COLUMN)


def python_feed(path, batch_size):
    """The feed_dict way: read and split lines in Python, hand each batch to TensorFlow."""
    def to_tensors(batch):
        columns = list(zip(*batch))
        features = {c: tf.constant([float(v) for v in columns[i]] if c in schema.NUMERIC_COLUMNS
                                   else columns[i], dtype=schema.INPUT_DTYPES[c])
                    for c, i in zip(schema.INPUT_COLUMNS, _INPUT_INDEX)}
        label = tf.constant([int(v == schema.HIGH) for v in columns[_LABEL_INDEX]],
                            tf.int32)
        return features, label

    while True:  # endless, like input_fn's repeat()
        with open(path) as lines:
            batch = []
            for line in lines:
                batch.append(line.rstrip("\n").split(", "))
                if len(batch) == batch_size:
                    yield to_tensors(batch)
                    batch = []


def per_row(path, batch_size):
    """tf.data, parsing one line at a time, then batching."""
    def parse_one(line):
        features, label = inputs.parse_csv(line[None])
        return {k: v[0] for k, v in features.items()}, label[0]
    return tf.data.TextLineDataset([path]).repeat().map(parse_one).batch(batch_size)


def batch_then_parse(path, batch_size):
    """tf.data, batching lines first so that one decode_csv call parses a whole batch."""
    return tf.data.TextLineDataset([path]).repeat().batch(batch_size).map(inputs.parse_csv)


def parallel(path, batch_size):
    """… and parsing several batches at once, on every core."""
    return (tf.data.TextLineDataset([path]).repeat().batch(batch_size)
            .map(inputs.parse_csv, num_parallel_calls=tf.data.AUTOTUNE))


def prefetched(path, batch_size):
    """… and preparing the next batches while this one is used: what census.inputs does."""
    return parallel(path, batch_size).prefetch(tf.data.AUTOTUNE)


VARIANTS = {
    "Python loop": python_feed,
    "tf.data, parse each row": per_row,
    "tf.data, batch then parse": batch_then_parse,
    "+ parallel parsing": parallel,
    "+ prefetch (census.inputs)": prefetched,
}


def pipeline_rows_per_second(variant, path, batch_size=128, batches=250):
    """Rows per second reading `batches` batches (after a short untimed warm-up)."""
    stream = iter(VARIANTS[variant](path, batch_size))
    for _ in range(5):
        next(stream)
    start = time.perf_counter()
    for _ in range(batches):
        next(stream)
    return batches * batch_size / (time.perf_counter() - start)


def training_rows_per_second(variant, path, model, batch_size=128, steps=250):
    """Rows per second of `model.fit` fed by the variant (after 20 untimed warm-up steps)."""
    model.fit(VARIANTS[variant](path, batch_size), steps_per_epoch=20, verbose=0)
    start = time.perf_counter()
    model.fit(VARIANTS[variant](path, batch_size), steps_per_epoch=steps, verbose=0)
    return steps * batch_size / (time.perf_counter() - start)


def compare(path, model=None, batch_size=128, batches=250, repeats=3,
            variants=tuple(VARIANTS)):
    """A DataFrame (variant, rows_per_s, vs_python): the pipeline alone if `model` is None,
    else training `model` for `batches` steps with each variant.

    Each variant is timed `repeats` times, the variants taking turns, and its best time is
    kept: on a shared machine the slower runs measure the neighbours, not the pipeline.
    """
    import pandas as pd
    best = dict.fromkeys(variants, 0.0)
    for _ in range(repeats):
        for v in variants:
            speed = (pipeline_rows_per_second(v, path, batch_size, batches) if model is None
                     else training_rows_per_second(v, path, model, batch_size, batches))
            best[v] = max(best[v], speed)
    results = pd.DataFrame({"variant": list(best), "rows_per_s": list(best.values())})
    results["rows_per_s"] = results["rows_per_s"].round(-1).astype(int)
    results["vs_python"] = (results["rows_per_s"] / results["rows_per_s"].iloc[0]).round(2)
    return results
