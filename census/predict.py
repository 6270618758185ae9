"""Local prediction with an exported SavedModel: today's `gcloud ml-engine local predict`.

Instances come as the export's format wants them (`census.instances`): JSON objects with
the 13 inputs, one per line (the 2017 `test.json` format), for a JSON export; CSV rows for a
CSV export; tf.Example records for an EXAMPLE export. They are checked field by field before
TensorFlow sees them, so a typo gets a message naming the instance and the field rather than
a shape error from deep inside the graph.
"""
import json

from census import instances, signature
from census.instances import PredictError
from census.signature import MissingSignature, choose

READERS = {"json": instances.json_lines, "text": instances.text_lines,
           "tfrecord": instances.tfrecords}
FITS = {"JSON": {"json"}, "CSV": {"json", "text"}, "EXAMPLE": {"json", "tfrecord"}}


def resolve_model_dir(model_dir):
    """An export version directory; a base directory (`…/export/census`) means its newest
    version with a saved_model.pb (one still arriving has none yet)."""
    from census import export
    if export.has_saved_model(model_dir):
        return model_dir
    versions = [v for v in export.list_versions(model_dir) if export.has_saved_model(v)]
    if not versions:
        raise PredictError(f"no SavedModel in {model_dir}: expected saved_model.pb there or "
                           "numbered version directories under it")
    return versions[-1]


def read_instances(path, kind="json", compression=""):
    """Every instance of a file: "json" (one JSON value per line), "text" (one CSV row per
    line) or "tfrecord" (serialized tf.train.Example records; `compression` "", "GZIP" or
    "ZLIB"). Blank lines are skipped. Raises PredictError for a line that is not JSON, a
    TFRecord file it cannot read, or a file with no instance."""
    check_compression(kind, compression)
    found = list(READERS[kind](path, **({"compression": compression} if compression else {})))
    if not found:
        raise PredictError(f"{path} holds no instances")
    return found


def check_compression(kind, compression):
    """PredictError unless `compression` ("", "GZIP", "ZLIB") is "" or `kind` is "tfrecord"."""
    if compression and kind != "tfrecord":
        raise PredictError("--compression is for TFRecord files (--tfrecord-instances)")


def load_signature(model_dir, signature=None, kind="json"):
    """The export's signature function and its format (JSON, CSV or EXAMPLE), once checked
    that it takes instances of `kind` ("json", "text", "tfrecord"). `signature`: a key, or
    None / "serving_default" for the default (`census.signature.choose`: `predict` for an
    export without `serving_default`, the 2017 census export). Raises PredictError, in one
    sentence, for a missing signature (listing those there) or instances of a kind the
    export does not take."""
    function = signature_function(model_dir, signature)
    fmt = signature_format(function)
    if kind not in FITS[fmt]:
        raise PredictError(f"this export ({fmt} format) takes {instances.WHAT_FITS[fmt]}")
    return function, fmt


def signature_function(model_dir, signature=None):
    """The loaded signature function that answers `signature` (see `load_signature`) of the
    export at `model_dir` (or its base directory: the newest). Raises PredictError."""
    import tensorflow as tf
    model = tf.saved_model.load(resolve_model_dir(str(model_dir)))
    try:
        function = model.signatures[choose(signature, model.signatures)]
    except MissingSignature as e:
        raise PredictError(str(e)) from None
    function.loaded_model = model  # its variables live as long as the function is used
    return function


def signature_format(function):
    """The export format (JSON, CSV or EXAMPLE) a loaded signature function takes."""
    return instances.input_format(function.structured_input_signature[1])


def predict(model_dir, items, signature=None, kind="json"):
    """Run the export's signature on `items` (what `read_instances(path, kind)` read);
    returns numpy arrays keyed like the outputs (all of them: a 2017 export's seven too).
    Raises PredictError, in one sentence, for a missing signature, instances of a kind the
    export does not take, or a bad instance."""
    function, fmt = load_signature(model_dir, signature, kind)
    outputs = function(**instances.to_tensors(fmt, items))
    return {k: v.numpy() for k, v in outputs.items()}


def score(model_dir, files, batch_size=1000):
    """An export's `accuracy`, `auc` and `loss` (binary cross-entropy) on labelled CSV files
    (a list of paths of the training files' format), and their number of `rows`: how the
    course scores the test split, once, at the end, with the model it chose. `model_dir`:
    a JSON export (or its base directory: the newest), scored through its default signature
    (`predict` for a 2017 export). Raises PredictError for a missing signature or another
    export format, DataError for a file the trainer could not read either (naming its line:
    `census.data.check_training_files`, whose cleaning applies too). The AUC is exact
    (`census.metrics.roc_auc`), as LightGBM's is."""
    import tempfile

    import numpy as np
    import tf_keras as keras

    from census import data, inputs
    from census.metrics import roc_auc
    function = signature_function(model_dir)
    if signature_format(function) != "JSON":
        raise PredictError("score takes a JSON export (13 named inputs)")
    metrics = {"accuracy": keras.metrics.BinaryAccuracy(threshold=0.0),
               "loss": keras.metrics.BinaryCrossentropy(from_logits=True)}
    labels, logits = [], []
    with tempfile.TemporaryDirectory(prefix="census-score-") as cleaned:
        files, _ = data.check_training_files(list(files), cleaned)
        for features, batch_labels in inputs.input_fn(files, num_epochs=1, shuffle=False,
                                                      batch_size=batch_size):
            batch_logits = function(**features)["logits"]
            for metric in metrics.values():
                metric.update_state(batch_labels[:, None], batch_logits)
            labels.append(batch_labels.numpy())
            logits.append(batch_logits.numpy().ravel())
    labels, logits = np.concatenate(labels), np.concatenate(logits)
    # the AUC ranks the logits: the same order as the probabilities, without float32 ties
    return {"accuracy": float(metrics["accuracy"].result()), "auc": roc_auc(labels, logits),
            "loss": float(metrics["loss"].result()), "rows": int(labels.size)}


def columns(outputs):
    """{output key: numpy array (batch, n)} → {output key: one list of n plain Python values
    per instance}, strings decoded (JSON-ready; TF Serving's columnar format), in
    `signature.output_order` (the course's five, then any other output of the export, as a
    2017 export's `all_class_ids` and `all_classes`). Raises KeyError for a missing output
    of `signature.OUTPUT_KEYS`."""
    missing = [k for k in signature.OUTPUT_KEYS if k not in outputs]
    if missing:
        raise KeyError(missing[0])
    plain = {}
    for k in signature.output_order(outputs):
        values = outputs[k].tolist()
        if outputs[k].dtype.kind in "OS":  # strings: bytes, from TensorFlow
            values = [[v.decode() if isinstance(v, bytes) else v for v in row] for row in values]
        plain[k] = values
    return plain


def rows(outputs):
    """The same values as `columns`, one dict per instance (TF Serving's row format)."""
    plain = columns(outputs)
    return [dict(zip(plain, values)) for values in zip(*plain.values())]


def format_table(outputs):
    """The table `gcloud local predict` printed: one row per instance, one column per output
    (`columns`' order)."""
    keys = signature.output_order(outputs)
    table = [[k.upper() for k in keys]]
    for row in rows(outputs):
        table.append([json.dumps(row[k]) for k in keys])
    widths = [max(len(r[i]) for r in table) for i in range(len(keys))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip()
                     for r in table)
