"""The input pipeline: CSV files → a tf.data.Dataset of (features, label) batches (chapter 3).

The 2017 `input_fn`, kept almost line for line: read lines, shuffle, repeat, batch, then parse
each batch of lines at once (vectorised `decode_csv`, in parallel) and prefetch the next batch
while the model trains on this one. Works on local paths and `gs://` paths alike.

`check_rows` is the one check of CSV rows, for training files and CSV instances alike: the
same op, `tf.io.decode_csv`, decides what passes, so nothing passes that the pipeline or a
CSV export then refuses.
"""
import re

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
    (`schema.CSV_DEFAULTS`); a row the op refuses raises InvalidArgumentError when run
    (`check_rows` finds such rows first: the trainer's file check, `census.instances`)."""
    fields = dict(zip(columns, tf.io.decode_csv(rows, record_defaults=_defaults(columns))))
    return {c: fields[c] for c in columns if c not in schema.UNUSED_COLUMNS}


def _defaults(columns):
    """decode_csv's record defaults for fields `columns` (`schema.CSV_DEFAULTS`)."""
    return [schema.CSV_DEFAULTS[schema.CSV_COLUMNS.index(c)] for c in columns]


def required_defaults(columns):
    """`_defaults` with every number field required (an empty one is refused): what
    `check_rows` decodes with, and the batch job's in-graph check (`census.batch.batches`)."""
    return [tf.zeros([0]) if isinstance(d[0], float) else d for d in _defaults(columns)]


class RowError(ValueError):
    """A row `tf.io.decode_csv` refuses: `index` (0-based, among the rows checked); `str()`
    is the op's reason, the field named."""

    def __init__(self, index, reason):
        super().__init__(reason)
        self.index = index


def check_rows(rows, columns=schema.CSV_COLUMNS):
    """Decode CSV rows (a list of str, or a string tensor (n,); their fields are `columns`)
    with the op that reads them in training and serving, `tf.io.decode_csv`, with
    `decode_rows`'s defaults except that every number field is required (an empty one is
    refused): a row passes exactly when the op reads it, by TF's own rules of quoting, number
    syntax and field count (tensorflow/core/kernels/decode_csv_op.cc). Returns
    {column: numpy array (n,)}: float32 for numbers, bytes for strings. Raises RowError for
    the first row the op refuses: one decode for all rows and, only when that fails,
    `first_refused` to find it."""
    defaults = required_defaults(columns)
    rows = tf.convert_to_tensor(rows, tf.string)
    try:
        fields = tf.io.decode_csv(rows, record_defaults=defaults)
    except tf.errors.InvalidArgumentError:
        index, error = first_refused(lambda some: tf.io.decode_csv(some, defaults), rows)
        raise RowError(index, _reason(error, columns)) from None
    return {c: t.numpy() for c, t in zip(columns, fields)}


def first_refused(op, rows):
    """The first of `rows` (a tensor (n,)) that `op` refuses, when it refuses them all
    together: (index, the InvalidArgumentError for that row alone), found by bisection
    (about 2·log2(n) calls on ever fewer rows; `op` must treat rows one by one)."""
    start, stop = 0, len(rows)  # rows before `start` pass; one in [start, stop) does not
    while stop - start > 1:
        middle = (start + stop) // 2
        try:
            op(rows[start:middle])
            start = middle
        except tf.errors.InvalidArgumentError:
            stop = middle
    try:
        op(rows[start:stop])
    except tf.errors.InvalidArgumentError as e:
        return start, e
    raise AssertionError("an op refused rows together that it accepts one by one")


def op_message(error):
    """A TensorFlow op error's message (tf.errors.OpError) without the node text TF adds
    ("{{function_node …}}", "[Op:DecodeCSV]"): what the op found, for a one-line error."""
    return re.sub(r"\{\{[^}]*\}\} | \[Op:[^\]]*\].*$", "", error.message, flags=re.S)


def _reason(error, columns):
    """decode_csv's error about one row, in a few words, the field named."""
    text = op_message(error).replace(" in record 0", "").rstrip("!")
    count = re.fullmatch(r"Expect (\d+) fields but have (\d+)", text)
    if count:
        return f"{count[2]} fields instead of {count[1]} ({', '.join(columns)})"
    text = re.sub(r"Field (\d+) is required but missing", r"Field \1 is empty", text)
    text = re.sub(r"is not a valid float: (.*)", lambda m: f"is not a valid float: {m[1]!r}",
                  text, flags=re.S)
    return re.sub(r"Field (\d+)", lambda m: f"field {columns[int(m[1])]!r}", text)


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
