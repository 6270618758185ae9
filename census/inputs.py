"""The input pipeline: CSV files → a tf.data.Dataset of (features, label) batches.

The 2017 `input_fn`, kept almost line for line: read lines, shuffle, repeat, batch, then parse
each batch of lines at once (vectorised `decode_csv`, in parallel) and prefetch the next batch
while the model trains on this one. Works on local paths and `gs://` paths alike.
"""
import tensorflow as tf

from census import schema


def parse_label_column(label_strings):
    """' <=50K' → 0, ' >50K' → 1 (spaces and a trailing '.' are tolerated)."""
    label = tf.strings.strip(tf.strings.regex_replace(label_strings, r"\.$", ""))
    return tf.cast(tf.equal(label, schema.HIGH), tf.int32)


def parse_csv(rows):
    """A batch of CSV lines → (dict of feature tensors, label tensor)."""
    columns = tf.io.decode_csv(rows, record_defaults=schema.CSV_DEFAULTS)
    features = dict(zip(schema.CSV_COLUMNS, columns))
    label = features.pop(schema.LABEL_COLUMN)
    for column in schema.UNUSED_COLUMNS:
        features.pop(column)
    return features, parse_label_column(label)


def input_fn(filenames, num_epochs=None, shuffle=True, batch_size=200):
    """Batches of (features, label) from census CSV files; `num_epochs=None` repeats forever."""
    dataset = tf.data.TextLineDataset(filenames)
    if shuffle:
        dataset = dataset.shuffle(buffer_size=batch_size * 10)
    dataset = dataset.repeat(num_epochs)
    dataset = dataset.batch(batch_size)
    dataset = dataset.map(parse_csv, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
