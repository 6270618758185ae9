"""The local batch prediction job (chapter 10): the 2017 `gcloud ml-engine jobs submit
prediction`, run on this machine, writing what Vertex AI's batch prediction writes.

    census predict --model-dir JOB/export/census --json-instances test.jsonl --output-dir out

Instances stream through the export `batch_size` at a time (`census.batch.batches`: lines
read by Python, TFRecord files by `tf.data`), each batch checked as `census predict` checks
instances, in one TensorFlow call with the signature when all pass, else instance by
instance; `WORKERS` batches are predicted at once. Memory stays flat whatever the input's size.
Every run writes a new folder (`census.batch.layout`): results files, a new one every
`shard_rows` lines, written under hidden names and renamed into place (`-NNNNN-of-NNNNN`)
only once the job has read everything; a refused instance goes to the errors files with its
file, line and reason, and the job goes on. Inputs and the output folder may be gs:// URIs
(`census.gcs`: an input is copied to a local temporary file first; the files are uploaded
whole at the end).
"""
import collections
import concurrent.futures
import dataclasses
import datetime
import itertools
import json
import os
import tempfile
import time

from census import gcs, instances, predict
from census.batch import batches, layout
from census.instances import PredictError

SHARD_ROWS = 100_000  # lines per results or errors file
KINDS = ("json", "text", "tfrecord")  # as census predict's --json/--text/--tfrecord-instances
WORKERS = 3  # batches predicted at once (TensorFlow's calls release the GIL; 3 kept the
# 2 cores here busier than 2)


@dataclasses.dataclass(frozen=True)
class BatchResult:
    """What a job did: its `folder` (path or gs:// URI), instances read (`rows`),
    `predicted` and refused (`errors`), `seconds` of wall time from the first instance read
    to the last file written (the export loaded and traced before), and the `files` it
    wrote."""
    folder: str
    rows: int
    predicted: int
    errors: int
    seconds: float
    files: tuple

    def __str__(self):
        rate = self.rows / self.seconds if self.seconds else 0.0
        return (f"{self.rows:,} instances: {self.predicted:,} predicted, {self.errors:,} "
                f"refused, in {self.seconds:.1f} s ({rate:,.0f} instances/s) -> {self.folder}")


