"""A client of a model server (chapter 9), on httpx: one prediction request, and a short load.

`predict_url` speaks TensorFlow Serving's REST API (`census serve`, TF Serving itself) and,
given a full `…:predict` URL, a Vertex AI endpoint's. It returns the outputs as column arrays,
like `census.predict.predict`, so that `census.predict.format_table` prints the same table.
"""
import asyncio
import base64
import time
import urllib.parse

import httpx
import numpy as np

from census.instances import PredictError
from census.serving.protocol import DEFAULT_MODEL_NAME
from census.signature import OUTPUT_KEYS


def predict_path(model=DEFAULT_MODEL_NAME, version=None, verb="predict"):
    """The path of TF Serving's predict (or other `verb`) route for a model and version."""
    return f"/v1/models/{model}{f'/versions/{version}' if version else ''}:{verb}"


def predict_request_url(url, model=DEFAULT_MODEL_NAME, version=None):
    """A server's address (`http://127.0.0.1:8501`) → its predict URL; a URL that already
    names a `…:predict` route (a Vertex endpoint, a pinned version) is used as it is."""
    url = url.rstrip("/")
    if urllib.parse.urlparse(url).path.endswith(":predict"):
        return url
    return url + predict_path(model, version)


def predict_url(url, instances, model=DEFAULT_MODEL_NAME, version=None, signature=None, timeout=60,
                headers=None):
    """POST {"instances": …} (a list of JSON values, see `as_json`) to a model server; returns
    {output: numpy array of shape (n, 1) or (n, 2)} like `census.predict.predict`. Raises
    PredictError with the server's message for an HTTP error, or the reason the server could
    not be reached (timeout: seconds)."""
    body = {"instances": instances}
    if signature:
        body["signature_name"] = signature
    target = predict_request_url(url, model, version)
    try:
        reply = httpx.post(target, json=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as e:
        raise PredictError(f"{target}: {type(e).__name__}: {e}") from None
    if reply.is_error:
        try:
            message = reply.json()["error"]
        except (ValueError, KeyError, TypeError):
            message = reply.text[:500]
        raise PredictError(f"{target}: HTTP {reply.status_code}: {message}")
    return to_columns(reply.json()["predictions"])


def as_json(items, kind="json"):
    """Instances as they travel in a request's JSON: values read from JSON lines as they are;
    CSV rows as strings; serialized Examples as TF Serving's {"b64": …}."""
    if kind == "tfrecord":
        return [{"b64": base64.b64encode(item).decode()} for item in items]
    return list(items)


def to_columns(predictions):
    """Row-format predictions (a list of dicts) → {output: numpy array}."""
    return {k: np.array([row[k] for row in predictions]) for k in OUTPUT_KEYS}


# --- a short load run ----------------------------------------------------------------------

def percentile(values, q):
    """The q-th percentile of `values`, or None when there are none (never NaN)."""
    return float(np.percentile(values, q)) if values else None


async def load_async(url, body, concurrency=8, seconds=2.0, max_requests=100_000):
    """`concurrency` clients POST `body` (a dict, or JSON bytes) to `url` over keep-alive
    connections for `seconds` (at most `max_requests` in all). Returns counts, statuses, up to
    10 error bodies, and latency percentiles in milliseconds (None if nothing was answered)."""
    import json
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    result = {"sent": 0, "latencies": [], "statuses": {}, "errors": []}
    start = time.perf_counter()
    deadline = start + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60,
                                 headers={"Content-Type": "application/json"}) as client:
        async def one_client():
            while time.perf_counter() < deadline and result["sent"] < max_requests:
                result["sent"] += 1
                sent = time.perf_counter()
                reply = await client.post(url, content=payload)
                result["latencies"].append(time.perf_counter() - sent)
                status = reply.status_code
                result["statuses"][status] = result["statuses"].get(status, 0) + 1
                if status != 200 and len(result["errors"]) < 10:
                    result["errors"].append(reply.text[:300])
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    ms = [x * 1000 for x in result["latencies"]]
    return {"requests": len(ms), "seconds": elapsed, "statuses": result["statuses"],
            "errors": result["errors"], "latencies_ms": ms,
            "p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99),
            "requests_per_s": len(ms) / elapsed}


def load(url, body, concurrency=8, seconds=2.0, max_requests=100_000):
    """`load_async` from synchronous code (runs its own event loop; not inside Jupyter's —
    there, `await load_async(...)`)."""
    return asyncio.run(load_async(url, body, concurrency, seconds, max_requests))
