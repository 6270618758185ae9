"""The `census serve` web app: Starlette routes for TF Serving's REST API and Vertex AI's
predict route, every error mapped once to TF Serving's `{"error": …}` (chapter 9).

The handlers (`Server`) check what they can at once (model, version, request shape) and hand
the rows to the `Batcher`, whose worker thread checks each instance and calls the model.
A body is read to its end even when it is refused, so that a client still sending it sees the
error instead of a broken pipe.
"""
import asyncio
import contextlib
import json
import logging
import os

from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Route

from census import predict
from census.serving.batching import Batcher, Job
from census.serving.protocol import (
    MAX_REQUEST_BYTES,
    PARSE_IN_THREAD_BYTES,
    ServingError,
    check_keys,
    classify_examples,
    inputs_to_instances,
    parse_body,
    render_classify,
    rows_of,
)

log = logging.getLogger("census.serving")


class Server:
    """The request handling, independent of the ASGI framework around it."""

    def __init__(self, watcher, batcher, max_request_bytes=MAX_REQUEST_BYTES,
                 deployed_model_id=None):
        self.watcher, self.batcher = watcher, batcher
        self.max_request_bytes = max_request_bytes
        self.deployed_model_id = deployed_model_id

    # versions
    def version(self, name, number=None):
        """The loaded Version asked for (latest if `number` is None); 404, 400 or 503 as TF Serving
        answers."""
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
        """TF Serving's GetModelStatus reply: each version's state, newest first."""
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
        """TF Serving's GetModelMetadata reply: the version's signature_defs."""
        version = self.version(name, number)
        return {"model_spec": {"name": name, "signature_name": "", "version": str(version.number)},
                "metadata": {"signature_def": {"signature_def": version.signature_defs}}}

    def health(self):
        """{} once a version serves (Vertex AI's health check), else a 503."""
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
            check_keys(request, ("signature_name", "instances", "inputs"))
            if "instances" in request and "inputs" in request:
                raise ServingError(400, "Request must have either 'instances' (row format) or "
                                   "'inputs' (columnar format), not both")
            signature, fmt = version.signature(request.get("signature_name"))
            if "instances" in request:
                items, what, render = rows_of(request["instances"]), "instances", \
                    lambda out: {"predictions": predict.rows(out)}
            elif "inputs" in request:
                items, what, render = inputs_to_instances(request["inputs"], fmt), "inputs", \
                    lambda out: {"outputs": predict.columns(out)}
            else:
                raise ServingError(400, "Missing 'instances' or 'inputs' key in the request")
            return Job(version, signature, fmt, items, what, render)
        return await self.batcher.submit(await self.parse(body, build))

    async def classify(self, body, name, number=None):
        version = self.version(name, number)

        def build(request):
            check_keys(request, ("signature_name", "context", "examples"))
            signature, fmt = version.signature(request.get("signature_name"))
            if "examples" not in request:
                raise ServingError(400, "Missing 'examples' key in the classify request")
            items = classify_examples(request.get("context", {}), request["examples"], fmt)
            return Job(version, signature, fmt, items, "examples",
                       lambda out: {"results": render_classify(out)})
        return await self.batcher.submit(await self.parse(body, build))

    async def vertex_predict(self, body, deployed_model_id):
        version = self.version(self.watcher.name)
        model_id = self.deployed_model_id or deployed_model_id

        def build(request):
            check_keys(request, ("instances", "parameters"))
            parameters = request.get("parameters", {})
            if not isinstance(parameters, dict):
                raise ServingError(400, "parameters must be a JSON object")
            check_keys(parameters, ("signature_name",))
            signature, fmt = version.signature(parameters.get("signature_name"))
            if "instances" not in request:
                raise ServingError(400, "Missing 'instances' key in the request")
            return Job(version, signature, fmt, rows_of(request["instances"]), "instances",
                       lambda out: {"predictions": predict.rows(out),
                                    "deployedModelId": model_id})
        return await self.batcher.submit(await self.parse(body, build))



class ModelName(Convertor):
    """A model, endpoint or deployed model name in a URL: no '/' and no ':' (the verb)."""
    regex = "[^/:]+"

    def convert(self, value):
        """The name, as it is."""
        return value

    def to_string(self, value):
        """The name, as it is."""
        return value


register_url_convertor("name", ModelName())
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
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > DRAIN_BYTES:
                break
    except (RuntimeError, ClientDisconnect):  # already read, or the client went away
        pass


