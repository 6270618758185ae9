"""Local prediction with an exported SavedModel: today's `gcloud ml-engine local predict`.

Instances are JSON objects, one per line (the 2017 `test.json` format), with the 13 serving
inputs. They are checked field by field before TensorFlow sees them, so a typo gets a message
naming the instance and the field rather than a shape error from deep inside the graph.
"""
import json
import math
import os

import tensorflow as tf

from census import export, schema

OUTPUT_KEYS = ("class_ids", "classes", "logistic", "logits", "probabilities")


class PredictError(ValueError):
    """Instances that cannot be sent to the model; the message says which and why."""


def resolve_model_dir(model_dir):
    """An export version directory; a base directory (`…/export/census`) means its newest."""
    if tf.io.gfile.exists(os.path.join(model_dir, "saved_model.pb")):
        return model_dir
    versions = export.list_versions(model_dir)
    if not versions:
        raise PredictError(f"no SavedModel in {model_dir}: expected saved_model.pb there or "
                           "numbered version directories under it")
    return versions[-1]


def read_instances(path):
    """Newline-delimited JSON objects from a file; blank lines are ignored."""
    instances = []
    with open(path) as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                try:
                    instances.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise PredictError(f"{path} line {number}: not valid JSON ({e.msg})") from None
    if not instances:
        raise PredictError(f"{path} holds no instances")
    return instances


FLOAT32_MAX = 3.4028234663852886e38  # the largest finite float32


def check_number(column, value):
    """Why `value` cannot be the numeric field `column`, or None if it can.

    A number must be a JSON number (not a bool), fit a float32, and lie in the range a census
    answer can have (`schema.VALID_RANGES`: no negative age, money or hours, no NaN or
    infinity). TF Serving refuses such a request with a 400; so do `census predict` and
    `census serve`.
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


def to_columns(instances):
    """A list of instance dicts → one tensor per input column, after checking every field.

    `instances`: dicts with the 13 input fields, numbers as int/float, categories as str.
    Returns {column: tf.Tensor of shape (n,)}, float32 or string as `schema.INPUT_DTYPES`.
    Raises PredictError naming the instance (1-based) and the field: an unknown or missing
    field, a wrong type, or a number no census answer can be (`check_number`).
    """
    columns = {c: [] for c in schema.INPUT_COLUMNS}
    for n, instance in enumerate(instances, 1):
        if not isinstance(instance, dict):
            raise PredictError(f"instance {n}: expected a JSON object with the input fields")
        unknown = sorted(set(instance) - set(columns))
        missing = [c for c in schema.INPUT_COLUMNS if c not in instance]
        if unknown:
            raise PredictError(f"instance {n}: unknown field {unknown[0]!r} "
                               f"(inputs are: {', '.join(schema.INPUT_COLUMNS)})")
        if missing:
            raise PredictError(f"instance {n}: missing field {missing[0]!r}")
        for c, value in instance.items():
            if c in schema.NUMERIC_COLUMNS:
                problem = check_number(c, value)
            else:
                problem = None if isinstance(value, str) else f"must be a string, got {value!r}"
            if problem:
                raise PredictError(f"instance {n}: field {c!r} {problem}")
            columns[c].append(value)
    return {c: tf.constant(v, dtype=schema.INPUT_DTYPES[c]) for c, v in columns.items()}


def predict(model_dir, instances, signature="serving_default"):
    """Run the export's signature on instances; returns numpy arrays keyed like the outputs."""
    model = tf.saved_model.load(resolve_model_dir(model_dir))
    outputs = model.signatures[signature](**to_columns(instances))
    return {k: v.numpy() for k, v in outputs.items()}


def rows(outputs):
    """Column arrays → one dict of plain Python values per instance (JSON-ready)."""
    def plain(value):
        value = value.tolist()
        return [v.decode() if isinstance(v, bytes) else v for v in value]
    n = len(outputs["logits"])
    return [{k: plain(outputs[k][i]) for k in OUTPUT_KEYS} for i in range(n)]


def format_table(outputs):
    """The table `gcloud local predict` printed: one row per instance, one column per output."""
    table = [[k.upper() for k in OUTPUT_KEYS]]
    for row in rows(outputs):
        table.append([json.dumps(row[k]) for k in OUTPUT_KEYS])
    widths = [max(len(r[i]) for r in table) for i in range(len(OUTPUT_KEYS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip()
                     for r in table)
