"""Export a trained model as a SavedModel with the 2017 serving signature (chapter 5).

A serving function turns what a client sends (JSON fields, CSV rows or tf.Example protos: the
*receiver* tensors) into the model's features, runs the model and returns the five outputs of
the 2017 `DNNLinearCombinedClassifier`. Both signature keys, `serving_default` and `predict`
(the one the 2017 `saved_model_cli` command asks for), point at it. The exporters say when
`train_and_evaluate` exports: at the end, after every evaluation, or when one beats the rest.
"""
import logging
import math
import os
import shutil
import tempfile
import time
import uuid

import tensorflow as tf
import tf_keras as keras

from census import inputs, quiet, schema, signature

SIGNATURE_KEYS = ("serving_default", "predict")


def predictions(logits):
    """The 2017 classifier head's five outputs (`signature.OUTPUT_KEYS`) from `logits`,
    float32 (batch, 1): `class_ids` int64 (batch, 1), `classes` string (batch, 1) (the label
    strings of the files, `schema.LABELS`), `logistic` and `logits` float32 (batch, 1),
    `probabilities` float32 (batch, 2)."""
    logistic = tf.sigmoid(logits)
    class_ids = tf.cast(logistic > 0.5, tf.int64)
    classes = tf.gather(tf.constant(schema.LABELS), class_ids)
    probabilities = tf.concat([1.0 - logistic, logistic], axis=1)
    return dict(zip(signature.OUTPUT_KEYS,
                    (class_ids, classes, logistic, logits, probabilities)))


def json_receiver():
    """The JSON format's receiver: one string or float32 input of shape (batch,) per column,
    named as the column; the features are the received tensors themselves. Returns
    (input signature, a function from received to features), as every receiver does."""
    spec = {c: tf.TensorSpec([None], schema.INPUT_DTYPES[c], name=c)
            for c in schema.INPUT_COLUMNS}
    return [spec], lambda received: received


def csv_receiver():
    """One string per instance: a CSV row like the training files, without the label.

    The row still carries `fnlwgt`, which the model does not use: the receiver tensor (a row)
    and the features (13 columns) differ, as in the 2017 post's example. The row is parsed
    as the training files are (`census.inputs.decode_rows`).
    """
    return ([tf.TensorSpec([None], tf.string, name=signature.SINGLE_INPUT["CSV"])],
            lambda rows: inputs.decode_rows(rows, signature.CSV_FIELDS))


def example_receiver():
    """The EXAMPLE format's receiver: serialized tf.train.Example protos (string, (batch,)),
    one per instance, parsed in the graph into the 13 features."""
    spec = {c: tf.io.FixedLenFeature([], schema.INPUT_DTYPES[c]) for c in schema.INPUT_COLUMNS}
    return ([tf.TensorSpec([None], tf.string, name=signature.SINGLE_INPUT["EXAMPLE"])],
            lambda serialized: tf.io.parse_example(serialized, spec))


RECEIVERS = {"JSON": json_receiver, "CSV": csv_receiver, "EXAMPLE": example_receiver}


def serving_archive(model, export_format="JSON"):
    """A `tf_keras.export.ExportArchive` holding `model` (raw features in, a logit out) with
    one serving function for `export_format` (JSON, CSV or EXAMPLE) under both signature
    keys, `serving_default` and `predict`. Raises ValueError for another format."""
    if export_format not in RECEIVERS:
        raise ValueError(f"export format must be one of {', '.join(signature.FORMATS)}, "
                         f"not {export_format!r}")
    input_signature, to_features = RECEIVERS[export_format]()

    def serve(received):
        return predictions(model(to_features(received), training=False))

    archive = keras.export.ExportArchive()
    archive.track(model)
    for key in SIGNATURE_KEYS:
        archive.add_endpoint(key, serve, input_signature=input_signature)
    return archive