async def read_body(request, max_request_bytes):
    """The request body (bytes), or a 413 once it is over `max_request_bytes` (read to its end
    all the same, up to DRAIN_BYTES: see `drain`), or a 400 for a bad Content-Length."""
    length = request.headers.get("content-length")
    if length is not None and not length.isdigit():
        raise ServingError(400, f"invalid Content-Length {length!r}")
    too_big = length is not None and int(length) > max_request_bytes
    if too_big and (waits_to_send(request) or int(length) > DRAIN_BYTES):
        raise ServingError(413, f"request of {int(length)} bytes is over the limit of "
                           f"{max_request_bytes} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        too_big = too_big or size > max_request_bytes
        if size > DRAIN_BYTES:
            break
        if not too_big:
            chunks.append(chunk)
    if too_big:
        raise ServingError(413, f"request body of {size} bytes is over the limit of "
                           f"{max_request_bytes} bytes")
    return b"".join(chunks)


def reply(value, status=200):
    """A JSON response: `value` (bytes already encoded, or a JSON-ready value) with `status`."""
    body = value if isinstance(value, bytes) else json.dumps(value).encode()
    return Response(body, status_code=status, media_type="application/json")


def create_app(watcher, batcher=None, max_request_bytes=MAX_REQUEST_BYTES, environ=None):
    """The Starlette app serving `watcher`'s versions through `batcher` (default: a Batcher
    of one model thread); it starts both, and stops them on shutdown. `environ` (default
    os.environ) may name Vertex AI's routes: AIP_PREDICT_ROUTE, AIP_HEALTH_ROUTE, and the
    AIP_DEPLOYED_MODEL_ID that replies carry."""
    environ = os.environ if environ is None else environ
    batcher = batcher or Batcher()
    server = Server(watcher, batcher, max_request_bytes, environ.get("AIP_DEPLOYED_MODEL_ID"))

    async def body(request):
        return await read_body(request, max_request_bytes)

    async def model_verb(request):
        name, number = request.path_params["model"], request.path_params.get("version")
        verb = request.path_params["verb"]
        if verb == "predict":
            return reply(await server.predict(await body(request), name, number))
        if verb == "classify":
            return reply(await server.classify(await body(request), name, number))
        if verb == "regress":
            raise ServingError(400, "this model is a classifier: use :predict or :classify")
        raise HTTPException(404)

    async def model_status(request):
        return reply(server.status(request.path_params["model"],
                                   request.path_params.get("version")))

    async def model_metadata(request):
        return reply(server.metadata(request.path_params["model"],
                                     request.path_params.get("version")))

    async def vertex_predict(request):
        model = request.path_params.get("deployed", "")
        return reply(await server.vertex_predict(await body(request), model))

    async def health(request):
        return reply(server.health())

    async def error(request, exc):
        """Every error, once: TF Serving's {"error": …}, after the body is read to its end."""
        await drain(request)
        if isinstance(exc, ServingError):  # one line in the log, no traceback
            log.warning("%s %s: %d %s", request.method, request.url.path, exc.status,
                        exc.message)
            return reply({"error": exc.message}, exc.status)
        if isinstance(exc, ClientDisconnect):
            return Response(status_code=400)
        if isinstance(exc, HTTPException):  # no such route (TF Serving answers 404 too)
            return reply({"error": f"Malformed request: {request.method} {request.url.path}"},
                         404)
        log.error("error handling %s %s", request.method, request.url.path, exc_info=exc)
        return reply({"error": f"{type(exc).__name__}: {exc}"}, 500)

    models, vertex = "/v1/models/{model:name}", "/endpoints/{endpoint:name}/deployedModels/"
    routes = [
        Route(models + ":{verb:name}", model_verb, methods=["POST"]),
        Route(models + "/versions/{version:name}:{verb:name}", model_verb, methods=["POST"]),
        Route(models, model_status, methods=["GET"]),
        Route(models + "/versions/{version:name}", model_status, methods=["GET"]),
        Route(models + "/metadata", model_metadata, methods=["GET"]),
        Route(models + "/versions/{version:name}/metadata", model_metadata, methods=["GET"]),
    ]
    for prefix in ("/v1", "/v1/projects/{project:name}/locations/{location:name}"):
        routes += [Route(prefix + vertex + "{deployed:name}:predict", vertex_predict,
                         methods=["POST"]),
                   Route(prefix + vertex + "{deployed:name}", health, methods=["GET"])]
    if environ.get("AIP_PREDICT_ROUTE"):  # Vertex AI tells a custom container its routes
        routes.insert(0, Route(environ["AIP_PREDICT_ROUTE"], vertex_predict, methods=["POST"]))
    if environ.get("AIP_HEALTH_ROUTE"):
        routes.insert(0, Route(environ["AIP_HEALTH_ROUTE"], health, methods=["GET"]))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        watcher.start()
        try:
            yield
        finally:
            watcher.stop()
            await batcher.stop()

    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={ServingError: error, ClientDisconnect: error,
                                        HTTPException: error, Exception: error})
    app.state.server = server
    return app
