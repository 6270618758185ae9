"""Online prediction: a small model server that speaks TensorFlow Serving's REST API and the
predict format of a Vertex AI endpoint, so that one client works against all three.

    census serve --model-base-path JOB_DIR/export/census [--model-name census] [--port 8501]

TensorFlow Serving's REST API (tensorflow/serving `g3doc/api_rest.md`):

    GET  /v1/models/census[/versions/N]             version status
    GET  /v1/models/census[/versions/N]/metadata    signature_def, as `saved_model_cli` shows it
    POST /v1/models/census[/versions/N]:predict     {"instances": [...]}  -> {"predictions": [...]}
                                                    {"inputs": {...}}     -> {"outputs": {...}}
    POST /v1/models/census[/versions/N]:classify    {"examples": [...]}   -> {"results": [...]}

Vertex AI (a custom prediction container, and the endpoint a client calls):

    POST /v1/endpoints/E/deployedModels/M:predict   {"instances", "parameters"}
                                                    -> {"predictions", "deployedModelId"}
    GET  /v1/endpoints/E/deployedModels/M           health: 200 once a version is loaded
    and $AIP_PREDICT_ROUTE / $AIP_HEALTH_ROUTE / $AIP_HTTP_PORT when Vertex sets them.

How it works, in three pieces:
- `ModelWatcher` polls the base directory (TF Serving's file system source does the same): a
  version is a numeric directory holding `saved_model.pb`. The newest is loaded in the
  watcher's thread, warmed up, and only then swapped in; the previous version serves until that
  moment, and requests already holding it finish on it. The newest `keep` versions stay loaded
  (TF Serving's `latest { num_versions }` policy), so a pinned version can still be asked for.
- `Batcher` runs the model in a worker thread, never on the event loop, and gives each call
  every request that arrived while the previous call ran (up to `max_batch_rows`): one request
  alone is answered at once, and under load many requests share one model call.
- `create_app` parses and checks requests (`census.instances.to_tensors` names the instance
  and the field at fault, for each export format: JSON, CSV rows, tf.Example) and answers
  errors the way TF Serving does: `{"error": "..."}` with 400, 404, 413, 429 or 503 (500 only
  for a model that fails on a checked request).
"""
import argparse
import asyncio
import concurrent.futures
import dataclasses
import gc
import json
import logging
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request

from census import export, flags, instances, predict, schema

DEFAULT_PORT = 8501
DEFAULT_MODEL_NAME = "census"
# Vertex AI's limit for an online prediction request: 1.5 MB.
MAX_REQUEST_BYTES = 1_500_000
PARSE_IN_THREAD_BYTES = 262_144  # bodies above this are parsed off the event loop

log = logging.getLogger("census.serving")


# Where `census serve` differs from TensorFlow Serving's REST API (tensorflow/serving
# g3doc/api_rest.md), on purpose; `census serve --help` and chapter 9 list them.
DIFFERENCES = (
    "values no census answer can have (NaN, Infinity, negative money, age or hours, numbers "
    "beyond float32) get a 400 naming the instance and field; TF Serving passes them on",
    "a request body over 1.5 MB (Vertex AI's limit) gets a 413",
    ":classify takes the 13 inputs as features for any of the course's signatures (TF "
    "Serving needs a classify signature); a CSV export refuses it",
    ":regress gets a 400: the model is a classifier",
    "version labels (/labels/NAME) and the gRPC API are not served",
    "Vertex AI's routes are served too: {\"instances\", \"parameters\"} in, "
    "{\"predictions\", \"deployedModelId\"} out",
)