def run(model_dir, input_paths, output_dir, kind="json", compression="", batch_size=64,
        model_name="census", shard_rows=SHARD_ROWS, signature="serving_default",
        progress=False):
    """Predict every instance of `input_paths` (a list of local paths or gs:// URIs of one
    `kind`: "json", "text" or "tfrecord", compressed as `compression` says: "", "GZIP",
    "ZLIB") with the export at `model_dir`, `batch_size` at a time, into a new folder
    `prediction-<model_name>-<UTC time>` under `output_dir` (a path or gs:// URI).
    `progress`: a tqdm bar on stderr (instances, instances/s, refused); None: only when
    stderr is a terminal (tqdm's `disable=None`). Returns a BatchResult.
    Raises PredictError, before anything is written, for an export that does not take
    instances of `kind`, a missing input or a bad setting; a bad instance, or a file that
    cannot be read to its end, is a line of the errors files instead."""
    from tqdm import tqdm
    if kind not in KINDS:
        raise PredictError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    for name, value in (("batch_size", batch_size), ("shard_rows", shard_rows)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise PredictError(f"{name} must be a whole number of at least 1, got {value!r}")
    predict.check_compression(kind, compression)
    input_paths = [str(p) for p in ([input_paths] if isinstance(input_paths, (str, os.PathLike))
                                    else input_paths)]
    missing = [p for p in input_paths if not (gcs.exists(p) if gcs.is_gcs(p)
                                              else os.path.isfile(p))]
    if not input_paths or missing:
        raise PredictError(f"no such input file: {missing[0]}" if missing else "no input files")
    function, fmt = predict.load_signature(model_dir, signature, kind)
    predictor = batches.Predictor(function, fmt, kind)  # traces its functions
    start = time.perf_counter()
    counts = {"rows": 0, "predicted": 0, "errors": 0}
    with tempfile.TemporaryDirectory(prefix="census-batch-") as scratch:
        folder = _new_folder(output_dir, model_name)
        staging = scratch if gcs.is_gcs(folder) else folder
        results = _Shards(staging, layout.RESULTS, shard_rows)
        errors = _Shards(staging, layout.ERRORS, shard_rows)
        with tqdm(unit=" instances", disable=None if progress is None else not progress,
                  desc="batch prediction") as bar, \
                concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
            for path in input_paths:
                local = path
                if gcs.is_gcs(path):
                    local = os.path.join(scratch, "input")
                    gcs.download(path, local)
                read = (batches.record_batches(local, compression, batch_size)
                        if kind == "tfrecord" else batches.line_batches(local, batch_size))
                pending = collections.deque()  # batches being predicted, in input order
                for first, batch in itertools.chain(_guarded(read), [(None, None)]):
                    if first:
                        pending.append((first, batch, pool.submit(predictor.fast, batch)))
                    while pending and (len(pending) > WORKERS or not first):
                        done = _write(predictor, path, *pending.popleft(), results, errors)
                        counts["predicted"] += done[0]
                        counts["errors"] += done[1]
                        counts["rows"] += sum(done)
                        bar.update(sum(done))
                        bar.set_postfix(refused=counts["errors"], refresh=False)
                    if isinstance(batch, PredictError):  # a file that cannot be read on
                        errors.write(batches.error_line(None, str(batch), "DATA_LOSS").encode(), 1)
                        counts["errors"] += 1
        written = results.finish() + errors.finish()
        for part, name in written:
            if gcs.is_gcs(folder):
                gcs.upload(part, gcs.join(folder, name))
            else:
                os.replace(part, os.path.join(folder, name))
    return BatchResult(folder, seconds=time.perf_counter() - start,
                       files=tuple(name for _, name in written), **counts)


def write_instances(csv_path, path, kind="json"):
    """The labelled CSV file `csv_path` (the training files' 15 fields, as `census data`
    writes them: `data.fetch().test`) as instances of `kind` at the local `path`, labels
    dropped: "json" (test.json's objects of the 13 inputs), "text" (the 14 fields without
    the label) or "tfrecord" (tf.train.Example records). Returns the pairs (instance as the
    job echoes it, label 0 or 1) that `layout.score` takes."""
    import csv

    from census import schema, signature
    labelled = []
    with open(csv_path, newline="", encoding="utf-8") as rows, _writer(path, kind) as out:
        for fields in csv.reader(rows):
            named = dict(zip(schema.CSV_COLUMNS, fields))
            label = schema.LABELS.index(named[schema.LABEL_COLUMN].rstrip("."))
            if kind == "text":
                instance = ",".join(named[c] for c in signature.CSV_FIELDS)
                out.write(instance)
            else:
                instance = {c: int(named[c]) if c in schema.NUMERIC_COLUMNS else named[c]
                            for c in schema.INPUT_COLUMNS}
                if kind == "tfrecord":
                    raw = instances.to_example(instance)
                    out.write(raw)
                    instance = json.loads(batches.echo(kind, raw))
                else:
                    out.write(json.dumps(instance))
            labelled.append((instance, label))
    return labelled


class _writer:
    """Lines of text (json, text) or TFRecord records (tfrecord) into `path`."""

    def __init__(self, path, kind):
        self.path, self.kind = str(path), kind

    def __enter__(self):
        if self.kind == "tfrecord":
            import tensorflow as tf
            self.file = tf.io.TFRecordWriter(self.path)
        else:
            self.file = open(self.path, "w", encoding="utf-8")
        return self

    def write(self, value):
        self.file.write(value if self.kind == "tfrecord" else value + "\n")

    def __exit__(self, *exc):
        self.file.close()


def _new_folder(output_dir, model_name):
    """A folder `prediction-<model>-<time>` that did not exist (made now, if local)."""
    for _ in range(100):  # two jobs in one millisecond: the second takes the next one
        folder = gcs.join(output_dir, layout.folder_name(
            model_name, datetime.datetime.now(datetime.timezone.utc)))
        if gcs.is_gcs(folder):
            if not gcs.names(folder):
                return folder
        else:
            try:
                os.makedirs(output_dir, exist_ok=True)
                os.mkdir(folder)
                return folder
            except FileExistsError:
                pass
            except OSError as e:
                raise PredictError(f"cannot make the output folder in {output_dir}: "
                                   f"{e.strerror}") from None
        time.sleep(0.001)
    raise PredictError(f"no new folder name free in {output_dir}")


def _guarded(read):
    """The batches of `read`, then (None, the PredictError) if it stops on one."""
    try:
        yield from read
    except PredictError as e:
        yield None, e


def _write(predictor, path, first, batch, fast, results, errors):
    """Write one batch's lines (the fast path's, else the slow path's); returns (number
    predicted, number refused)."""
    text = fast.result()
    if text is not None:
        results.write(text, len(batch))
        return len(batch), 0
    text, refused, predicted = predictor.slow(path, first, batch)
    results.write(text, predicted)
    errors.write("\n".join(refused).encode(), len(refused))
    return predicted, len(refused)


class _Shards:
    """Lines into hidden part files in `folder`, a new one every `shard_rows` lines;
    `finish` gives each its name, `prefix-NNNNN-of-NNNNN` (at least one, maybe empty)."""

    def __init__(self, folder, prefix, shard_rows):
        self.folder, self.prefix, self.shard_rows = folder, prefix, shard_rows
        self.parts, self.file, self.lines = [], None, 0

    def write(self, text, count):
        """Write `count` lines (bytes, joined by \\n, no last line end)."""
        while count:
            if self.file is None or self.lines == self.shard_rows:
                self._next()
            fit = min(count, self.shard_rows - self.lines)
            end = len(text)
            if fit < count:  # the end of the last line that fits
                end = -1
                for _ in range(fit):
                    end = text.find(b"\n", end + 1)
            self.file.write(text[:end] + b"\n")
            text, count, self.lines = text[end + 1:], count - fit, self.lines + fit

    def _next(self):
        if self.file is not None:
            self.file.close()
        self.parts.append(os.path.join(self.folder,
                                       f".{self.prefix}-{len(self.parts):05d}.part"))
        self.file, self.lines = open(self.parts[-1], "wb"), 0

    def finish(self):
        """Close the last part; (part path, final name) of each, in order."""
        if self.file is None:
            self._next()
        self.file.close()
        return [(part, layout.shard_name(self.prefix, i, len(self.parts)))
                for i, part in enumerate(self.parts)]
