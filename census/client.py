"""Clients of a model server: one prediction call, and a short bounded load run.

`predict_url` speaks TensorFlow Serving's REST API (`census serve`, TF Serving itself) and,
given a full `…:predict` URL, a Vertex AI endpoint's. It returns the outputs as column arrays,
like `census.predict.predict`, so `census.predict.format_table` prints the same table.
"""
import asyncio
import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

from census import predict


def predict_path(model="census", version=None, verb="predict"):
    return f"/v1/models/{model}{f'/versions/{version}' if version else ''}:{verb}"


def predict_request_url(url, model="census", version=None):
    """A server's address (`http://127.0.0.1:8501`) → its predict URL; a URL that already
    names a `…:predict` route (a Vertex endpoint, a pinned version) is used as it is."""
    url = url.rstrip("/")
    if urllib.parse.urlparse(url).path.endswith(":predict"):
        return url
    return url + predict_path(model, version)


def predict_url(url, instances, model="census", version=None, signature=None, timeout=60,
                headers=None):
    """POST {"instances": …} to a model server; returns {output: numpy array} like
    `census.predict.predict`. HTTP errors raise `PredictError` with the server's message."""
    body = {"instances": instances}
    if signature:
        body["signature_name"] = signature
    request = urllib.request.Request(
        predict_request_url(url, model, version), data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            reply = json.load(response)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            message = json.loads(raw)["error"]
        except (ValueError, KeyError, TypeError):
            message = raw.decode(errors="replace")[:500]
        raise predict.PredictError(f"{request.full_url}: HTTP {e.code}: {message}") from None
    except urllib.error.URLError as e:
        raise predict.PredictError(f"{request.full_url}: {e.reason}") from None
    return to_columns(reply["predictions"])


def as_json(items, kind="json"):
    """Instances as they travel in a request's JSON: values read from JSON lines as they are;
    CSV rows as strings; serialized Examples as TF Serving's {"b64": …}."""
    if kind == "tfrecord":
        return [{"b64": base64.b64encode(item).decode()} for item in items]
    return list(items)


def to_columns(predictions):
    """Row-format predictions (a list of dicts) → {output: numpy array}."""
    return {k: np.array([row[k] for row in predictions]) for k in predict.OUTPUT_KEYS}


# --- a short load run ----------------------------------------------------------------------

def percentile(values, q):
    return float(np.percentile(values, q)) if values else float("nan")


async def _one_client(host, port, request, deadline, max_requests, result):
    """Keep-alive HTTP/1.1 requests, one at a time, until the deadline or the request budget.
    A bare asyncio client: light enough that the load generator does not take the server's
    CPU on a small machine."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline and result["sent"] < max_requests:
            result["sent"] += 1
            start = time.perf_counter()
            writer.write(request)
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            result["latencies"].append(time.perf_counter() - start)
            result["statuses"][status] = result["statuses"].get(status, 0) + 1
            if status != 200 and len(result["errors"]) < 10:
                result["errors"].append(body.decode(errors="replace")[:300])
    finally:
        writer.close()


async def load_async(url, body, concurrency=8, seconds=2.0, max_requests=100_000):
    """`concurrency` clients POST `body` to `url` for `seconds` (at most `max_requests` in all).
    Returns counts and latency percentiles (ms)."""
    parsed = urllib.parse.urlparse(url)
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = (f"POST {parsed.path} HTTP/1.1\r\nHost: {parsed.netloc}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
               ).encode() + payload
    result = {"sent": 0, "latencies": [], "statuses": {}, "errors": []}
    start = time.perf_counter()
    await asyncio.gather(*(_one_client(parsed.hostname, parsed.port, request, start + seconds,
                                       max_requests, result) for _ in range(concurrency)))
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