class ServingError(Exception):
    """A request that gets an HTTP error: `{"error": message}` with `status`."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


# --- versions ------------------------------------------------------------------------------

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
                         for c in instances.CSV_FIELDS)
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
        loaded = self._loaded
        return loaded[max(loaded)] if loaded else None

    def get(self, number):
        return self._loaded.get(number)

    def status(self):
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
        self._thread = threading.Thread(target=self._run, name="census-model-watcher",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)


# --- batching ------------------------------------------------------------------------------

@dataclasses.dataclass(eq=False)
class Job:
    """One request's rows, bound to a version and signature of an export format (JSON, CSV
    or EXAMPLE); `render` turns its slice of the outputs (numpy, keyed like the signature's
    outputs) into the JSON reply. `what` names the rows in error messages ("instances",
    "inputs", "examples")."""
    version: Version
    signature: str
    fmt: str
    instances: list
    what: str
    render: object
    future: asyncio.Future = None

    @property
    def rows(self):
        return len(self.instances)


class Batcher:
    """Runs jobs in worker threads, several requests per model call."""

    def __init__(self, max_batch_rows=512, max_inflight=1, window_ms=0.0,
                 max_queued_rows=100_000):
        self.max_batch_rows, self.max_inflight = max_batch_rows, max_inflight
        self.window = window_ms / 1000
        self.max_queued_rows = max_queued_rows
        self.queued_rows = 0
        self.calls = 0  # model calls made
        self.batched_requests = 0  # requests they answered
        self._queue = None
        self._task = None
        self._pool = None

    async def start(self):
        self._queue = asyncio.Queue()
        self._pool = concurrent.futures.ThreadPoolExecutor(self.max_inflight,
                                                           thread_name_prefix="census-model")
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self):
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._pool:
            self._pool.shutdown(wait=True)

    async def submit(self, job):
        """Queue a job and wait for its reply body (bytes)."""
        if self.queued_rows + job.rows > self.max_queued_rows:
            raise ServingError(429, f"too many rows queued ({self.queued_rows}); retry later")
        job.future = asyncio.get_running_loop().create_future()
        self.queued_rows += job.rows
        self._queue.put_nowait(job)
        try:
            return await job.future
        finally:
            self.queued_rows -= job.rows

    async def _loop(self):
        loop = asyncio.get_running_loop()
        slots = asyncio.Semaphore(self.max_inflight)
        pending = None
        while True:
            await slots.acquire()
            batch = [pending or await self._queue.get()]
            pending = None
            rows = batch[0].rows
            deadline = loop.time() + self.window
            while rows < self.max_batch_rows:
                if self._queue.empty():
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        job = await asyncio.wait_for(self._queue.get(), remaining)
                    except asyncio.TimeoutError:
                        break
                else:
                    job = self._queue.get_nowait()
                if rows + job.rows > self.max_batch_rows:
                    pending = job  # starts the next batch
                    break
                batch.append(job)
                rows += job.rows
            batch = [j for j in batch if not j.future.done()]  # a client that went away
            if not batch:
                slots.release()
                continue
            self.calls += 1
            self.batched_requests += len(batch)
            work = loop.run_in_executor(self._pool, run_batch, batch)
            work.add_done_callback(lambda done, batch=batch: self._finish(batch, done, slots))

    @staticmethod
    def _finish(batch, done, slots):
        slots.release()
        if done.cancelled():
            results = [ServingError(503, "server shutting down")] * len(batch)
        elif done.exception() is not None:
            results = [done.exception()] * len(batch)
        else:
            results = done.result()
        for job, result in zip(batch, results):
            if job.future.done():
                continue
            if isinstance(result, BaseException):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)


def job_columns(job):
    """One job's instances → tensors: `census.instances.to_tensors` checks every field and
    names the instance and field at fault (a 400 for the whole request, as TF Serving
    answers)."""
    try:
        return instances.to_tensors(job.fmt, job.instances)
    except instances.PredictError as e:
        raise ServingError(400, f"{job.what}: {e}") from None


def batch_columns(jobs):
    """Tensors for the instances of several jobs of one signature, converted together (one
    `to_tensors` call per batch). Only if that fails is each job checked alone, so one bad
    request gets its own 400 and the others in its batch are still answered. Returns
    (columns, jobs, errors)."""
    fmt = jobs[0].fmt
    try:
        return instances.to_tensors(fmt, [i for job in jobs for i in job.instances]), jobs, {}
    except instances.PredictError:  # find out which job it was
        pass
    good, errors = [], {}
    for job in jobs:
        try:
            job_columns(job)
            good.append(job)
        except ServingError as e:
            errors[id(job)] = e
    columns = (instances.to_tensors(fmt, [i for job in good for i in job.instances])
               if good else None)
    return columns, good, errors


def call_model(jobs, columns):
    """One model call for jobs of one (version, signature); each job's reply as JSON bytes.

    Should the shared call fail, each job is run alone, so that a request that breaks the
    model fails by itself and never takes the requests batched with it along. Returns
    {id(job): bytes or ServingError}."""
    results = {}
    try:
        fn = jobs[0].version.signatures[jobs[0].signature]
        outputs = {k: v.numpy() for k, v in fn(**columns).items()}
    except Exception as e:  # noqa: BLE001 — a model error must not take the server down
        if len(jobs) > 1:
            for job in jobs:
                results.update(call_model([job], job_columns(job)))
            return results
        log.exception("the model failed on a checked request")
        return {id(jobs[0]): ServingError(500, f"{type(e).__name__}: {e}")}
    start = 0
    for job in jobs:
        part = {k: v[start:start + job.rows] for k, v in outputs.items()}
        start += job.rows
        try:  # NaN or infinity in an answer is the model's fault, not the client's
            results[id(job)] = json.dumps(job.render(part), allow_nan=False).encode()
        except ValueError as e:
            log.error("version %s answered a non-finite number: %s", job.version.number, e)
            results[id(job)] = ServingError(500, f"the model answered {e}")
    return results


def run_batch(batch):
    """In a worker thread: one model call per (version, signature) group; each job's reply
    rendered to bytes here too, so the event loop only sends them."""
    groups = {}
    for job in batch:
        groups.setdefault((id(job.version), job.signature), []).append(job)
    results = {}
    for jobs in groups.values():
        columns, jobs, errors = batch_columns(jobs)
        results.update(errors)
        if jobs:
            results.update(call_model(jobs, columns))
    return [results[id(job)] for job in batch]


# --- request parsing -----------------------------------------------------------------------

def parse_body(body):
    """Request bytes → a JSON object, or a 400 naming the problem."""
    if not body:
        raise ServingError(400, "JSON Parse error: the request body is empty")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ServingError(400, f"JSON Parse error: the body is not UTF-8 ({e.reason} at "
                           f"byte {e.start})") from None
    try:  # NaN, Infinity and -Infinity are read, as TF Serving reads them (then refused)
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ServingError(400, f"JSON Parse error: {e.msg} at line {e.lineno} column "
                           f"{e.colno}") from None
    except (ValueError, RecursionError) as e:
        raise ServingError(400, f"JSON Parse error: {e}") from None
    if not isinstance(value, dict):
        raise ServingError(400, "the request body must be a JSON object, like "
                           '{"instances": [...]}')
    return value


def _check_keys(body, allowed):
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise ServingError(400, f"unknown key {unknown[0]!r} in the request (expected: "
                           f"{', '.join(allowed)})")


def _instances(items, what="instances"):
    """The shape of the request: a non-empty list. Each item is checked with the batch, in
    the worker thread, as the signature's format wants it (`job_columns`)."""
    if not isinstance(items, list):
        raise ServingError(400, f"{what} must be a JSON list, one item per instance, got "
                           f"{type(items).__name__}")
    if not items:
        raise ServingError(400, f"{what} is empty: send at least one instance")
    return items


