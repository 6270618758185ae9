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


def decode_rows(rows, columns=schema.CSV_COLUMNS):
    """CSV rows (string, (batch,)) whose fields are `columns`, in order (default: the training
    files' 15; a CSV export's client sends `census.signature.CSV_FIELDS`, no label) → {column:
    float32 or string (batch,)} without `fnlwgt`. An empty field takes the column's default
    (`schema.CSV_DEFAULTS`); a row of the wrong length raises InvalidArgumentError when run
    (`census.data.check_training_files` refuses such files before training)."""
    defaults = [schema.CSV_DEFAULTS[schema.CSV_COLUMNS.index(c)] for c in columns]
    fields = dict(zip(columns, tf.io.decode_csv(rows, record_defaults=defaults)))
    return {c: fields[c] for c in columns if c not in schema.UNUSED_COLUMNS}


def parse_csv(rows):
    """A batch of training CSV lines (string, (batch,)) → ({column: float32 or string
    (batch,)} for the 13 inputs, int32 labels (batch,)), as `decode_rows` reads them."""
    features = decode_rows(rows)
    return features, parse_label_column(features.pop(schema.LABEL_COLUMN))


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
