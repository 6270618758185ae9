"""The versions a server serves (chapter 9), as TF Serving's file system source finds them.

`ModelWatcher` polls a base directory: a version is a numeric directory holding
`saved_model.pb`. The newest is loaded in the watcher's thread, warmed up, and only then
swapped in; the previous version serves until that moment, and requests already holding it
finish on it. The newest `keep` versions stay loaded (TF Serving's `latest { num_versions }`
policy, whose default keeps 1), so a pinned older version can still be asked for when
`keep` > 1.

A version copied in pieces (`gsutil cp` and `cp -r` write `saved_model.pb` before
`variables/`: tensorflow/serving#631, #1086) fails to load until it is whole: it is tried
again as soon as its files change, otherwise after a back-off of up to 30 s, and never given
up while it is on disk (TF Serving gives up after `--max_num_load_retries`, 5, one minute
apart, and keeps the version LOADING meanwhile). A SavedModel directory given as the base
path itself (what a Vertex AI Model's `artifact_uri` names) is served as version 1. Each
change of state is one line in the log.
"""
import dataclasses
import gc
import logging
import os
import threading
import time

from census import export, instances, schema, signature
from census.serving.protocol import DEFAULT_MODEL_NAME, ServingError

log = logging.getLogger("census.serving")


@dataclasses.dataclass(eq=False)
class Version:
    """One loaded SavedModel version."""
    number: int
    path: str
    model: object  # what tf.saved_model.load returned; holding it keeps the version alive
    signatures: dict
    signature_defs: dict  # name -> SignatureDef as JSON (TF Serving's metadata format)

    def signature(self, name):
        """(key, export format) of the servable signature that answers `name` (None, "" or
        "serving_default": the default, `predict` for an export without `serving_default`:
        `census.signature.choose`), or a 400 naming those there are (TF Serving's words)."""
        if not isinstance(name, (str, type(None))):
            raise ServingError(400, "signature_name must be a string")
        try:
            name = signature.choose(name, self.signatures)
        except signature.MissingSignature as e:
            raise ServingError(400, f'Serving signature name: "{e.name}" not found in '
                               f'signature def (this version has: {", ".join(e.available)})'
                               ) from None
        try:
            return name, instances.input_format(self.signature_defs[name]["inputs"])
        except instances.PredictError as e:
            raise ServingError(400, f'signature "{name}": {e}') from None


MAX_RETRY_SECONDS = 30  # the longest wait before a version that failed to load is tried again
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt", "fingerprint.pb", "variables",
                     "assets")  # what a SavedModel directory holds (tf.saved_model.save)


class LayoutError(ValueError):
    """A --model-base-path that is neither a base directory of versions nor a SavedModel."""


def layout(base_path):
    """What `base_path` is (local or gs://): "versions", a base directory of numbered version
    directories (empty too: versions may arrive later, as TF Serving waits for them), or
    "saved_model", a SavedModel directory itself (served as version 1). Raises LayoutError,
    in one sentence, for anything else: no such path, a file, a folder of other things."""
    import tensorflow as tf
    gfile, path = tf.io.gfile, str(base_path).rstrip("/")
    expected = "expected the export base directory, JOB_DIR/export/census, or a SavedModel " \
               "directory"
    if not gfile.exists(path):
        raise LayoutError(f"no directory {path} ({expected})")
    if not gfile.isdir(path):
        raise LayoutError(f"{path} is a file, not a directory ({expected})")
    # hidden names aside: an export being staged there (`export.publish`), as TF Serving
    # skips every name that is not a version number
    names = {n.rstrip("/") for n in gfile.listdir(path) if not n.startswith(".")}
    if names & set(SAVED_MODEL_FILES):
        return "saved_model"
    if not names or any(n.isdigit() for n in names):
        return "versions"
    found = base_dir_below(path)
    raise LayoutError(f"{path} holds no numbered version directories and no saved_model.pb "
                      f"({expected}){f'; did you mean {found}' if found else ''}")


def base_dir_below(path, depth=3):
    """The first base directory of versions (a folder with a numbered version holding
    saved_model.pb) at most `depth` levels below `path`, breadth first; None if none."""
    import tensorflow as tf
    level = [path]
    for _ in range(depth):
        below = [f"{folder}/{n.rstrip('/')}" for folder in level
                 for n in sorted(tf.io.gfile.listdir(folder))
                 if tf.io.gfile.isdir(f"{folder}/{n.rstrip('/')}")]
        for folder in below:
            if any(export.has_saved_model(v) for v in export.list_versions(folder)):
                return folder
        level = below[:100]  # a job dir's logs and checkpoints: looked at, not walked through
    return None