def export_model(model, export_dir_base, export_format="JSON", version=None):
    """Write `model` (a Keras model from `census.model.build_model`) as a new version
    `<export_dir_base>/<unix timestamp>/` (or `<export_dir_base>/<version>/`), with a serving
    function for `export_format` (JSON, CSV or EXAMPLE); returns its path. The SavedModel is
    written to a hidden folder in `export_dir_base` first and put in place by `publish`, so
    that a reader (a server watching the directory) never sees a half-written one. Raises
    ValueError for an unknown format, FileExistsError if `version` is there already."""
    base = str(export_dir_base).rstrip("/")
    tf.io.gfile.makedirs(base)
    if version is None:
        version = int(time.time())
        while tf.io.gfile.exists(f"{base}/{version}"):
            version += 1
    # Written in a hidden folder beside its place, on the same file system: under
    # ParameterServerStrategy each parameter server writes the variables it holds, and it
    # reaches the job's folders (on Vertex AI, Cloud Storage), not this machine's /tmp.
    staging = f"{base}/{STAGING_PREFIX}{uuid.uuid4().hex[:8]}"
    try:
        with quiet.logs("tensorflow", logging.WARNING), quiet.printing_dropped():
            # it lists every variable, and logs the staging path
            serving_archive(model, export_format).write_out(f"{staging}/{version}")
        return publish(f"{staging}/{version}", base, move=True)
    finally:
        if tf.io.gfile.exists(staging):
            tf.io.gfile.rmtree(staging)


