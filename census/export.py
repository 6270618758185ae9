"""Export a trained model as a SavedModel with the 2017 serving signature.

A serving function turns what a client sends (JSON fields, CSV rows or tf.Example protos: the
*receiver* tensors) into the model's features, runs the model and returns the five outputs of
the 2017 `DNNLinearCombinedClassifier`. Both signature keys, `serving_default` and `predict`
(the one the 2017 `saved_model_cli` command asks for), point at it.
"""
import contextlib
import io
import os
import shutil
import tempfile
import time

import tensorflow as tf
import tf_keras as keras

from census import schema

EXPORT_FORMATS = ("JSON", "CSV", "EXAMPLE")
SIGNATURE_KEYS = ("serving_default", "predict")


def predictions(logits):
    """The 2017 head's outputs from a (batch, 1) logit: class_ids, classes, logistic, …"""
    logistic = tf.sigmoid(logits)
    class_ids = tf.cast(logistic > 0.5, tf.int64)
    return {
        "class_ids": class_ids,
        "classes": tf.gather(tf.constant(schema.LABELS), class_ids),
        "logistic": logistic,
        "logits": logits,
        "probabilities": tf.concat([1.0 - logistic, logistic], axis=1),
    }


def _json_receiver():
    """One 1-D placeholder per input column: features are the receiver tensors themselves."""
    spec = {c: tf.TensorSpec([None], schema.INPUT_DTYPES[c], name=c)
            for c in schema.INPUT_COLUMNS}
    return [spec], lambda received: received


def _csv_receiver():
    """One string per instance: a CSV row like the training files, without the label.

    The row still carries `fnlwgt`, which the model does not use: the receiver tensor (a row)
    and the features (13 columns) differ, as in the 2017 post's example.
    """
    columns = [c for c in schema.CSV_COLUMNS if c != schema.LABEL_COLUMN]
    defaults = [schema.CSV_DEFAULTS[schema.CSV_COLUMNS.index(c)] for c in columns]

    def to_features(rows):
        fields = dict(zip(columns, tf.io.decode_csv(rows, record_defaults=defaults)))
        return {c: fields[c] for c in schema.INPUT_COLUMNS}
    return [tf.TensorSpec([None], tf.string, name="csv_row")], to_features


def _example_receiver():
    """Serialized tf.train.Example protos, one per instance, parsed in the graph."""
    spec = {c: tf.io.FixedLenFeature([], schema.INPUT_DTYPES[c]) for c in schema.INPUT_COLUMNS}
    return ([tf.TensorSpec([None], tf.string, name="examples")],
            lambda serialized: tf.io.parse_example(serialized, spec))


RECEIVERS = {"JSON": _json_receiver, "CSV": _csv_receiver, "EXAMPLE": _example_receiver}


def serving_archive(model, export_format="JSON"):
    """A keras ExportArchive holding `model` with the serving signature for `export_format`."""
    if export_format not in RECEIVERS:
        raise ValueError(f"export format must be one of {', '.join(EXPORT_FORMATS)}, "
                         f"not {export_format!r}")
    input_signature, to_features = RECEIVERS[export_format]()

    def serve(received):
        return predictions(model(to_features(received), training=False))

    archive = keras.export.ExportArchive()
    archive.track(model)
    for key in SIGNATURE_KEYS:
        archive.add_endpoint(key, serve, input_signature=input_signature)
    return archive


def export_model(model, export_dir_base, export_format="JSON"):
    """Write a new version `<export_dir_base>/<unix timestamp>/` and return its path.

    The SavedModel is written to a temporary directory first and moved into place when
    complete, so a reader (a server watching the directory) never sees a half-written one.
    """
    tf.io.gfile.makedirs(export_dir_base)
    version = int(time.time())
    while tf.io.gfile.exists(os.path.join(export_dir_base, str(version))):
        version += 1
    final = os.path.join(export_dir_base, str(version))
    with tempfile.TemporaryDirectory(prefix="census-export-") as tmp:
        staged = os.path.join(tmp, str(version))
        with _quiet():  # it lists every variable, and logs the temporary path
            serving_archive(model, export_format).write_out(staged)
        _publish(staged, final)
    return final


@contextlib.contextmanager
def _quiet():
    logger, level = tf.get_logger(), tf.get_logger().level
    logger.setLevel("WARNING")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def _publish(staged, final):
    """Move a finished export into place: a rename locally, a copy ending with saved_model.pb
    on remote file systems such as gs:// (readers look for that file)."""
    if "://" not in final:
        shutil.move(staged, final)
        return
    files = [os.path.join(d, f) for d, _, names in os.walk(staged) for f in names]
    files.sort(key=lambda f: os.path.basename(f) == "saved_model.pb")
    for f in files:
        target = os.path.join(final, os.path.relpath(f, staged))
        tf.io.gfile.makedirs(os.path.dirname(target))
        tf.io.gfile.copy(f, target, overwrite=True)


def list_versions(export_dir_base):
    """The numeric version directories under `export_dir_base`, oldest first."""
    if not tf.io.gfile.isdir(export_dir_base):
        return []
    names = [n.rstrip("/") for n in tf.io.gfile.listdir(export_dir_base)]
    return sorted((os.path.join(export_dir_base, n) for n in names if n.isdigit()),
                  key=lambda p: int(os.path.basename(p)))