def _inputs_to_instances(inputs, fmt):
    """TF Serving's columnar `inputs` → rows, so that they are checked alike: for the JSON
    format a map of each input name to its list of values; for the one-input formats (CSV,
    EXAMPLE) that map, or the input's list of values itself."""
    single = instances.SINGLE_INPUT.get(fmt)
    if single and isinstance(inputs, list):
        return inputs
    if not isinstance(inputs, dict):
        raise ServingError(400, "inputs must be a JSON object mapping each input name to a "
                           "list of values (columnar format)")
    if single:
        if set(inputs) != {single}:
            raise ServingError(400, f"inputs: this signature ({fmt} format) has one input, "
                               f"{single!r}")
        return _instances(inputs[single], "inputs")
    if not inputs:
        raise ServingError(400, "inputs is empty: send the 13 input columns")
    lengths = {}
    for name, values in inputs.items():
        if not isinstance(values, list):
            raise ServingError(400, f"inputs[{name!r}] must be a list of values, one per row")
        lengths[name] = len(values)
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(lengths.items()))
        raise ServingError(400, f"inputs must all have the same number of rows ({detail})")
    n = next(iter(lengths.values()))
    return [{name: values[i] for name, values in inputs.items()} for i in range(n)]


def _classify_examples(context, examples, fmt):
    """TF Serving's classify request: each example's features, with the context's shared ones
    (a feature may not be in both); a one-value list is that value. For an EXAMPLE export the
    features become serialized tf.train.Example protos, as TF Serving makes them."""
    if fmt == "CSV":
        raise ServingError(400, "this signature (CSV format) takes CSV rows: use :predict "
                           "with one row per instance")
    if not isinstance(context, dict):
        raise ServingError(400, "context must be a JSON object of features")
    items = []
    for n, example in enumerate(_instances(examples, "examples"), 1):
        if not isinstance(example, dict):
            raise ServingError(400, f"examples: instance {n}: expected a JSON object of "
                               "features")
        shared = sorted(set(context) & set(example))
        if shared:
            raise ServingError(400, f"examples: instance {n}: feature {shared[0]!r} is also "
                               "in the context (a feature goes in one of them)")
        items.append({k: v[0] if isinstance(v, list) and len(v) == 1 else v
                      for k, v in {**context, **example}.items()})
    if fmt == "EXAMPLE":
        try:
            items = [instances.to_example(instances.check_fields(n, i))
                     for n, i in enumerate(items, 1)]
        except instances.PredictError as e:
            raise ServingError(400, f"examples: {e}") from None
    return items


