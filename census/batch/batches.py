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
    of the local file `path`; a byte order mark at its start dropped (it marks the encoding)."""
    with open(path, "rb") as lines:
        number = 1
        while batch := list(itertools.islice(lines, batch_size)):
            if number == 1:
                batch[0] = batch[0].removeprefix(b"\xef\xbb\xbf")
            yield number, batch
            number += len(batch)


def record_batches(path, compression, batch_size):
    """(number of the first record, string tensor of up to `batch_size` records) of the
    local TFRecord file `path`. Raises PredictError naming the file and the last record read
    when the file cannot be read on (not TFRecord, corrupt, compressed otherwise)."""
    import tensorflow as tf

    from census import inputs
    records = tf.data.TFRecordDataset([path], compression_type=compression)
    number = 1
    try:
        for batch in records.batch(batch_size).prefetch(2):
            yield number, batch
            number += int(batch.shape[0])
        return
    except tf.errors.OpError:  # the batch that failed: its records up to the failure
        pass
    readable = []
    try:
        for record in records.skip(number - 1):
            readable.append(record.numpy())
    except tf.errors.OpError as e:
        if readable:
            yield number, readable
        number += len(readable)
        hint = "; is it compressed? (--compression)" if not compression else ""
        raise PredictError(f"{path}: cannot be read after record {number - 1} "
                           f"({inputs.op_message(e)}{hint})") from None


def echo(kind, raw, valid=False):
    """How a results or errors line shows an instance, as JSON text: a record as TF Serving's
    {"b64": …}; a CSV row (text) as a JSON string; a JSON line as it is when `valid` (it
    passed the checks), else as its JSON value when it is one (strict JSON: no NaN), else as
    a JSON string of its text."""
    if kind == "tfrecord":
        return json.dumps({"b64": base64.b64encode(raw).decode()})
    text = raw.decode("utf-8", errors="replace")
    if kind == "text":
        return json.dumps(text.rstrip("\r\n"))
    if valid:
        return text.strip()
    try:
        return json.dumps(json.loads(text), allow_nan=False)
    except ValueError:
        return json.dumps(text.strip())


def error_line(echoed, message, status=STATUS):
    """An errors file's line: PredictionResult's instance and error (status, message)."""
    error = json.dumps({"status": status, "message": message})
    return f'{{"instance": {echoed or "null"}, "error": {error}}}'


class Predictor:
    """Predicts batches of one kind of input ("json", "text" or "tfrecord") with a loaded
    signature `function` of export format `fmt`. `fast(batch)` → the results lines (bytes,
    joined) or None when the batch must go `slow(path, first, batch)` → (results lines as
    bytes or b"", [errors lines], number predicted). A batch: a list of lines (bytes) or a
    string tensor of records, as `line_batches` and `record_batches` give them."""

    def __init__(self, function, fmt, kind):
        import tensorflow as tf
        self.function, self.fmt, self.kind = function, fmt, kind
        self.name = signature.SINGLE_INPUT.get(fmt)
        self.lines = tf.function(self._lines, reduce_retracing=True)
        self.shown = tf.function(self._shown, reduce_retracing=True)
        # the inputs arrive as the export takes them, or as rows / records it reads first
        native = {"text": "CSV", "tfrecord": "EXAMPLE"}.get(kind) == fmt
        self.checked = tf.function(self._checked, reduce_retracing=True) if native else None

    # --- the fast path ---------------------------------------------------------------------
    def fast(self, batch):
        """The whole batch's results lines, or None."""
        import tensorflow as tf
        try:
            if self.kind == "json" and self.fmt == "JSON":
                tensors = self._json_columns(batch)
                if tensors is None:
                    return None
                return self.lines(tensors, self.shown(tf.constant(batch))).numpy()
            if self.checked is None:
                return None
            passed, text = self.checked(tf.constant(batch) if isinstance(batch, list) else batch)
            return text.numpy() if passed else None
        except (tf.errors.InvalidArgumentError, ValueError, OverflowError):
            return None  # not JSON, not UTF-8, an integer of 400 digits, a row the op refuses

    def _json_columns(self, lines):
        """The 13 input tensors of a batch of JSON lines when every line is an object that
        `instances.check_fields` passes as it is, else None."""
        import numpy as np
        import tensorflow as tf
        values = [json.loads(line) for line in lines]
        if not all(type(v) is dict and len(v) == len(schema.INPUT_COLUMNS)
                   and v.keys() == _INPUTS for v in values):
            return None
        tensors = {}
        for c in schema.INPUT_COLUMNS:
            column = [v[c] for v in values]
            if c in schema.NUMERIC_COLUMNS:
                if not set(map(type, column)) <= {int, float}:
                    return None
                numbers = np.array(column, np.float64)
                low, high = instances.RANGES[c]
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
            fields = dict(zip(signature.CSV_FIELDS, tf.io.decode_csv(
                raw, inputs.required_defaults(signature.CSV_FIELDS))))
            numbers = {c: fields[c] for c in instances.NUMBER_FIELDS}
        else:
            numbers = export.example_receiver()[1](raw)
            passed = tf.constant(True)
        for c in (instances.NUMBER_FIELDS if self.fmt == "CSV" else schema.NUMERIC_COLUMNS):
            low, high = instances.RANGES[c]
            x = numbers[c]
            passed &= tf.reduce_all(tf.math.is_finite(x) & (x >= low) & (x <= high))
        return passed, self._lines({self.name: raw}, self._shown(raw))

    def _shown(self, raw):
        """The fast path's echoes of lines or records `raw` as JSON text, as `echo` writes
        them (a JSON line as it is; a CSV row, of printable ASCII, quoted)."""
        import tensorflow as tf
        if self.kind == "tfrecord":
            b64 = tf.strings.regex_replace(tf.strings.regex_replace(
                tf.io.encode_base64(raw, pad=True), "-", "+"), "_", "/")
            return tf.strings.join(['{"b64": "', b64, '"}'])
        if self.kind == "json":
            return tf.strings.strip(raw)
        return tf.strings.join(['"', _quoted(raw), '"'])  # a row without its line end

    def _lines(self, tensors, shown):
        """Predict `tensors` (the signature's inputs) and write each instance's results line,
        `shown` (a string tensor of JSON texts) as its instance; all lines joined by \\n."""
        import tensorflow as tf
        outputs = self.function(**tensors)
        parts = []
        for key in signature.OUTPUT_KEYS:
            values = outputs[key]
            if values.dtype == tf.string:  # the classes: the labels of the model's vocabulary
                values = tf.strings.join(['"', _quoted(values), '"'])
            else:
                values = tf.strings.as_string(values, precision=9, shortest=True) \
                    if values.dtype.is_floating else tf.strings.as_string(values)
            joined = values[:, 0] if values.shape[1] == 1 else \
                tf.strings.reduce_join(values, axis=1, separator=", ")
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
                item = self._item(raw)
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
            shown = [echo(self.kind, kept[i][1], valid=True) for i in passed]
            text = self.lines(tensors, tf.constant(shown)).numpy()
        lines = [error_line(echo(self.kind, raw), f"{path} {what} {number}: {reason}")
                 for number, raw, reason in sorted(errors)]
        return text, lines, len(passed)

    def _item(self, raw):
        """A line or record as an instance; None for a blank line; ValueError(reason)."""
        if self.kind == "tfrecord":
            return raw
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


def _quoted(strings):
    """A string tensor's values with backslash and quote escaped, for a JSON string (of
    printable ASCII: other characters are the slow path's, written by Python's `json`)."""
    import tensorflow as tf
    return tf.strings.regex_replace(strings, r'(["\\])', r"\\\1")
