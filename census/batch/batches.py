"""One batch of a batch job: read, checked, predicted, and written as JSON lines.

Reading: lines are read with Python's buffered file reading, records with
`tf.data.TFRecordDataset` (which also undoes GZIP and ZLIB). `tf.data.TextLineDataset` makes one
dataset element per line: it delivered 140,000-200,000 lines/s here, slower than the model
itself at 1,024 instances a call, where Python reads 2,000,000.

Predicting (`Predictor`): a fast path does each batch in one TensorFlow call: the checks of
`census.instances` as vectorized ops (CSV rows and Examples are read by the export's own
`tf.io.decode_csv` / `tf.io.parse_example`; the numbers' ranges compared at once), the
signature, and the output lines joined (`tf.strings`). JSON objects are parsed by Python's
`json`, their 13 columns checked at once. A batch the fast path does not take whole (a bad
instance, a blank line, text that is not printable ASCII) goes the slow path: instance by
instance (`census.instances.partition`), the refused ones becoming errors lines. Both paths
write the same results lines (floats with 9 significant digits: a float32 read back exactly).
"""
import base64
import itertools
import json

from census import export, instances, schema, signature
from census.instances import PredictError

STATUS = "INVALID_ARGUMENT"  # google.rpc.Code name of a refused instance


def line_batches(path, batch_size):
    """(number of the first line, list of up to `batch_size` lines as bytes, line ends kept)
    of the local file `path`."""
    with open(path, "rb") as lines:
        number = 1
        while batch := list(itertools.islice(lines, batch_size)):
            yield number, batch
            number += len(batch)


def record_batches(path, compression, batch_size):
    """(number of the first record, string tensor of up to `batch_size` records) of the
    local TFRecord file `path`. Raises PredictError naming the file and the last record read
    when the file cannot be read on (not TFRecord, corrupt, compressed otherwise)."""
    import tensorflow as tf

    from census import inputs
    number = 1
    try:
        for batch in tf.data.TFRecordDataset([path], compression_type=compression).batch(
                batch_size).prefetch(2):
            yield number, batch
            number += int(batch.shape[0])
    except tf.errors.OpError as e:
        hint = "; is it compressed? (--compression)" if not compression else ""
        raise PredictError(f"{path}: cannot be read after record {number - 1} "
                           f"({inputs.op_message(e)}{hint})") from None


def echo(kind, raw):
    """How a results or errors line shows an instance: a record as TF Serving's {"b64": …};
    a line as its JSON value when it is one (strict JSON: no NaN), else as a JSON string."""
    if kind == "tfrecord":
        return json.dumps({"b64": base64.b64encode(raw).decode()})
    text = raw.decode("utf-8", errors="replace").strip()
    try:
        return json.dumps(json.loads(text), allow_nan=False) if kind == "json" else \
            json.dumps(text)
    except ValueError:
        return json.dumps(text)


def error_line(echoed, message, status=STATUS):
    """An errors file's line: PredictionResult's instance and error (status, message)."""
    error = json.dumps({"status": status, "message": message})
    return f'{{"instance": {echoed or "null"}, "error": {error}}}'


