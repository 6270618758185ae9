"""The model call, off the event loop and shared by requests (chapter 9).

`Batcher` runs the model in a worker thread, never on the event loop, and gives each call every
request that arrived while the previous call ran (up to `max_batch_rows`): one request alone
is answered at once, and under load many requests share one model call. A request that fails
its checks gets its own 400; one that breaks the model fails alone.
"""
import asyncio
import concurrent.futures
import dataclasses
import json
import logging

from census import instances
from census.serving.protocol import ServingError
from census.serving.versions import Version

log = logging.getLogger("census.serving")


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
        """How many rows (instances) the job holds."""
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
