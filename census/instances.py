"""What a prediction takes, for each export format: reading instances, and checking them.

An export's serving signature says what it takes (chapter 5, `census.signature`):

    JSON     13 named inputs           a JSON object per instance: {"age": 39, "workclass": …}
    CSV      one input, `csv_row`      a CSV row per instance: the 14 fields of the training
                                       files (fnlwgt included) without the label
    EXAMPLE  one input, `examples`     a serialized tf.train.Example per instance, with the 13
                                       inputs as features (a float or a bytes value each)

The readers stream a file one instance at a time, so that a file of any size can be worked
through: `json_lines` (one JSON value per line: an object, or for the CSV and EXAMPLE formats
a row string or TF Serving's `{"b64": …}`), `text_lines` (CSV rows: gcloud's
`--text-instances`) and `tfrecords` (serialized Examples). `to_tensors` checks every
instance before the model sees it, as TF Serving refuses a bad request: a PredictError
names the instance (1-based), the field and what is wrong. CSV rows and Examples are read
first by the export's own op (`tf.io.decode_csv`, `tf.io.parse_example`: `check_rows`,
`check_examples`), never by a Python copy of its rules: whatever passes, the export reads.
"""
import base64
import binascii
import json
import math

from census import schema, signature

NUMBER_FIELDS = tuple(c for c in signature.CSV_FIELDS
                      if c in schema.NUMERIC_COLUMNS + schema.UNUSED_COLUMNS)
FLOAT32_MAX = 3.4028234663852886e38  # the largest finite float32
# (low, high) of each number field: a census answer's (`schema.VALID_RANGES`); fnlwgt, a
# sampling weight, at least 0; none beyond what a float32 holds. The vectorized filters use
# them; `check_number` has the last word.
RANGES = {c: (low, min(high, FLOAT32_MAX)) for c, (low, high) in
          ((c, schema.VALID_RANGES.get(c, (0.0, math.inf))) for c in NUMBER_FIELDS)}
WHAT_FITS = {
    "JSON": "JSON objects with the 13 inputs (--json-instances)",
    "CSV": "CSV rows like the training files without the label (--text-instances, or one "
           "JSON string per line with --json-instances)",
    "EXAMPLE": "serialized tf.train.Example records (--tfrecord-instances, or "
               '{"b64": …} per line with --json-instances)',
}


class PredictError(ValueError):
    """Instances that cannot be sent to the model; the message says which and why.
    `instance`: the 1-based number of the instance at fault (None when it is not one
    instance's fault), `reason`: the message without "instance N: "."""

    def __init__(self, reason, instance=None):
        super().__init__(reason if instance is None else f"instance {instance}: {reason}")
        self.instance, self.reason = instance, reason


def input_format(input_names):
    """The export format of a signature, from its input names (a set of str)."""
    names = set(input_names)
    if names == set(schema.INPUT_COLUMNS):
        return "JSON"
    for fmt, name in signature.SINGLE_INPUT.items():
        if names == {name}:
            return fmt
    raise PredictError(f"a signature with inputs {sorted(names)} is none of the course's "
                       f"export formats ({', '.join(signature.FORMATS)})")


# --- reading: one instance at a time ------------------------------------------------------

def _lines(path):
    """(line number, text) for each line of a UTF-8 file, a byte order mark at its start
    dropped (it marks the encoding; it is not part of the first value). Raises PredictError
    naming the first line that is not UTF-8."""
    with open(path, "rb") as lines:
        for number, line in enumerate(lines, 1):
            try:
                yield number, line.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise PredictError(f"{path} line {number}: not UTF-8 text ({e.reason})"
                                   ) from None


def json_lines(path):
    """Each non-blank line of a file as a JSON value (NaN and Infinity read as Python
    reads them; the checks refuse them). Raises PredictError naming the line."""
    for number, line in _lines(path):
        if line.strip():
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                raise PredictError(f"{path} line {number}: not valid JSON ({e.msg})") from None


def text_lines(path):
    """Each non-blank line of a file, without its line end, LF or CRLF (CSV rows)."""
    for _, line in _lines(path):
        if line.strip():
            yield line.rstrip("\r\n")


def tfrecords(path, compression=""):
    """Each record of a TFRecord file, as bytes (serialized tf.train.Example protos);
    `compression`: "" (none), "GZIP" or "ZLIB", as `tf.data.TFRecordDataset` takes it.
    Raises PredictError for a file it cannot read, with a hint at --compression."""
    import tensorflow as tf

    from census import inputs
    try:
        for record in tf.data.TFRecordDataset([str(path)], compression_type=compression):
            yield record.numpy()
    except tf.errors.OpError as e:  # not there, a folder, not TFRecord, compressed …
        hint = ("" if not isinstance(e, tf.errors.DataLossError) else
                f"; read as {compression}-compressed" if compression else
                "; if it is compressed, say how with --compression GZIP or ZLIB")
        raise PredictError(f"{path}: not a readable TFRecord file "
                           f"({inputs.op_message(e)}{hint})") from None


# --- checking -----------------------------------------------------------------------------