class Predictor:
    """Predicts batches of one kind of input ("json", "text" or "tfrecord") with a loaded
    signature `function` of export format `fmt`. `fast(first, batch)` → the results lines
    (bytes, joined) or None when the batch must go `slow(path, first, batch)` → (results
    lines as bytes or b"", [errors lines], number predicted)."""

    def __init__(self, function, fmt, kind):
        import tensorflow as tf
        self.function, self.fmt, self.kind = function, fmt, kind
        self.name = signature.SINGLE_INPUT.get(fmt)
        self.lines = tf.function(self._lines)
        # the inputs arrive as the export takes them, or as rows / records it reads first
        native = {"text": "CSV", "tfrecord": "EXAMPLE"}.get(kind) == fmt
        self.checked = tf.function(self._checked) if native else None

    # --- the fast path ---------------------------------------------------------------------
    def fast(self, batch):
        """The whole batch's results lines, or None."""
        import tensorflow as tf
        try:
            if self.kind == "json":
                tensors = self._json_columns(batch)
                if tensors is None:
                    return None
                return self.lines(tensors, tf.constant(batch)).numpy()
            if self.checked is None:
                return None
            passed, text = self.checked(tf.constant(batch) if isinstance(batch, list) else batch)
            return text.numpy() if passed else None
        except (tf.errors.InvalidArgumentError, UnicodeError, ValueError, TypeError):
            return None

    def _json_columns(self, lines):
        """The 13 input tensors of a batch of JSON lines when every line is an object that
        `instances.check_fields` passes as it is, else None."""
        import numpy as np
        import tensorflow as tf
        values = [json.loads(line) for line in lines]
        if self.fmt != "JSON" or not all(type(v) is dict and len(v) == len(schema.INPUT_COLUMNS)
                                         and v.keys() == _INPUTS for v in values):
            return None
        tensors = {}
        for c in schema.INPUT_COLUMNS:
            column = [v[c] for v in values]
            if c in schema.NUMERIC_COLUMNS:
                if not set(map(type, column)) <= {int, float}:
                    return None
                numbers = np.array(column, np.float64)
                low, high = schema.VALID_RANGES[c]
                if not (np.isfinite(numbers).all() and (numbers >= low).all()
                        and (numbers <= high).all()):
                    return None
                tensors[c] = tf.constant(numbers, tf.float32)
            else:
                if set(map(type, column)) != {str}:
                    return None
                tensors[c] = tf.constant(column, tf.string)  # UnicodeEncodeError: slow path
        return tensors

    def _checked(self, raw):
        """CSV rows or serialized Examples → (whether every one passes the checks, their
        results lines joined). An op that refuses one raises InvalidArgumentError."""
        import tensorflow as tf

        from census import inputs
        if self.fmt == "CSV":
            raw = tf.strings.regex_replace(raw, "\r?\n$", "")
            passed = tf.reduce_all(tf.strings.regex_full_match(raw, "[ -~]+"))
            defaults = [tf.zeros([0]) if isinstance(d[0], float) else d
                        for d in inputs._defaults(signature.CSV_FIELDS)]
            fields = dict(zip(signature.CSV_FIELDS, tf.io.decode_csv(raw, defaults)))
            numbers = {c: fields[c] for c in instances.NUMBER_FIELDS}
        else:
            numbers = export.example_receiver()[1](raw)
            passed = tf.constant(True)
        for c in (instances.NUMBER_FIELDS if self.fmt == "CSV" else schema.NUMERIC_COLUMNS):
            low, high = schema.VALID_RANGES.get(c, (0.0, float("inf")))
            x = numbers[c]
            passed &= tf.reduce_all(tf.math.is_finite(x) & (x >= low) & (x <= high))
        return passed, self._lines({self.name: raw}, raw)

    def _lines(self, tensors, raw):
        """Predict `tensors` (the signature's inputs) and write each instance's results line,
        its echo made from `raw` (the lines or records as read); all lines joined by \\n."""
        import tensorflow as tf
        outputs = self.function(**tensors)
        if self.kind == "tfrecord":
            b64 = tf.strings.regex_replace(tf.strings.regex_replace(
                tf.io.encode_base64(raw, pad=True), "-", "+"), "_", "/")
            shown = tf.strings.join(['{"b64": "', b64, '"}'])
        else:
            shown = tf.strings.strip(raw)
            if self.kind == "text":
                shown = tf.strings.join(['"', _escaped(shown), '"'])
        parts = []
        for key in signature.OUTPUT_KEYS:
            values = outputs[key]
            if values.dtype == tf.string:
                values = tf.strings.join(['"', _escaped(values), '"'])
            else:
                values = tf.strings.as_string(values, precision=9, shortest=True) \
                    if values.dtype.is_floating else tf.strings.as_string(values)
            joined = tf.strings.reduce_join(values, axis=1, separator=", ")
            parts += [f'"{key}": [' if not parts else f'], "{key}": [', joined]
        lines = tf.strings.join(['{"instance": ', shown, ', "prediction": {', *parts, "]}}"])
        return tf.strings.reduce_join(lines, separator="\n")

    # --- the slow path ---------------------------------------------------------------------
    def slow(self, path, first, batch):
        """Instance by instance: (results lines, errors lines, number predicted)."""
        import tensorflow as tf
        raws = batch if isinstance(batch, list) else list(batch.numpy())
        what = "record" if self.kind == "tfrecord" else "line"
        items, kept, errors = [], [], []
        for number, raw in enumerate(raws, first):
            try:
                item = self._item(raw, number == 1)
            except ValueError as e:
                errors.append((number, raw, str(e)))
                continue
            if item is not None:
                items.append(item)
                kept.append((number, raw))
        tensors, passed, refused = instances.partition(self.fmt, items) if items else \
            (None, [], {})
        for index, reason in refused.items():
            errors.append((*kept[index], reason))
        text = b""
        if passed:
            raw = [kept[i][1] for i in passed]
            if self.kind != "tfrecord":
                raw = [r.removeprefix(b"\xef\xbb\xbf") if n == 1 else r
                       for (n, _), r in zip((kept[i] for i in passed), raw)]
            text = self.lines(tensors, tf.constant(raw)).numpy()
        lines = [error_line(echo(self.kind, raw), f"{path} {what} {number}: {reason}")
                 for number, raw, reason in sorted(errors)]
        return text, lines, len(passed)

    def _item(self, raw, first_line):
        """A line or record as an instance; None for a blank line; ValueError(reason)."""
        if self.kind == "tfrecord":
            return raw
        if first_line:
            raw = raw.removeprefix(b"\xef\xbb\xbf")  # a byte order mark marks the encoding
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"not UTF-8 text ({e.reason})") from None
        if not text.strip():
            return None
        if self.kind == "text":
            return text.rstrip("\r\n")
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"not valid JSON ({e.msg})") from None


_INPUTS = set(schema.INPUT_COLUMNS)


def _escaped(strings):
    """A string tensor's values escaped for a JSON string: backslash, quote, and the control
    characters JSON forbids raw (as \\u00XX)."""
    import tensorflow as tf
    strings = tf.strings.regex_replace(strings, r'(["\\])', r"\\\1")
    for code in range(32):
        pattern = f"\\x{code:02x}"
        strings = tf.strings.regex_replace(strings, pattern, f"\\\\u{code:04x}")
    return strings