def plain_columns(outputs):
    """{output: numpy array} → {output: list of per-row lists}, strings decoded: the values of
    `census.predict.rows`, converted one column at a time (far fewer Python calls)."""
    columns = {}
    for k in predict.OUTPUT_KEYS:
        values = outputs[k].tolist()
        if outputs[k].dtype == object:
            values = [[v.decode() if isinstance(v, bytes) else v for v in row] for row in values]
        columns[k] = values
    return columns


def render_rows(outputs):
    """Row format, as `census.predict.rows`: one dict per instance."""
    columns = plain_columns(outputs)
    return [dict(zip(columns, values)) for values in zip(*columns.values())]


def render_columns(outputs):
    return plain_columns(outputs)


def render_classify(outputs):
    """TF Serving's classify result: per example, [[label, score], ...] for every class."""
    results = []
    for probs in outputs["probabilities"].tolist():
        results.append([[label, score] for label, score in zip(schema.LABELS, probs)])
    return results


# --- the app -------------------------------------------------------------------------------

MODEL_URL = re.compile(r"^/v1/models/(?P<name>[^/:]+)"
                       r"(?:/versions/(?P<version>[^/:]+))?"
                       r"(?P<metadata>/metadata)?"
                       r"(?::(?P<verb>[A-Za-z]+))?$")
ENDPOINT_URL = re.compile(r"^/v1/(?:projects/[^/]+/locations/[^/]+/)?endpoints/(?P<endpoint>[^/:]+)"
                          r"/deployedModels/(?P<model>[^/:]+)(?::(?P<verb>[A-Za-z]+))?$")