def publish(version_dir, export_dir_base, version=None, move=False):
    """Put the finished SavedModel `version_dir` at `<export_dir_base>/<version>` (default:
    its own folder name), so that no reader ever sees it half there. On a local disk it is
    copied (or moved, with `move`) into a hidden folder inside `export_dir_base`, on the
    target's own file system even when that folder is a mount point (a container's volume, a
    Cloud Storage FUSE path), and renamed into place. Where the target cannot be renamed into
    place, on a remote file system such as gs:// or when it is an empty folder already (a mount
    point itself), its files are copied with `saved_model.pb` last (readers look for that
    file). The one way the course places an export: a trainer's, the best trial's, a version
    given to `census serve`, a model for Vertex AI. Returns the new version's path; raises
    FileExistsError if that version is there already."""
    version_dir = str(version_dir).rstrip("/")
    base = str(export_dir_base).rstrip("/")
    target = f"{base}/{version or os.path.basename(version_dir)}"
    if tf.io.gfile.exists(target) and not (tf.io.gfile.isdir(target)
                                           and not tf.io.gfile.listdir(target)):
        raise FileExistsError(f"version {os.path.basename(target)} already exists in {base}")
    if "://" in target or tf.io.gfile.exists(target):
        copy_saved_model(version_dir, target)
        return target
    os.makedirs(base, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=base)
    try:
        staged = os.path.join(staging, "version")
        (shutil.move if move else shutil.copytree)(version_dir, staged)
        os.rename(staged, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


STAGING_PREFIX = ".staging-"  # a hidden folder: version readers (and TF Serving) skip it


def copy_saved_model(version_dir, target):
    """Copy the SavedModel `version_dir` into `target` (local or gs://) file by file, with
    `saved_model.pb` last: a reader waiting for that file never loads a partial model."""
    for folder, _, names in tf.io.gfile.walk(version_dir):
        relative = os.path.relpath(folder, version_dir)
        into = target if relative == "." else f"{target}/{relative}"
        tf.io.gfile.makedirs(into)
        for name in sorted(names, key=lambda n: n == "saved_model.pb"):  # .pb last
            tf.io.gfile.copy(os.path.join(folder, name), f"{into}/{name}", overwrite=True)


def has_saved_model(version_dir):
    """Whether `version_dir` (local or gs://) holds its saved_model.pb: a version counts from
    then on (its variables may still be on their way: a reader that fails tries again)."""
    return tf.io.gfile.exists(f"{str(version_dir).rstrip('/')}/saved_model.pb")


def list_versions(export_dir_base):
    """The numeric version directories under `export_dir_base` (local or gs://), oldest first;
    [] if there is no such directory."""
    if not tf.io.gfile.isdir(export_dir_base):
        return []
    names = [n.rstrip("/") for n in tf.io.gfile.listdir(export_dir_base)]
    return sorted((os.path.join(export_dir_base, n) for n in names if n.isdigit()),
                  key=lambda p: int(os.path.basename(p)))


# --- exporters: when train_and_evaluate exports (2017: tf.estimator.FinalExporter …) -----

class Exporter:
    """Writes SavedModel versions to `<job_dir>/export/<name>/<timestamp>/`."""

    def __init__(self, name="census", export_format="JSON"):
        self.name, self.export_format = name, export_format

    def after_eval(self, model, job_dir, metrics):
        """Called after every evaluation; returns the new export's path or None."""

    def at_end(self, model, job_dir, metrics):
        """Called once when training has finished; returns the new export's path or None."""

    def export(self, model, job_dir):
        """A new version of `model` in `<job_dir>/export/<name>/`; its path."""
        return export_model(model, os.path.join(job_dir, "export", self.name),
                            self.export_format)

    def newest(self, job_dir):
        """The newest export this exporter wrote for `job_dir`, or None."""
        return (list_versions(os.path.join(job_dir, "export", self.name)) or [None])[-1]


class FinalExporter(Exporter):
    """Exports once, when training ends. With `model_dir` (Vertex AI's AIP_MODEL_DIR), the
    SavedModel goes flat into that directory, the layout `aiplatform.Model.upload(artifact_uri=…)`
    reads, instead of a new version under `<job_dir>/export/<name>/`."""

    def __init__(self, name="census", export_format="JSON", model_dir=None):
        super().__init__(name, export_format)
        self.model_dir = str(model_dir).rstrip("/") if model_dir else None

    def at_end(self, model, job_dir, metrics):
        """Exports: training has ended."""
        if not self.model_dir:
            return self.export(model, job_dir)
        if tf.io.gfile.isdir(check_model_dir(self.model_dir)):  # a SavedModel cut short:
            for part in tf.io.gfile.listdir(self.model_dir):  # its parts, not the folder (a
                part = f"{self.model_dir}/{part.rstrip('/')}"   # mount point stays)
                (tf.io.gfile.rmtree if tf.io.gfile.isdir(part) else tf.io.gfile.remove)(part)
        parent, name = self.model_dir.rsplit("/", 1) if "/" in self.model_dir \
            else (".", self.model_dir)
        return export_model(model, parent, self.export_format, version=name)

    def newest(self, job_dir):
        """The export of a finished run, or None."""
        if not self.model_dir:
            return super().newest(job_dir)
        return self.model_dir if has_saved_model(self.model_dir) else None


SAVED_MODEL_PARTS = {"saved_model.pb", "saved_model.pbtxt", "variables", "assets",
                     "assets.extra", "fingerprint.pb"}


def check_model_dir(model_dir):
    """`model_dir` (local or gs://), if it may take a SavedModel written flat into it: it is
    missing, empty, or holds only a SavedModel's parts (one cut short is written over).
    Raises FileExistsError naming the other files, which are never deleted."""
    if tf.io.gfile.isdir(model_dir):
        others = sorted({e.rstrip("/") for e in tf.io.gfile.listdir(model_dir)}
                        - SAVED_MODEL_PARTS)
        if others:
            raise FileExistsError(f"{model_dir} holds files that are not a SavedModel's "
                                  f"({', '.join(others[:3])}): the model is not written there")
    return model_dir


class LatestExporter(Exporter):
    """Exports after every evaluation and keeps the newest `exports_to_keep` versions."""

    def __init__(self, name="census", export_format="JSON", exports_to_keep=5):
        super().__init__(name, export_format)
        self.exports_to_keep = exports_to_keep

    def after_eval(self, model, job_dir, metrics):
        """Exports, then deletes all but the newest `exports_to_keep` versions."""
        path = self.export(model, job_dir)
        for old in list_versions(os.path.dirname(path))[:-self.exports_to_keep]:
            tf.io.gfile.rmtree(old)
        return path


class BestExporter(Exporter):
    """Exports after an evaluation that beats every earlier one on `metric`."""

    def __init__(self, name="census", export_format="JSON", metric="auc", higher_is_better=True):
        super().__init__(name, export_format)
        self.metric, self.sign = metric, 1 if higher_is_better else -1
        self.best = -math.inf

    def after_eval(self, model, job_dir, metrics):
        """Exports if `metrics[metric]` (a float) is the best so far. Raises KeyError for a
        metric the evaluation does not give."""
        score = self.sign * metrics[self.metric]
        if score > self.best:
            self.best = score
            return self.export(model, job_dir)