def fingerprint(version_dir):
    """Every file under a version directory with its size and modification time: what
    changes while the version is still being copied in."""
    import tensorflow as tf
    files = []
    for folder, _, names in tf.io.gfile.walk(str(version_dir)):
        for name in names:
            info = tf.io.gfile.stat(f"{folder.rstrip('/')}/{name}")
            files.append((f"{folder}/{name}", info.length, info.mtime_nsec))
    return tuple(sorted(files))


def signature_defs(version_dir):
    """Every SignatureDef of the export's `serve` graph, as TF Serving's metadata shows it."""
    import tensorflow as tf
    from google.protobuf import json_format
    from tensorflow.core.protobuf import saved_model_pb2
    saved = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(f"{str(version_dir).rstrip('/')}/saved_model.pb", "rb") as f:
        saved.ParseFromString(f.read())
    graph = next(g for g in saved.meta_graphs if "serve" in g.meta_info_def.tags)
    return {name: json_format.MessageToDict(sig, preserving_proto_field_name=True,
                                            always_print_fields_with_no_presence=True)
            for name, sig in graph.signature_def.items()}


def warmup_instance(fmt="JSON"):
    """One valid instance of an export format (TF Serving runs warm-up requests before a
    version serves)."""
    fields = {c: schema.NUMERIC_RANGES[c][0] if c in schema.NUMERIC_COLUMNS
              else schema.VOCABULARIES[c][0] for c in schema.INPUT_COLUMNS}
    if fmt == "CSV":
        return ", ".join("1" if c in schema.UNUSED_COLUMNS else str(fields[c])
                         for c in signature.CSV_FIELDS)
    if fmt == "EXAMPLE":
        return instances.to_example(fields)
    return fields


def load_version(path, number=None):
    """Load, check and warm up one version (runs in the watcher's thread); `number` defaults
    to the directory's name."""
    import tensorflow as tf
    model = tf.saved_model.load(path)
    signatures = {k: v for k, v in model.signatures.items() if not k.startswith("__")}
    defs = {k: v for k, v in signature_defs(path).items() if k in signatures}
    number = int(os.path.basename(path.rstrip("/"))) if number is None else number
    version = Version(number, path, model, signatures, defs)
    for name, fn in signatures.items():  # trace and run each servable signature once
        try:
            fmt = version.signature(name)[1]
        except ServingError:
            continue  # not one of ours: asking for it gets a 400
        fn(**instances.to_tensors(fmt, [warmup_instance(fmt)]))
    return version


@dataclasses.dataclass(frozen=True)
class Retry:
    """A version that failed to load: its files then, how often it failed, when it is tried
    again should its files not change (time.monotonic), and why it failed."""
    files: tuple
    failures: int
    at: float
    error: str


