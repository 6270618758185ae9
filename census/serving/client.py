"""A client of a model server (chapter 9), on httpx: one prediction request, and a short load.

`predict_url` speaks the dialect of the route it is given: TensorFlow Serving's REST API
(`census serve`, TF Serving itself), or a Vertex AI endpoint's (`route`). It returns the
outputs as column arrays, like `census.predict.predict`, so that
`census.predict.format_table` prints the same table.
"""
import asyncio
import base64
import re
import time
import urllib.parse

import httpx
import numpy as np

from census.instances import PredictError
from census.serving.protocol import DEFAULT_MODEL_NAME
from census.signature import DEFAULT_SIGNATURE, OUTPUT_KEYS, output_order

# The URLs `predict_url` takes, by the API they speak (verbs aside; a trailing slash is no
# matter): TF Serving's model routes (g3doc/api_rest.md), and a Vertex AI endpoint's, public
# (projects.locations.endpoints.predict) or as Vertex AI calls a custom container
# (ModelContainerSpec.predictRoute, /v1/endpoints/E/deployedModels/D:predict).
DIALECTS = {
    "TF Serving": (re.compile(r"/v1/models/[^/:]+(?:/versions/\d+|/labels/[^/:]+)?"),
                   ("predict",)),
    "Vertex AI": (re.compile(r"/v1(?:/projects/[^/:]+/locations/[^/:]+)?/endpoints/[^/:]+"
                             r"(?:/deployedModels/[^/:]+)?"), ("predict", "rawPredict")),
}


def predict_path(model=DEFAULT_MODEL_NAME, version=None, verb="predict"):
    """The path of TF Serving's predict (or other `verb`) route for a model and version."""
    return f"/v1/models/{model}{f'/versions/{version}' if version else ''}:{verb}"


def route(url, model=DEFAULT_MODEL_NAME, version=None):
    """(the predict URL, the API it speaks: "TF Serving" or "Vertex AI") for `url`: a
    server's address (`http://127.0.0.1:8501`: TF Serving's route of `model` and `version`),
    a TF Serving model URL (`…/v1/models/NAME[/versions/N][:predict]`, `census serve`'s
    start-up line) or a Vertex AI endpoint's (`…/endpoints/E[/deployedModels/D]`, with
    `:predict` or `:rawPredict`). Raises PredictError, in one sentence, for any other URL."""
    parts = urllib.parse.urlsplit(str(url).strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PredictError(f"--url takes an http:// or https:// URL, got {url!r}")
    path, _, verb = parts.path.rstrip("/").partition(":")
    if not path:
        path, _, verb = predict_path(model, version).partition(":")
    dialect = next((d for d, (pattern, _) in DIALECTS.items() if pattern.fullmatch(path)), None)
    if dialect is None:
        raise PredictError(f"cannot tell which API {url} speaks: give the server's address "
                           "(http://127.0.0.1:8501), a TF Serving model URL "
                           "(…/v1/models/NAME[:predict]) or a Vertex AI endpoint's "
                           "(…/endpoints/E[/deployedModels/D]:predict)")
    verbs = DIALECTS[dialect][1]
    if (verb or "predict") not in verbs:
        raise PredictError(f"{url} names :{verb}, but census predict sends "
                           f"{' or '.join(':' + v for v in verbs)} requests (the table shows "
                           "every output)")
    return urllib.parse.urlunsplit(parts._replace(path=f"{path}:{verb or 'predict'}")), dialect


def request_body(instances, dialect, signature=None):
    """The predict request in the dialect of the route: TF Serving takes `signature_name`
    beside `instances`; Vertex AI's PredictRequest has `instances` and `parameters` only, and
    `census serve` reads the signature from `parameters` (the default signature goes
    unnamed)."""
    body = {"instances": instances}
    if signature and signature != DEFAULT_SIGNATURE:
        if dialect == "Vertex AI":
            body["parameters"] = {"signature_name": signature}
        else:
            body["signature_name"] = signature
    return body


def predict_url(url, instances, model=DEFAULT_MODEL_NAME, version=None, signature=None, timeout=60,
                headers=None):
    """POST `instances` (a list of JSON values, see `as_json`) to a model server at `url`
    (see `route`: `model` and `version` apply to a server's address), in the dialect of its
    route; returns {output: numpy array of shape (n, 1) or (n, 2)} like
    `census.predict.predict`. Raises PredictError with the server's message for an HTTP
    error, the reason the server could not be reached (timeout: seconds), or a reply that
    holds no predictions."""
    target, dialect = route(url, model, version)
    try:
        reply = httpx.post(target, json=request_body(instances, dialect, signature),
                           headers=headers, timeout=timeout)
    except httpx.HTTPError as e:
        raise PredictError(f"{target}: {type(e).__name__}: {e}") from None
    if reply.is_error:
        try:
            message = reply.json()["error"]
        except (ValueError, KeyError, TypeError):
            message = reply.text[:500]
        raise PredictError(f"{target}: HTTP {reply.status_code}: {message}")
    try:
        return to_columns(reply.json()["predictions"])
    except (ValueError, KeyError, TypeError, IndexError):
        raise PredictError(f"{target}: the reply holds no predictions with the outputs "
                           f"{', '.join(OUTPUT_KEYS)}: {reply.text[:200]!r}") from None


def as_json(items, kind="json"):
    """Instances as they travel in a request's JSON: values read from JSON lines as they are;
    CSV rows as strings; serialized Examples as TF Serving's {"b64": …}."""
    if kind == "tfrecord":
        return [{"b64": base64.b64encode(item).decode()} for item in items]
    return list(items)


def to_columns(predictions):
    """Row-format predictions (a list of dicts) → {output: numpy array}: the course's five
    (`OUTPUT_KEYS`, a KeyError if one is missing), then whatever else the export gives (a
    2017 export's `all_class_ids`, `all_classes`), in `signature.output_order`."""
    missing = [k for k in OUTPUT_KEYS if k not in predictions[0]]
    if missing:
        raise KeyError(missing[0])
    return {k: np.array([row[k] for row in predictions])
            for k in output_order(predictions[0])}


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