class Server:
    """The request handling, independent of the ASGI framework around it."""

    def __init__(self, watcher, batcher, max_request_bytes=MAX_REQUEST_BYTES,
                 deployed_model_id=None):
        self.watcher, self.batcher = watcher, batcher
        self.max_request_bytes = max_request_bytes
        self.deployed_model_id = deployed_model_id

    # versions
    def version(self, name, number=None):
        if name != self.watcher.name:
            raise ServingError(404, f"Servable not found for request: "
                               f"{'Specific' if number else 'Latest'}({name}"
                               f"{', ' + number if number else ''})")
        if number is None:
            version = self.watcher.latest()
            if version is None:
                raise ServingError(503, f"model {name} has no version loaded yet: waiting for "
                                   f"{self.watcher.base_path}/<version>/saved_model.pb")
            return version
        if not number.isdigit():
            raise ServingError(400, f"version must be a number, got {number!r}")
        version = self.watcher.get(int(number))
        if version is None:
            raise ServingError(404, f"Servable not found for request: Specific({name}, {number})")
        return version

    def status(self, name, number=None):
        if name != self.watcher.name:
            raise ServingError(404, f"Could not find any versions of model {name}")
        status = self.watcher.status()
        if number is not None:
            if not number.isdigit() or int(number) not in status:
                raise ServingError(404, f"Could not find version {number} of model {name}")
            status = {int(number): status[int(number)]}
        if not status:
            raise ServingError(503, f"model {name} has no version loaded yet")
        return {"model_version_status": [
            {"version": str(n), "state": state,
             "status": {"error_code": "OK" if state != "END" or not err else "UNKNOWN",
                        "error_message": err}}
            for n, (state, err) in sorted(status.items(), reverse=True)]}

    def metadata(self, name, number=None):
        version = self.version(name, number)
        return {"model_spec": {"name": name, "signature_name": "", "version": str(version.number)},
                "metadata": {"signature_def": {"signature_def": version.signature_defs}}}

    def health(self):
        if self.watcher.latest() is None:
            raise ServingError(503, "no model version loaded yet")
        return {}

    # prediction
    async def parse(self, body, build):
        """Parse and check a request body; large bodies off the event loop."""
        if len(body) > PARSE_IN_THREAD_BYTES:
            return await asyncio.to_thread(lambda: build(parse_body(body)))
        return build(parse_body(body))

    async def predict(self, body, name, number=None):
        version = self.version(name, number)

        def build(request):
            _check_keys(request, ("signature_name", "instances", "inputs"))
            if "instances" in request and "inputs" in request:
                raise ServingError(400, "Request must have either 'instances' (row format) or "
                                   "'inputs' (columnar format), not both")
            signature = request.get("signature_name", "serving_default")
            if not isinstance(signature, str):
                raise ServingError(400, "signature_name must be a string")
            signature, fmt = version.signature(signature)
            if "instances" in request:
                items, what, render = _instances(request["instances"]), "instances", \
                    lambda out: {"predictions": render_rows(out)}
            elif "inputs" in request:
                items, what, render = _inputs_to_instances(request["inputs"], fmt), "inputs", \
                    lambda out: {"outputs": render_columns(out)}
            else:
                raise ServingError(400, "Missing 'instances' or 'inputs' key in the request")
            return Job(version, signature, fmt, items, what, render)
        return await self.batcher.submit(await self.parse(body, build))

    async def classify(self, body, name, number=None):
        version = self.version(name, number)

        def build(request):
            _check_keys(request, ("signature_name", "context", "examples"))
            signature, fmt = version.signature(request.get("signature_name", "serving_default"))
            if "examples" not in request:
                raise ServingError(400, "Missing 'examples' key in the classify request")
            items = _classify_examples(request.get("context", {}), request["examples"], fmt)
            return Job(version, signature, fmt, items, "examples",
                       lambda out: {"results": render_classify(out)})
        return await self.batcher.submit(await self.parse(body, build))

    async def vertex_predict(self, body, deployed_model_id):
        version = self.version(self.watcher.name)
        model_id = self.deployed_model_id or deployed_model_id

        def build(request):
            _check_keys(request, ("instances", "parameters"))
            parameters = request.get("parameters", {})
            if not isinstance(parameters, dict):
                raise ServingError(400, "parameters must be a JSON object")
            _check_keys(parameters, ("signature_name",))
            signature, fmt = version.signature(parameters.get("signature_name",
                                                              "serving_default"))
            if "instances" not in request:
                raise ServingError(400, "Missing 'instances' key in the request")
            return Job(version, signature, fmt, _instances(request["instances"]), "instances",
                       lambda out: {"predictions": render_rows(out),
                                    "deployedModelId": model_id})
        return await self.batcher.submit(await self.parse(body, build))


