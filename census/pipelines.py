"""Input pipelines compared (chapter 3): from a Python loop to sharded, interleaved tf.data.

Every variant reads the same CSV lines and yields the same batches, `(features, labels)` as
`census.inputs.parse_csv` makes them: a dict of the 13 feature tensors and int32 labels,
`batch_size` rows each. `files` is a path or a list of paths; `epochs=None` repeats forever.
All read the files in order, except `interleaved`, which reads several files side by side:
the same rows, in another order.

The timers follow TensorFlow's guide "Better performance with the tf.data API": a few untimed
batches first, then a fixed number of batches, rows counted. A training step can be simulated
by a pause after each batch, as the guide does: it stands for a step that runs on an
accelerator while the CPU prepares the next batch (or, without prefetching, waits).
"""
import os
import time
from pathlib import Path

import tensorflow as tf
import tf_keras as keras

from census import inputs, model as census_model, schema


def python_feed(files, batch_size, epochs=None):
    """The `feed_dict` way: lines read and split in Python, each batch handed to TensorFlow.

    Batches run on across files and passes, as `TextLineDataset(files).repeat().batch()`
    does; with `epochs` set, the last batch may be short. Local files only."""
    paths = [files] if isinstance(files, (str, os.PathLike)) else list(files)
    columns = {name: schema.CSV_COLUMNS.index(name) for name in schema.INPUT_COLUMNS}
    label_at = schema.CSV_COLUMNS.index(schema.LABEL_COLUMN)

    def to_tensors(rows):
        fields = list(zip(*rows))
        features = {name: tf.constant([float(v) for v in fields[i]], tf.float32)
                    if name in schema.NUMERIC_COLUMNS else tf.constant(fields[i], tf.string)
                    for name, i in columns.items()}
        labels = [int(v.strip().rstrip(".") == schema.HIGH) for v in fields[label_at]]
        return features, tf.constant(labels, tf.int32)

    rows, done = [], 0
    while epochs is None or done < epochs:
        for path in paths:
            with open(path) as lines:
                for line in lines:
                    rows.append(line.rstrip("\n").split(","))
                    if len(rows) == batch_size:
                        yield to_tensors(rows)
                        rows = []
        done += 1
    if rows:
        yield to_tensors(rows)


def per_row(files, batch_size, epochs=None):
    """tf.data as the 2017 sample used it: each line parsed on its own, then batched."""
    def parse_line(line):
        features, label = inputs.parse_csv(line[None])
        return {name: column[0] for name, column in features.items()}, label[0]
    return tf.data.TextLineDataset(files).map(parse_line).repeat(epochs).batch(batch_size)


def batch_then_parse(files, batch_size, epochs=None):
    """Lines batched first, so that one `decode_csv` call parses a whole batch."""
    return (tf.data.TextLineDataset(files).repeat(epochs).batch(batch_size)
            .map(inputs.parse_csv))


def parallel_parse(files, batch_size, epochs=None):
    """… and several batches parsed at once, as many as the tf.data runtime chooses."""
    return (tf.data.TextLineDataset(files).repeat(epochs).batch(batch_size)
            .map(inputs.parse_csv, num_parallel_calls=tf.data.AUTOTUNE))


def prefetched(files, batch_size, epochs=None):
    """… and the next batches prepared in the background: `census.inputs.input_fn`.

    Unshuffled, so that it yields the same batches as the variants above."""
    return inputs.input_fn(files, num_epochs=epochs, shuffle=False, batch_size=batch_size)