def check_number(column, value):
    """Why `value` cannot be the numeric field `column`, or None if it can.

    A number must be a JSON number (not a bool), fit a float32, and lie in the range a census
    answer can have (`schema.VALID_RANGES`: no negative age, money or hours, no NaN or
    infinity). TF Serving refuses a malformed request with a 400; so do `census predict`
    and `census serve`, here for values no census answer can have too.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"must be a number, got {value!r}"
    try:
        number = float(value)
    except OverflowError:  # an integer of 400 digits
        number = math.inf
    if math.isnan(number) or abs(number) > FLOAT32_MAX:
        return f"is out of the float32 range (|x| <= {FLOAT32_MAX:.4g}), got {value!r}"
    low, high = schema.VALID_RANGES[column]
    if not low <= number <= high:
        limit = f"from {low:g} to {high:g}" if math.isfinite(high) else f"at least {low:g}"
        return f"must be {limit}, got {value!r}"
    return None


def b64_bytes(value):
    """TF Serving's encoding of binary values, `{"b64": "…"}`, decoded; None if `value` is not
    one. Raises ValueError for a malformed one."""
    if not (isinstance(value, dict) and set(value) == {"b64"}):
        return None
    if not isinstance(value["b64"], str):
        raise ValueError('a {"b64": …} value holds a base64 string')
    try:
        return base64.b64decode(value["b64"], validate=True)
    except binascii.Error as e:
        raise ValueError(f"not valid base64 ({e})") from None


def _text(value):
    """A string input given as a string or as {"b64": …} (UTF-8 text); else None. Raises
    ValueError for a string TensorFlow cannot take (JSON's "\\ud800" reads as a lone
    surrogate, which has no UTF-8)."""
    raw = b64_bytes(value)
    if raw is None:
        if not isinstance(value, str):
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ValueError(f"not Unicode text ({e.reason} at character {e.start})") from None
        return value
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("its base64 value is not UTF-8 text") from None


def check_fields(n, instance):
    """One JSON instance (a dict of the 13 inputs) → the same dict with plain values, or a
    PredictError naming instance `n` and the field."""
    if not isinstance(instance, dict):
        raise PredictError("expected a JSON object with the input fields", n)
    unknown = sorted(set(instance) - set(schema.INPUT_COLUMNS))
    missing = [c for c in schema.INPUT_COLUMNS if c not in instance]
    if unknown:
        raise PredictError(f"unknown field {unknown[0]!r} (inputs are: "
                           f"{', '.join(schema.INPUT_COLUMNS)})", n)
    if missing:
        raise PredictError(f"missing field {missing[0]!r} (inputs are: "
                           f"{', '.join(schema.INPUT_COLUMNS)})", n)
    plain = {}
    for c in schema.INPUT_COLUMNS:
        value = instance[c]
        if c in schema.NUMERIC_COLUMNS:
            problem = check_number(c, value)
        else:
            try:
                value = _text(value)
                problem = None if value is not None else f"must be a string, got {instance[c]!r}"
            except ValueError as e:
                problem = str(e)
        if problem:
            raise PredictError(f"field {c!r} {problem}", n)
        plain[c] = value
    return plain


def check_row(n, instance):
    """One CSV instance (a row string, or {"b64": …}) → the row, or a PredictError. What the
    row holds is checked with the others' (`check_rows`)."""
    if isinstance(instance, dict) and set(instance) != {"b64"}:
        raise PredictError("this export (CSV format) takes a CSV row per "
                           "instance, not an object with fields", n)
    try:
        row = _text(instance)
    except ValueError as e:
        raise PredictError(str(e), n) from None
    if row is None:
        raise PredictError(f"expected a CSV row (a string), got {instance!r}", n)
    return row


def check_rows(rows):
    """CSV rows (a list of str: `signature.CSV_FIELDS`, no label) → the same list, or a
    PredictError naming the first bad instance (1-based) and field. The CSV export's own op,
    `tf.io.decode_csv`, reads them first (`census.inputs.check_rows`: its quoting, number
    syntax and field count, with a number field required); then each number must be one a
    census answer can have (`check_number`; fnlwgt: at least 0)."""
    from census import inputs
    try:
        fields = inputs.check_rows(rows, signature.CSV_FIELDS)
    except inputs.RowError as e:
        row = rows[e.index]
        shown = repr(row if len(row) <= 200 else row[:200] + "…")
        raise PredictError(f"{e} (tf.io.decode_csv refuses the row {shown})",
                           e.index + 1) from None
    import numpy as np
    flagged = np.zeros(len(rows), bool)  # a fast filter; `check_number` has the last word
    for column in NUMBER_FIELDS:
        low, high = RANGES[column]
        values = fields[column]
        flagged |= ~(np.isfinite(values) & (values >= low) & (values <= high))
    for n in np.flatnonzero(flagged) + 1:
        for column in NUMBER_FIELDS:
            number = float(str(fields[column][n - 1]))  # float32's shortest repr: 39.1
            problem = (check_number(column, number) if column in schema.NUMERIC_COLUMNS
                       else None if math.isfinite(number) and number >= 0
                       else f"must be a number of at least 0, got {number!r}")
            if problem:
                raise PredictError(f"field {column!r} {problem}", int(n))
    return rows