DRAIN_BYTES = 100_000_000  # a refused body is read, and dropped, up to this size


def waits_to_send(request):
    """A client that sent `Expect: 100-continue` sends its body only once told to (uvicorn
    says so when the app reads it): refused at once, it never sends it."""
    return "100-continue" in request.headers.get("expect", "").lower()


async def drain(request):
    """Read what is left of a request body before an error reply goes out.

    A client still sending its body (curl, requests, httpx, urllib: most send it all before
    they read a reply) gets a broken pipe, not the reply, if the server answers and closes
    first; read to the end, the body costs a little time and every client sees the JSON error
    (nginx does the same: `lingering_close`)."""
    if waits_to_send(request):
        return
    from starlette.requests import ClientDisconnect
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > DRAIN_BYTES:
                break
    except (RuntimeError, ClientDisconnect):  # already read, or the client went away
        pass


def create_app(watcher, batcher=None, max_request_bytes=MAX_REQUEST_BYTES, environ=None):
    """The Starlette app; it starts the watcher and the batcher, and stops them on shutdown."""
    import contextlib

    from starlette.applications import Starlette
    from starlette.requests import ClientDisconnect
    from starlette.responses import Response
    from starlette.routing import Route

    environ = os.environ if environ is None else environ
    batcher = batcher or Batcher()
    server = Server(watcher, batcher, max_request_bytes, environ.get("AIP_DEPLOYED_MODEL_ID"))
    predict_route = environ.get("AIP_PREDICT_ROUTE")
    health_route = environ.get("AIP_HEALTH_ROUTE")

    def reply(value, status=200):
        body = value if isinstance(value, bytes) else json.dumps(value).encode()
        return Response(body, status_code=status, media_type="application/json")

    async def read_body(request):
        length = request.headers.get("content-length")
        if length is not None and not length.isdigit():
            raise ServingError(400, f"invalid Content-Length {length!r}")
        too_big = length is not None and int(length) > max_request_bytes
        if too_big and (waits_to_send(request) or int(length) > DRAIN_BYTES):
            raise ServingError(413, f"request of {int(length)} bytes is over the limit of "
                               f"{max_request_bytes} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():  # a body over the limit is read to its end
            size += len(chunk)  # (see `drain`), but not kept
            too_big = too_big or size > max_request_bytes
            if size > DRAIN_BYTES:
                break
            if not too_big:
                chunks.append(chunk)
        if too_big:
            raise ServingError(413, f"request body of {size} bytes is over the limit of "
                               f"{max_request_bytes} bytes")
        return b"".join(chunks)

    async def dispatch(request):
        path, method = request.url.path, request.method
        if predict_route and path == predict_route and method == "POST":
            return await server.vertex_predict(await read_body(request),
                                               environ.get("AIP_DEPLOYED_MODEL_ID", ""))
        if health_route and path == health_route and method == "GET":
            return server.health()
        m = MODEL_URL.match(path)
        if m:
            name, number, verb = m["name"], m["version"], m["verb"]
            if method == "GET" and not verb:
                return server.metadata(name, number) if m["metadata"] else \
                    server.status(name, number)
            if method == "POST" and not m["metadata"] and verb == "predict":
                return await server.predict(await read_body(request), name, number)
            if method == "POST" and not m["metadata"] and verb == "classify":
                return await server.classify(await read_body(request), name, number)
            if method == "POST" and verb == "regress":
                raise ServingError(400, "this model is a classifier: use :predict or :classify")
        m = ENDPOINT_URL.match(path)
        if m:
            if method == "POST" and m["verb"] == "predict":
                return await server.vertex_predict(await read_body(request), m["model"])
            if method == "GET" and not m["verb"]:
                return server.health()
        raise ServingError(404, f"Malformed request: {method} {path}")

    async def handle(request):
        try:
            return reply(await dispatch(request))
        except ServingError as e:
            await drain(request)
            return reply({"error": e.message}, e.status)
        except ClientDisconnect:
            return Response(status_code=400)
        except Exception as e:  # noqa: BLE001 — a bug must not take the server down
            log.exception("error handling %s %s", request.method, request.url.path)
            await drain(request)
            return reply({"error": f"{type(e).__name__}: {e}"}, 500)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        watcher.start()
        try:
            yield
        finally:
            watcher.stop()
            await batcher.stop()

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
    app = Starlette(routes=[Route("/{path:path}", handle, methods=methods)], lifespan=lifespan)
    app.state.server = server
    return app


# --- running it ----------------------------------------------------------------------------

def parser():
    p = argparse.ArgumentParser(
        prog="census serve", allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Serve the exports under --model-base-path over TensorFlow Serving's REST "
                    "API and Vertex AI's predict format (newest version; new exports load as "
                    "they appear).",
        epilog="Deliberate differences from TensorFlow Serving's REST API:\n" + "\n".join(
            textwrap.fill(d, 88, initial_indent="  - ", subsequent_indent="    ")
            for d in DIFFERENCES))
    p.add_argument("--model-base-path", required=True,
                   help="the export base directory, JOB_DIR/export/census")
    p.add_argument("--model-name", default=DEFAULT_MODEL_NAME)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; a container needs 0.0.0.0)")
    p.add_argument("--port", type=flags.PORT, default=None,
                   help=f"default $AIP_HTTP_PORT when Vertex sets it, else {DEFAULT_PORT}")
    p.add_argument("--poll-seconds", type=flags.number(above=0), default=1.0,
                   help="how often to look for new versions")
    p.add_argument("--keep-versions", type=flags.whole(1), default=2,
                   help="how many of the newest versions stay loaded (pinnable)")
    p.add_argument("--max-batch-rows", type=flags.whole(1), default=512)
    p.add_argument("--model-threads", type=flags.whole(1), default=1,
                   help="model calls that may run at once (each in its own worker thread)")
    p.add_argument("--batch-window-ms", type=flags.number(least=0), default=0.0,
                   help="extra wait for more requests before a model call (default: none; "
                        "calls take whatever arrived while the previous one ran)")
    p.add_argument("--max-request-bytes", type=flags.whole(1), default=MAX_REQUEST_BYTES)
    p.add_argument("--http", default="auto", choices=("auto", "h11", "httptools"),
                   help="uvicorn's HTTP parser (auto: httptools when installed)")
    p.add_argument("--stop-with-parent", action="store_true",
                   help="shut down when the process that started this one ends (notebooks)")
    p.add_argument("--log-level", default="warning",
                   choices=("critical", "error", "warning", "info", "debug"))
    return p


