"""One batch of a batch job: read, checked, predicted, and written as JSON lines.

Reading: lines are read with Python's buffered file reading, records with
`tf.data.TFRecordDataset` (which also undoes GZIP and ZLIB). `tf.data.TextLineDataset` makes one
dataset element per line: it delivered 140,000-200,000 lines/s here, slower than the model
itself at 1,024 instances a call, where Python reads 2,000,000.

Predicting (`Predictor`): a fast path does each batch in one TensorFlow call, traced once: the
checks of `census.instances` as vectorized ops, the signature, and the output lines joined
(`tf.strings`). CSV rows and Examples are read by the export's own `tf.io.decode_csv` /
`tf.io.parse_example`; JSON lines written plainly (the layout of the batch's first line: the
13 inputs, numbers without sign, strings of printable ASCII without escapes) are matched
whole by one regular expression and cut at their double quotes. The numbers' ranges are
compared at once. A batch the fast path does not take whole (a bad instance, a blank line,
an escape, a line laid out otherwise) goes the slow path: instance by instance (Python's
`json`, `census.instances.partition`), the refused ones becoming errors lines. Both paths
write the same results lines (floats with 9 significant digits: a float32 read back exactly).
"""
import base64
import functools
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
        options = tf.data.Options()
        options.autotune.enabled = False  # 720,000 records/s here at 64 a batch, not 320,000
        for batch in records.batch(batch_size).with_options(options):
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
        string = tf.TensorSpec([None], tf.string)
        inputs = {self.name: string} if self.name else {
            c: tf.TensorSpec([None], schema.INPUT_DTYPES[c]) for c in schema.INPUT_COLUMNS}
        self.lines = tf.function(self._lines, input_signature=[inputs, string])  # slow path
        # the fast path's one call, traced now: lines or records in, results lines out
        native = {"json": "JSON", "text": "CSV", "tfrecord": "EXAMPLE"}[kind] == fmt
        layout = [tf.TensorSpec([], tf.string), tf.TensorSpec([None], tf.int32),
                  tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int32)]
        self.checked = tf.function(self._checked, input_signature=[string] + (
            layout if kind == "json" else [])).get_concrete_function() if native else None
        if self.checked is not None:  # its first run builds the graph's kernels: now, once,
            # on one instance (a 2017 Estimator export's graph refuses an empty batch: its
            # SparseReshape cannot infer a size from zero rows)
            self.checked(tf.constant([warmup_record(kind)]), *_json_layout(schema.INPUT_COLUMNS)
                         if kind == "json" else ())

    # --- the fast path ---------------------------------------------------------------------
    def fast(self, batch):
        """The whole batch's results lines, or None."""
        import tensorflow as tf
        if self.checked is None:
            return None
        layout = ()
        if self.kind == "json":
            layout = self._layout_of(batch[0])
            if layout is None:
                return None
        elif self.kind == "text":
            batch = [line.rstrip(b"\r\n") for line in batch]
        try:
            passed, text = self.checked(tf.constant(batch) if isinstance(batch, list)
                                        else batch, *layout)
        except tf.errors.InvalidArgumentError:
            return None  # a row the op refuses, a line of another layout, an overflow
        return text.numpy() if passed else None

    def _layout_of(self, line):
        """`_json_layout` of JSON lines laid out as `line`, or None for a line that is not
        an object of the 13 inputs."""
        try:
            keys = tuple(json.loads(line))
        except (ValueError, TypeError):
            return None
        return _json_layout(keys) if len(keys) == len(_INPUTS) and set(keys) == _INPUTS \
            else None

    def _checked(self, raw, *layout):
        """JSON lines, CSV rows (without line ends) or serialized Examples → (whether every
        one passes the checks, their results lines joined). An op that refuses one raises
        InvalidArgumentError."""
        import tensorflow as tf

        from census import inputs
        if self.kind == "json":
            passed, tensors = _json_inputs(raw, *layout)
            return passed, self._lines(tensors, tf.strings.strip(raw))
        if self.fmt == "CSV":
            passed = tf.reduce_all(tf.strings.regex_full_match(raw, _PLAIN))
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
        """The fast path's echoes of CSV rows or records `raw` as JSON text, as `echo`
        writes them."""
        import tensorflow as tf
        if self.kind == "tfrecord":
            b64 = tf.strings.regex_replace(tf.strings.regex_replace(
                tf.io.encode_base64(raw, pad=True), "-", "+"), "_", "/")
            return tf.strings.join(['{"b64": "', b64, '"}'])
        return tf.strings.join(['"', raw, '"'])  # a row as _PLAIN passes it: no escapes

    def _lines(self, tensors, shown):
        """Predict `tensors` (the signature's inputs) and write each instance's results line,
        `shown` (a string tensor of JSON texts) as its instance; all lines joined by \\n."""
        import tensorflow as tf
        outputs = self.function(**tensors)
        parts = []
        for key in signature.output_order(outputs):  # a 2017 export's other outputs too
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
_STRINGS = [c for c in schema.INPUT_COLUMNS if c not in schema.NUMERIC_COLUMNS]
_PLAIN = r'[ !#-\[\]-~]+'  # printable ASCII without " and \: a JSON string without escapes
_WS = "[ \t\r\n]*"  # JSON's whitespace
_NUMBER = r"(?:0|[1-9][0-9]{0,14})(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_STRING = f'"{_PLAIN[:-1]}*"'