def interleaved(files, batch_size, epochs=None, deterministic=False):
    """Shards read side by side (`list_files` + `interleave`), parsed in parallel, prefetched.

    `files`: a glob pattern (expanded by `Dataset.list_files`) or a list of paths (taken as
    they are, as `list_files`'s documentation advises for names already known). `interleave`
    reads several files at once in background threads and takes a block of `batch_size` lines
    from each in turn; `deterministic=False` lets a file that is ready go before one that is
    not. The same rows as reading the files in order, in another order."""
    names = (tf.data.Dataset.list_files(str(files), shuffle=False)  # a glob pattern
             if isinstance(files, (str, os.PathLike))
             else tf.data.Dataset.from_tensor_slices([str(f) for f in files]))  # names known
    return (names
            .repeat(epochs)
            .interleave(tf.data.TextLineDataset, block_length=batch_size,
                        num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
            .batch(batch_size)
            .map(inputs.parse_csv, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


VARIANTS = {
    "Python loop": python_feed,
    "tf.data, parse each row (2017)": per_row,
    "tf.data, batch then parse": batch_then_parse,
    "+ parallel parse": parallel_parse,
    "+ prefetch = census.inputs": prefetched,
    "list_files + interleave": interleaved,
}
BASELINE = "Python loop"


def linear_model(learning_rate=0.01):
    """A cheap model to train: the wide part of chapter 2's model alone (a linear model over
    the same one-hot features and crosses), compiled. Its step is short, so that training
    waits for its input where the wide & deep model would not."""
    raw = census_model.raw_inputs()
    indices, sizes = census_model.feature_indices(dict(raw, **census_model.clip_numbers(raw)))
    linear = keras.Model(raw, census_model.wide_logit(indices, sizes), name="linear")
    linear.compile(optimizer=keras.optimizers.Adam(learning_rate),
                   loss=keras.losses.BinaryCrossentropy(from_logits=True))
    return linear


def write_shards(source, folder, shards=8, copies=10):
    """A larger copy of a CSV file for chapter 3: `copies` passes over its lines, dealt in turn
    into `shards` files `folder/part-00000-of-00008.csv` …; returns their paths, sorted. Each
    line of the copy lands in exactly one shard. Shards left by an earlier call are replaced."""
    if shards < 1 or copies < 1:
        raise ValueError(f"shards and copies must be at least 1, not {shards} and {copies}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("part-*-of-*.csv"):
        old.unlink()
    with open(source) as f:
        lines = [line if line.endswith("\n") else line + "\n" for line in f]
    copy = lines * copies
    paths = []
    for i in range(shards):
        path = folder / f"part-{i:05d}-of-{shards:05d}.csv"
        with open(path, "w") as out:
            out.writelines(copy[i::shards])
        paths.append(str(path))
    return paths


def rows_per_second(dataset, batches, warmup=5, step_seconds=0.0):
    """Rows per second delivered by `dataset` (a tf.data.Dataset or any iterable of
    `(features, labels)` batches) over `batches` batches, after `warmup` untimed ones. With
    `step_seconds`, the reader pauses that long after each batch: a simulated training step."""
    stream = iter(dataset)
    for _ in range(warmup):
        next(stream)
    rows = 0
    start = time.perf_counter()
    for _ in range(batches):
        _, labels = next(stream)
        rows += int(labels.shape[0])
        if step_seconds:
            time.sleep(step_seconds)
    return rows / (time.perf_counter() - start)


def training_rows_per_second(dataset_fn, model, steps, batch_size, warmup=20):
    """Rows per second of `model.fit` on `dataset_fn()` (an endless stream of batches of
    `batch_size` rows): one call of `warmup + steps` steps, timed from the start of step
    `warmup` to the end, so that neither `fit`'s set-up nor its first steps count."""
    marks = {}

    def clock(batch, logs=None):
        if batch == warmup:
            marks["start"] = time.perf_counter()
    timer = keras.callbacks.LambdaCallback(
        on_train_batch_begin=clock,
        on_train_end=lambda logs=None: marks.setdefault("end", time.perf_counter()))
    model.fit(dataset_fn(), steps_per_epoch=warmup + steps, epochs=1, verbose=0,
              callbacks=[timer])
    return steps * batch_size / (marks["end"] - marks["start"])


def compare(files, variants=tuple(VARIANTS), batch_size=128, batches=250, repeats=3,
            step_seconds=0.0, model=None):
    """A DataFrame with one row per variant (names of `VARIANTS`): `rows_per_s` and
    `vs_python`, its ratio to the Python loop (the first variant if that is not among them).

    Each variant reads `batches` batches of `batch_size` rows from `files`: the pipeline
    alone, or with a simulated step of `step_seconds` after each batch, or, with a `model`,
    training it with `model.fit`. Each variant runs `repeats` times, taking turns with the
    others, and its best run counts: on a shared machine the slower runs measure the
    neighbours, not the pipeline.
    """
    import pandas as pd
    best = dict.fromkeys(variants, 0.0)
    for _ in range(repeats):
        for name in variants:
            def make(name=name):
                return VARIANTS[name](files, batch_size)
            if model is None:
                speed = rows_per_second(make(), batches, step_seconds=step_seconds)
            else:
                speed = training_rows_per_second(make, model, batches, batch_size)
            best[name] = max(best[name], speed)
    results = pd.DataFrame({"variant": list(best), "rows_per_s": list(best.values())})
    baseline = best[BASELINE] if BASELINE in best else results["rows_per_s"].iloc[0]
    results["vs_python"] = (results["rows_per_s"] / baseline).round(2)
    results["rows_per_s"] = results["rows_per_s"].round(-1).astype(int)
    return results


def timeline(dataset, steps, step_seconds, warmup=5):
    """What the reader of `dataset` did during `steps` simulated training steps: a DataFrame
    with one row per step, `wait_start`, `wait` (seconds spent getting the batch), `step_start`
    and `step` (the pause standing for the training step), times from the first step."""
    import pandas as pd
    stream = iter(dataset)
    for _ in range(warmup):
        next(stream)
    rows, origin = [], time.perf_counter()
    for _ in range(steps):
        asked = time.perf_counter()
        next(stream)
        got = time.perf_counter()
        time.sleep(step_seconds)
        rows.append((asked - origin, got - asked, got - origin, time.perf_counter() - got))
    return pd.DataFrame(rows, columns=["wait_start", "wait", "step_start", "step"])