class ModelWatcher:
    """Polls `base_path` for versions; loads the newest in its own thread; serves the newest
    `keep` loaded versions. `latest()` and `get(n)` are safe to call from any thread. Raises
    LayoutError for a `base_path` that is neither a base directory nor a SavedModel."""

    def __init__(self, base_path, name=DEFAULT_MODEL_NAME, keep=1, poll_seconds=1.0,
                 loader=load_version, max_retry_seconds=MAX_RETRY_SECONDS):
        self.base_path, self.name, self.keep = str(base_path).rstrip("/"), name, keep
        self.poll_seconds, self.loader = poll_seconds, loader
        self.max_retry_seconds = max_retry_seconds
        self.layout = layout(self.base_path)
        self._loaded = {}  # number -> Version; replaced, never mutated (readers take a snapshot)
        self._status = {}  # number -> (state, error message)
        self._retries = {}  # number -> Retry
        self._waiting = False  # said that no version is there yet
        self._stop = threading.Event()
        self._thread = None
        self.loaded_event = threading.Event()  # set once a first version serves
        if self.layout == "saved_model":
            log.warning("%s is a SavedModel directory: serving it as version 1 of %s",
                        self.base_path, self.name)

    # readers
    def latest(self):
        """The newest loaded Version, or None."""
        loaded = self._loaded
        return loaded[max(loaded)] if loaded else None

    def get(self, number):
        """Loaded version `number`, or None."""
        return self._loaded.get(number)

    def status(self):
        """{version number: (state, error message)}, TF Serving's states."""
        return dict(self._status)

    def not_serving(self):
        """Why no version serves yet, in one sentence."""
        retries = self.retrying()
        if retries:
            number = max(retries)
            return (f"version {number} did not load yet ({retries[number].error}); it is tried "
                    "again when its files change")
        return f"waiting for {self._awaited()}"

    def _awaited(self):
        """Where a first version is expected."""
        return (f"{self.base_path}/saved_model.pb" if self.layout == "saved_model"
                else f"{self.base_path}/<version>/saved_model.pb")

    def retrying(self):
        """{version number: Retry} of the versions that failed to load and are tried again."""
        return dict(self._retries)

    # the watcher
    def versions_on_disk(self):
        """{number: path} of the versions whose saved_model.pb is there."""
        if self.layout == "saved_model":
            found = {1: self.base_path}
        else:
            found = {int(os.path.basename(p)): p for p in export.list_versions(self.base_path)}
        return {n: p for n, p in found.items() if export.has_saved_model(p)}

    def poll(self):
        """One look at the base directory: load, newest first, until `keep` versions serve
        (a version that fails to load is tried again later, and an older one serves
        meanwhile); unload what fell out."""
        on_disk = self.versions_on_disk()
        self._say_if_waiting(on_disk)
        wanted = []
        for number in sorted(on_disk, reverse=True):
            if sum(n in self._loaded for n in wanted) >= self.keep:
                break
            wanted.append(number)
            if number not in self._loaded:
                self._load(number, on_disk)
        for number in set(self._retries) - set(wanted):  # gone, or older than what serves
            self._status[number] = ("END", self._retries.pop(number).error)
            log.info("version %s of %s is no longer tried: %s", number, self.name,
                     "older than the versions that serve" if number in on_disk else "gone")
        self._loaded = self._trim(self._loaded, on_disk)

    def _say_if_waiting(self, on_disk):
        """One log line when the server starts waiting for a first version."""
        waiting = not on_disk and not self._loaded
        if waiting and not self._waiting:
            log.warning("model %s has no version yet: waiting for %s", self.name,
                        self._awaited())
        self._waiting = waiting

    def _load(self, number, on_disk):
        """Load one version of `on_disk`, unless it failed before and neither its files
        changed nor its back-off ran out."""
        path = on_disk[number]
        retry, files = self._retries.get(number), fingerprint(path)
        if retry and files == retry.files and time.monotonic() < retry.at:
            return
        self._status[number] = ("LOADING", retry.error if retry else "")
        try:
            version = self.loader(path, number)
        except Exception as e:  # noqa: BLE001 — a half-copied or broken export: keep serving
            failures = retry.failures + 1 if retry else 1
            wait = min(self.max_retry_seconds, self.poll_seconds * 2 ** (failures - 1))
            error = f"{type(e).__name__}: {' '.join(str(e).split())}"
            self._retries[number] = Retry(files, failures, time.monotonic() + wait, error)
            self._status[number] = ("LOADING", error)  # as TF Serving shows a load it retries
            if retry is None:
                log.warning("version %s of %s did not load (%s); trying again when its files "
                            "change, else within %g s", number, self.name, error,
                            self.max_retry_seconds)
            return
        self._status[number] = ("AVAILABLE", "")  # before it serves: status never lags
        self._loaded = self._trim({**self._loaded, number: version}, on_disk)
        # TensorFlow and a loaded model are ~400k long-lived Python objects: a full garbage
        # collection walks them all (0.1-0.2 s with the GIL held, a latency spike for every
        # request in flight). Freezing moves them out of the collector's sight.
        gc.freeze()
        self.loaded_event.set()
        if self._retries.pop(number, None):
            log.warning("version %s of %s loaded at last: serving it", number, self.name)
        else:
            log.info("serving version %s of %s", number, self.name)

    def _trim(self, loaded, on_disk):
        """Keep the newest `keep` loaded versions still on disk (all of them rather than none,
        should every directory vanish)."""
        keep = sorted(n for n in loaded if n in on_disk)[-self.keep:]
        if not keep:
            return loaded
        for n in set(loaded) - set(keep):
            self._status[n] = ("END", "")
            log.info("version %s of %s unloaded", n, self.name)
        return {n: loaded[n] for n in keep}

    def _run(self):
        failed = None  # why the last poll failed: said once, not at every poll
        while not self._stop.is_set():
            try:
                self.poll()
                failed = None
            except Exception as e:  # noqa: BLE001 — e.g. a directory replaced as it was read
                if str(e) != failed:
                    log.warning("polling %s failed (%s: %s); trying again", self.base_path,
                                type(e).__name__, e)
                failed = str(e)
            self._stop.wait(self.poll_seconds)

    def start(self):
        """Start watching, in a thread of its own; returns the watcher."""
        self._thread = threading.Thread(target=self._run, name="census-model-watcher",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop watching (waits for a load in progress, at most 30 s)."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)