def build(args):
    watcher = ModelWatcher(args.model_base_path, args.model_name, keep=args.keep_versions,
                           poll_seconds=args.poll_seconds)
    batcher = Batcher(max_batch_rows=args.max_batch_rows, max_inflight=args.model_threads,
                      window_ms=args.batch_window_ms)
    return create_app(watcher, batcher, args.max_request_bytes)


def main(argv=None):
    """`census serve`: run until interrupted (Ctrl-C / SIGTERM)."""
    import uvicorn
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    if not os.path.isdir(args.model_base_path):
        sys.exit(f"census serve: no directory {args.model_base_path} (expected the export base "
                 "directory, JOB_DIR/export/census)")
    port = args.port
    if port is None:
        try:
            port = flags.PORT(os.environ.get("AIP_HTTP_PORT", str(DEFAULT_PORT)))
        except argparse.ArgumentTypeError as e:
            sys.exit(f"census serve: $AIP_HTTP_PORT {e}")
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    if args.stop_with_parent:
        _stop_with_parent()
    print(f"census serve: model {args.model_name} from {args.model_base_path} on "
          f"http://{args.host}:{port}/v1/models/{args.model_name}", flush=True)
    uvicorn.run(build(args), host=args.host, port=port, log_level=args.log_level,
                access_log=False, http=args.http, timeout_graceful_shutdown=5)