@functools.lru_cache(maxsize=16)
def warmup_record(kind):
    """One valid instance as the fast path reads it for `kind`: a JSON line of the 13 inputs
    in `schema.INPUT_COLUMNS` order, a CSV row (no line end) or a serialized Example."""
    from census.serving.versions import warmup_instance
    fmt = {"json": "JSON", "text": "CSV", "tfrecord": "EXAMPLE"}[kind]
    instance = warmup_instance(fmt)
    return json.dumps(instance) if kind == "json" else instance


def _json_layout(keys):
    """How the fast path reads JSON lines of the 13 inputs in the order `keys` (a tuple of
    str): (a regular expression that such a line matches whole, where its numbers and where
    its strings are among its pieces between double quotes, how many pieces it has), as
    tensors. The expression takes numbers without sign and with at most 15 digits before
    the point (a float64 holds them exactly, as Python's `json` reads them), strings of
    printable ASCII without quote or backslash (a JSON string that is its own text)."""
    import tensorflow as tf
    pairs, at, where = [], 1, {}  # piece 0 is what comes before the first key
    for key in keys:
        number = key in schema.NUMERIC_COLUMNS
        pairs.append(f'"{key}"{_WS}:{_WS}{_NUMBER if number else _STRING}')
        where[key] = at + (1 if number else 2)
        at += 2 if number else 4  # the key, [":", the string,] what follows
    pattern = f"{_WS}{{{_WS}{f'{_WS},{_WS}'.join(pairs)}{_WS}}}{_WS}"
    return (tf.constant(pattern), tf.constant([where[c] for c in schema.NUMERIC_COLUMNS]),
            tf.constant([where[c] for c in _STRINGS]), tf.constant(at))


def _json_inputs(raw, pattern, numbers_at, strings_at, pieces):
    """JSON lines of one layout (`_json_layout`) → (whether every line has it,
    with numbers in their ranges; the 13 input tensors, as Python's `json` and
    `instances.check_fields` make them). Lines of another layout may raise
    InvalidArgumentError instead."""
    import tensorflow as tf
    passed = tf.reduce_all(tf.strings.regex_full_match(raw, pattern))
    split = tf.reshape(tf.strings.split(raw, '"').flat_values, [tf.size(raw), pieces])
    numbers = tf.strings.strip(tf.gather(split, numbers_at, axis=1))  # ': 39,' or ':39}'
    length = tf.strings.length(numbers)
    numbers = tf.strings.to_number(tf.strings.strip(tf.strings.substr(
        numbers, tf.ones_like(length), length - 2)), tf.float64)
    low, high = zip(*(instances.RANGES[c] for c in schema.NUMERIC_COLUMNS))
    passed &= tf.reduce_all((numbers >= low) & (numbers <= high))
    tensors = dict(zip(schema.NUMERIC_COLUMNS, tf.unstack(tf.cast(numbers, tf.float32),
                                                          len(low), axis=1)))
    strings = tf.gather(split, strings_at, axis=1)
    return passed, {**tensors, **dict(zip(_STRINGS, tf.unstack(strings, len(_STRINGS),
                                                                axis=1)))}


def _quoted(strings):
    """A string tensor's values with backslash and quote escaped, for a JSON string (of
    printable ASCII: other characters are the slow path's, written by Python's `json`)."""
    import tensorflow as tf
    return tf.strings.regex_replace(strings, r'(["\\])', r"\\\1")
