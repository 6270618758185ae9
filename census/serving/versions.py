"""The versions a server serves (chapter 9), as TF Serving's file system source finds them.

`ModelWatcher` polls a base directory: a version is a numeric directory holding
`saved_model.pb`. The newest is loaded in the watcher's thread, warmed up, and only then
swapped in; the previous version serves until that moment, and requests already holding it
finish on it. The newest `keep` versions stay loaded (TF Serving's `latest { num_versions }`
policy), so a pinned version can still be asked for.
"""
import dataclasses
import gc
import logging
import os
import threading

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
        """(name, export format) of a servable signature, or a 400 naming those there are."""
        if not isinstance(name, (str, type(None))):
            raise ServingError(400, "signature_name must be a string")
        name = name or "serving_default"
        if name not in self.signatures:
            raise ServingError(400, f'Serving signature name: "{name}" not found in signature '
                               f'def (this version has: {", ".join(sorted(self.signatures))})')
        try:
            return name, instances.input_format(self.signature_defs[name]["inputs"])
        except instances.PredictError as e:
            raise ServingError(400, f'signature "{name}": {e}') from None


def is_complete(version_dir):
    """A version directory counts only once its saved_model.pb is there (exports are renamed
    into place, or copied with saved_model.pb last)."""
    return os.path.isfile(os.path.join(version_dir, "saved_model.pb"))


def signature_defs(version_dir):
    """Every SignatureDef of the export's `serve` graph, as TF Serving's metadata shows it."""
    from google.protobuf import json_format
    from tensorflow.core.protobuf import saved_model_pb2
    saved = saved_model_pb2.SavedModel()
    with open(os.path.join(version_dir, "saved_model.pb"), "rb") as f:
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


def load_version(path):
    """Load, check and warm up one version (runs in the watcher's thread)."""
    import tensorflow as tf
    model = tf.saved_model.load(path)
    signatures = {k: v for k, v in model.signatures.items() if not k.startswith("__")}
    defs = {k: v for k, v in signature_defs(path).items() if k in signatures}
    version = Version(int(os.path.basename(path.rstrip("/"))), path, model, signatures, defs)
    for name, fn in signatures.items():  # trace and run each servable signature once
        try:
            fmt = version.signature(name)[1]
        except ServingError:
            continue  # not one of ours: asking for it gets a 400
        fn(**instances.to_tensors(fmt, [warmup_instance(fmt)]))
    return version


class ModelWatcher:
    """Polls `base_path` for versions; loads the newest in its own thread; serves the newest
    `keep` loaded versions. `latest()` and `get(n)` are safe to call from any thread."""

    def __init__(self, base_path, name=DEFAULT_MODEL_NAME, keep=2, poll_seconds=1.0,
                 load_attempts=3, loader=load_version):
        self.base_path, self.name, self.keep = str(base_path), name, keep
        self.poll_seconds, self.load_attempts, self.loader = poll_seconds, load_attempts, loader
        self._loaded = {}  # number -> Version; replaced, never mutated (readers take a snapshot)
        self._status = {}  # number -> (state, error message)
        self._failures = {}
        self._stop = threading.Event()
        self._thread = None
        self.loaded_event = threading.Event()  # set once a first version serves

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

    # the watcher
    def poll(self):
        """One look at the base directory: load what is new, unload what fell out."""
        on_disk = {int(os.path.basename(p)): p for p in export.list_versions(self.base_path)
                   if is_complete(p)}
        wanted = sorted(on_disk)[-self.keep:]
        for number in reversed(wanted):  # newest first: it is the one that will serve
            if number in self._loaded or self._failures.get(number, 0) >= self.load_attempts:
                continue
            self._status[number] = ("LOADING", "")
            try:
                version = self.loader(on_disk[number])
            except Exception as e:  # a broken or half-copied export: keep serving the old one
                self._failures[number] = self._failures.get(number, 0) + 1
                gave_up = self._failures[number] >= self.load_attempts
                self._status[number] = ("END" if gave_up else "LOADING",
                                        f"{type(e).__name__}: {e}")
                log.warning("version %s of %s failed to load: %s", number, self.name, e)
                continue
            self._status[number] = ("AVAILABLE", "")  # before it serves: status never lags
            self._loaded = self._trim({**self._loaded, number: version}, on_disk)
            # TensorFlow and a loaded model are ~400k long-lived Python objects: a full garbage
            # collection walks them all (0.1-0.2 s with the GIL held, a latency spike for every
            # request in flight). Freezing moves them out of the collector's sight.
            gc.freeze()
            self.loaded_event.set()
            log.info("serving version %s of %s", number, self.name)
        self._loaded = self._trim(self._loaded, on_disk)

    def _trim(self, loaded, on_disk):
        """Keep the newest `keep` loaded versions still on disk (all of them rather than none,
        should every directory vanish)."""
        keep = sorted(n for n in loaded if n in on_disk)[-self.keep:]
        if not keep:
            return loaded
        for n in set(loaded) - set(keep):
            self._status[n] = ("END", "")
        return {n: loaded[n] for n in keep}

    def _run(self):
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception:  # e.g. the base directory is being replaced: try again later
                log.exception("polling %s failed", self.base_path)
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