def _stop_with_parent():
    """SIGTERM ourselves (uvicorn then shuts down cleanly) once our parent process is gone, so
    a server started from a notebook never outlives its kernel."""
    import signal
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)
    threading.Thread(target=watch, name="census-stop-with-parent", daemon=True).start()


def publish_version(version_dir, model_base_path, version=None):
    """Deploy an export to a served base path: copy it next to the base path, then rename it
    into place as `<base>/<version>` (default: its own timestamp), so the server never sees a
    half-copied version. Returns the new version directory."""
    import shutil
    import tempfile
    version = str(version or os.path.basename(str(version_dir).rstrip("/")))
    os.makedirs(model_base_path, exist_ok=True)
    target = os.path.join(model_base_path, version)
    if os.path.exists(target):
        raise FileExistsError(f"version {version} already exists in {model_base_path}")
    staging = tempfile.mkdtemp(prefix=".staging-", dir=os.path.dirname(
        os.path.abspath(model_base_path)))
    try:
        shutil.copytree(version_dir, os.path.join(staging, version))
        os.rename(os.path.join(staging, version), target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


class BackgroundServer:
    """`census serve` in a thread of this process (tests, benchmarks); `stop()` ends it.

    The socket is bound before the thread starts, so `url` is valid at once (port 0 picks a
    free port)."""

    def __init__(self, model_base_path, host="127.0.0.1", port=0, wait=True, timeout=120,
                 **options):
        import uvicorn
        args = parser().parse_args(["--model-base-path", str(model_base_path)])
        for key, value in options.items():
            setattr(args, key, value)
        self.app = build(args)
        # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say they are TCP
        # (with proto 0, each reply's body waits ~40 ms for a delayed ACK: Nagle's algorithm)
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((host, port))
        self.url = f"http://{host}:{self.socket.getsockname()[1]}"
        config = uvicorn.Config(self.app, log_level="warning", access_log=False,
                                http=args.http, timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]},
                                       name="census-serve", daemon=True)
        self.thread.start()
        if wait:
            self.wait_until_serving(timeout)

    @property
    def watcher(self):
        return self.app.state.server.watcher

    @property
    def batcher(self):
        return self.app.state.server.batcher

    def wait_until_serving(self, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server.started and self.watcher.loaded_event.is_set():
                return self
            if not self.thread.is_alive():
                raise RuntimeError("the server thread ended before serving")
            time.sleep(0.02)
        raise TimeoutError(f"no version served within {timeout} s")

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.socket.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start_process(model_base_path, port=DEFAULT_PORT, model_name=DEFAULT_MODEL_NAME,
                  timeout=120, extra=(), command=None, log_path=None):
    """`census serve` as a child process, returned once it serves a version (for notebooks and
    benchmarks: the server and its client then do not share one interpreter). It stops when
    this process exits, even abruptly (`--stop-with-parent`). `log_path`: where its output
    goes (default: this process's stderr)."""
    if command is None:
        from census import cli
        command = ([sys.executable, "-m", "census", "serve"] if "serve" in cli.COMMANDS
                   else [sys.executable, "-m", "census.serving"])
    log = None if log_path is None else open(log_path, "ab")
    proc = subprocess.Popen([*command, "--model-base-path", str(model_base_path),
                             "--model-name", model_name, "--port", str(port),
                             "--stop-with-parent", *extra],
                            stdout=subprocess.DEVNULL if log_path is None else log,
                            stderr=None if log_path is None else subprocess.STDOUT)
    if log is not None:
        log.close()  # the child has its own copy
    import atexit
    atexit.register(stop_process, proc)
    url = f"http://127.0.0.1:{port}/v1/models/{model_name}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"census serve exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if any(s["state"] == "AVAILABLE"
                       for s in json.load(r)["model_version_status"]):
                    return proc
        except (urllib.error.URLError, OSError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    proc.terminate()
    proc.wait(timeout=30)
    raise TimeoutError(f"census serve did not serve {url} within {timeout} s")


def stop_process(proc, timeout=30):
    """SIGTERM (uvicorn shuts down gracefully), then SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


if __name__ == "__main__":
    main()