def check_example(n, instance):
    """One EXAMPLE instance (serialized bytes, or {"b64": …}) → the bytes, or a PredictError
    naming the feature at fault."""
    import tensorflow as tf
    if isinstance(instance, (bytes, bytearray)):
        raw = bytes(instance)
    else:
        try:
            raw = b64_bytes(instance)
        except ValueError as e:
            raise PredictError(str(e), n) from None
        if raw is None:
            raise PredictError("this export (EXAMPLE format) takes a serialized "
                               'tf.train.Example per instance, as {"b64": …} in JSON', n)
    try:
        example = tf.train.Example.FromString(raw)
    except Exception:  # noqa: BLE001 — protobuf's DecodeError and friends
        raise PredictError("not a serialized tf.train.Example", n) from None
    features = example.features.feature
    for c in schema.INPUT_COLUMNS:
        if c not in features:
            raise PredictError(f"missing feature {c!r}", n)
        kind = "float_list" if c in schema.NUMERIC_COLUMNS else "bytes_list"
        feature = features[c]
        values = getattr(feature, kind).value
        if feature.WhichOneof("kind") != kind or len(values) != 1:
            raise PredictError(f"feature {c!r} must hold one "
                               f"{'float' if kind == 'float_list' else 'bytes'} value", n)
        if kind == "float_list" and (problem := check_number(c, values[0])):
            raise PredictError(f"feature {c!r} {problem}", n)
    return raw


def check_examples(records):
    """Serialized tf.train.Examples (a list of bytes, each passed by `check_example`) → the
    same list, once the EXAMPLE export's own op, `tf.io.parse_example` with its feature spec
    (`census.export.example_receiver`), reads them all; else a PredictError naming the first
    it refuses (`census.inputs.first_refused`)."""
    import tensorflow as tf

    from census import export, inputs
    parse = export.example_receiver()[1]
    serialized = tf.constant(records, tf.string)
    try:
        parse(serialized)
    except tf.errors.InvalidArgumentError:
        index, error = inputs.first_refused(parse, serialized)
        raise PredictError(f"tf.io.parse_example refuses it ({inputs.op_message(error)})",
                           index + 1) from None
    return records


def to_example(fields):
    """A dict of the 13 inputs (checked by `check_fields`) → a serialized tf.train.Example."""
    import tensorflow as tf
    feature = {c: tf.train.Feature(float_list=tf.train.FloatList(value=[float(v)]))
               if c in schema.NUMERIC_COLUMNS else
               tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(v).encode()]))
               for c, v in fields.items()}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def to_tensors(fmt, instances):
    """Checked instances → the keyword tensors of a signature of format `fmt` (JSON: 13
    tensors of shape (n,), float32 or string; CSV and EXAMPLE: one string tensor of shape
    (n,)). Raises PredictError naming the first bad instance (1-based) and field."""
    tensors, _, refused = partition(fmt, list(instances))
    if refused:
        first = min(refused)
        raise PredictError(refused[first], first + 1)
    return tensors


def partition(fmt, items):
    """The instances of one batch of a batch job (a list, as `to_tensors` takes them), checked
    one by one as `to_tensors` checks them, so that one bad instance never stops the others.
    Returns (the keyword tensors of those that pass, shaped as `to_tensors` says; their
    indices into `items`, a list of int; {index: reason (str)} of those refused)."""
    import tensorflow as tf
    check = {"JSON": check_fields, "CSV": check_row, "EXAMPLE": check_example}[fmt]
    name = signature.SINGLE_INPUT.get(fmt)
    passed, refused = [], {}
    for index, item in enumerate(items):
        try:
            passed.append((index, check(index + 1, unnamed(item, name) if name else item)))
        except PredictError as e:
            refused[index] = e.reason
    together = {"CSV": check_rows, "EXAMPLE": check_examples}.get(fmt)
    while together and passed:  # the op that reads them all: drop each one it refuses
        try:
            together([value for _, value in passed])
            break
        except PredictError as e:
            index, _ = passed.pop(e.instance - 1)
            refused[index] = e.reason
    indices, values = [i for i, _ in passed], [v for _, v in passed]
    if fmt == "JSON":
        tensors = {c: tf.constant([v[c] for v in values], dtype=schema.INPUT_DTYPES[c])
                   for c in schema.INPUT_COLUMNS}
    else:
        tensors = {name: tf.constant(values, dtype=tf.string)}
    return tensors, indices, refused


def unnamed(instance, name):
    """A one-input signature's instance, bare or named as TF Serving's row format allows it:
    `{"csv_row": row}` is `row`, `{"examples": {"b64": …}}` is `{"b64": …}` (tensorflow/
    serving `util/json_tensor.cc`, FillTensorMapFromInstancesList)."""
    return instance[name] if isinstance(instance, dict) and set(instance) == {name} else instance
