"""What a batch prediction job writes, and reading it back: the same code reads the local
job's folder and Vertex AI's.

    <output dir>/prediction-<model>-<create time>/       a new folder for every job
        prediction.results-00000-of-00002               {"instance": …, "prediction": {…}}
        prediction.results-00001-of-00002               one JSON object per line
        prediction.errors_stats-00000-of-00001          written even when empty

The names are those of real Vertex AI jobs' folders (where Google's pages disagree, and what
was found: `census.batch.vertex`); the create time is UTC to the millisecond,
2026_12_07T17_30_00_123Z (no colons: the name is a folder on Windows too). The errors files
differ: Vertex AI writes one line per kind of failure for a custom-trained model, a Python
tuple of a message and a count, `('Post request fails. …', 16)`, and does not say which
instances failed. The local job writes a line per refused instance, in the form of Vertex
AI's PredictionResult: `{"instance": …, "error": {"status": "INVALID_ARGUMENT", "message":
"test.json line 7: field 'age' must be …"}}`. `read` reads both.
"""
import json

from census import gcs

RESULTS = "prediction.results"
ERRORS = "prediction.errors_stats"
TIME_FORMAT = "%Y_%m_%dT%H_%M_%S"


def folder_name(model_name, created):
    """`prediction-<model_name>-<created>` (created: an aware datetime, written in UTC)."""
    import datetime
    utc = created.astimezone(datetime.timezone.utc)
    return f"prediction-{model_name}-{utc.strftime(TIME_FORMAT)}_{utc.microsecond // 1000:03d}Z"


def shard_name(prefix, index, count):
    """`prefix-00000-of-00002`: shard `index` (0-based) of `count`."""
    return f"{prefix}-{index:05d}-of-{count:05d}"


def files(folder, prefix=RESULTS):
    """The paths (or gs:// URIs) of `folder`'s files named `prefix-…`, in shard order."""
    import os
    listed = gcs.names(folder) if gcs.is_gcs(folder) else sorted(os.listdir(folder))
    return [gcs.join(folder, n) for n in listed if n.startswith(prefix + "-")]


def read(folder, prefix=RESULTS):
    """Every line of `folder`'s `prefix` files (results by default; `ERRORS` for the errors),
    as dicts, shard by shard, from a local path or gs:// URI. A Vertex AI errors line
    `('message', n)` reads as {"error": {"message": …}, "count": n}. Raises ValueError naming
    the file and line of a line that is neither."""
    import ast
    for path in files(folder, prefix):
        for number, line in enumerate(_lines(path), 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                try:
                    message, count = ast.literal_eval(line.strip())
                    value = {"error": {"message": str(message)}, "count": int(count)}
                except (ValueError, SyntaxError, TypeError):
                    value = None
            if not isinstance(value, dict):
                raise ValueError(f"{path} line {number}: not a JSON object, nor a (message, "
                                 "count) pair")
            yield value


def _lines(path):
    """The lines of a local file (closed once read) or of a gs:// object, streamed."""
    if gcs.is_gcs(path):
        yield from gcs.read_lines(path)
        return
    with open(path, encoding="utf-8") as lines:
        yield from lines


def key(instance):
    """The instance as one string, the same for equal JSON values: keys sorted, and 39 the
    same as 39.0 (a service may echo a number either way)."""
    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value
    return json.dumps(plain(instance), sort_keys=True)


def matched(results, labelled):
    """(label, results line) for each line of `results` (`read(folder)`: dicts with
    "instance" and "prediction") whose instance is among `labelled`, pairs (instance as the
    job was given it, label 0 or 1); None for the label of a line with none left. Lines are
    matched by their instance, not their order: Vertex AI keeps no order across its files.
    Equal instances get equal predictions, so which of their labels each takes changes no
    figure."""
    import collections
    labels = collections.defaultdict(list)
    for instance, label in labelled:
        labels[key(instance)].append(int(label))
    for line in results:
        left = labels.get(key(line["instance"]))
        yield (left.pop() if left else None), line


def score(results, labelled):
    """Accuracy and exact AUC (`census.metrics.roc_auc`, on the logits) of the results lines
    against `labelled`, matched as `matched` does. Returns {"accuracy", "auc", "rows",
    "unmatched"}: rows scored, and results with no label left. Raises ValueError if no line
    matches."""
    import numpy as np

    from census.metrics import roc_auc
    scored, unmatched = [], 0
    for label, line in matched(results, labelled):
        if label is None:
            unmatched += 1
            continue
        prediction = line["prediction"]
        scored.append((label, prediction["class_ids"][0], prediction["logits"][0]))
    if not scored:
        raise ValueError("no results line matches a labelled instance")
    truth, classes, logits = (np.array(column) for column in zip(*scored))
    return {"accuracy": float(np.mean(truth == classes)), "auc": roc_auc(truth, logits),
            "rows": len(scored), "unmatched": unmatched}
