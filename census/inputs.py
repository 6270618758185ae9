"""The input pipeline: CSV files → a tf.data.Dataset of (features, label) batches (chapter 3).

The 2017 `input_fn`, kept almost line for line: read lines, shuffle, repeat, batch, then parse
each batch of lines at once (vectorised `decode_csv`, in parallel) and prefetch the next batch
while the model trains on this one. Works on local paths and `gs://` paths alike.
"""
import tensorflow as tf

from census import schema


def parse_label_column(label_strings):
    """Label strings (string tensor, any shape) → int32 class ids of the same shape: 1 for
    `schema.HIGH`, else 0 (spaces and UCI's trailing '.' are tolerated)."""
    label = tf.strings.strip(tf.strings.regex_replace(label_strings, r"\.$", ""))
    return tf.cast(tf.equal(label, schema.HIGH), tf.int32)


def parse_csv(rows):
    """A batch of CSV lines (string, (batch,)) → ({column: float32 or string (batch,)} for
    the 13 inputs, int32 labels (batch,)); `fnlwgt` is dropped. An empty field takes the
    column's default (`schema.CSV_DEFAULTS`); a row of the wrong length fails the step
    (`census.data.check_training_files` refuses such files before training)."""
    columns = tf.io.decode_csv(rows, record_defaults=schema.CSV_DEFAULTS)
    features = dict(zip(schema.CSV_COLUMNS, columns))
    label = features.pop(schema.LABEL_COLUMN)
    for column in schema.UNUSED_COLUMNS:
        features.pop(column)
    return features, parse_label_column(label)


def input_fn(filenames, num_epochs=None, shuffle=True, batch_size=200):
    """A tf.data.Dataset of `parse_csv` batches of `batch_size` rows from CSV files (a list of
    local or gs:// paths): shuffled in a buffer of ten batches unless `shuffle=False`,
    `num_epochs` passes (None: repeats forever), parsed in parallel, prefetched."""
    dataset = tf.data.TextLineDataset(filenames)
    if shuffle:
        dataset = dataset.shuffle(buffer_size=batch_size * 10)
    dataset = dataset.repeat(num_epochs)
    dataset = dataset.batch(batch_size)
    dataset = dataset.map(parse_csv, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
