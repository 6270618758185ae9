"""A local stand-in for the Vertex AI REST API that records what the real SDK sends.

Where no Google Cloud project is given, the chapters (7, 8, 9, 10), the exercises' checks and the
tests send the real `google-cloud-aiplatform` SDK's requests here instead, and read them back:
the service itself cannot run outside Google Cloud.

    with VertexRecorder() as vertex:                 # or vertex = VertexRecorder().start()
        aiplatform.init(project="p", location="us-central1", credentials=AnonymousCredentials(),
                        api_endpoint=vertex.endpoint, api_transport="rest")
        ...                                        # the SDK's requests now come here
    [request] = vertex.find("POST", "/customJobs")  # method, path, query, body (parsed JSON)

A real `http.server` on 127.0.0.1 in a daemon thread. It records every request and answers
with minimal valid resources: creating a job (customJobs, hyperparameterTuningJobs, ...)
returns the job with a name and a state; anything else that creates or acts returns a
long-running operation that is already `done: true`. Models and endpoints keep just enough
state for the SDK's follow-up GETs: `…/models:upload` stores the model (version 1),
`POST …/endpoints` the endpoint, `…:deployModel` / `…:undeployModel` change its deployed
models and traffic split, and DELETE moves a resource to `deleted` (refused while an endpoint
still has deployed models). GET returns the last resource stored at that path (jobs as
succeeded; `models/1@1` is model 1), else `{"name": …}`; a succeeded batch prediction job into
Cloud Storage names its output folder (`outputInfo.gcsOutputDirectory`, where the real service
writes; nothing is written here) and its `completionStats`. `respond(method, path_regex, fn)`
overrides an answer: `fn(request) -> (status, body_dict)`. The server stops when the block ends.
"""
import copy
import datetime
import http.server
import itertools
import json
import re
import threading
import urllib.parse

from census.batch import layout

# Collections whose create call returns the resource itself rather than an operation.
JOB_COLLECTIONS = {"customJobs", "hyperparameterTuningJobs", "trainingPipelines",
                   "batchPredictionJobs", "nasJobs"}
TYPE_PREFIX = "type.googleapis.com/google.cloud.aiplatform.v1."
# The `response` and `metadata` types of long-running operations (the REST client unpacks
# them by @type).
OPERATION_TYPES = {"upload": ("UploadModelResponse", "UploadModelOperationMetadata"),
                   "endpoints": ("Endpoint", "CreateEndpointOperationMetadata"),
                   "deployModel": ("DeployModelResponse", "DeployModelOperationMetadata"),
                   "undeployModel": ("UndeployModelResponse", "UndeployModelOperationMetadata")}


class VertexRecorder:
    """The stand-in: `endpoint` (its http://127.0.0.1:PORT address, for `aiplatform.init(
    api_endpoint=…, api_transport="rest")`), `requests` (every one received, in order: dicts
    of method, path, query, body, headers), `find`, `respond`; `start`/`stop` or a `with`
    block. Jobs it creates read back as `job_state`; batch prediction jobs that succeeded with
    `completion_stats` (CompletionStats' fields: successfulCount, failedCount, …)."""

    def __init__(self, job_state="JOB_STATE_SUCCEEDED", completion_stats=None):
        self.requests, self.resources, self.job_state = [], {}, job_state
        # what batch prediction jobs report as done: nothing, as the stand-in runs no model
        self.completion_stats = completion_stats or {"successfulCount": 0, "failedCount": 0,
                                                     "incompleteCount": 0}
        self.deleted = {}  # resources removed by DELETE (the SDK may read them once more)
        self._ids, self._overrides, self._lock = itertools.count(1), [], threading.Lock()
        self._server = self._thread = None

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def respond(self, method, path_regex, fn):
        self._overrides.append((method, re.compile(path_regex), fn))

    def find(self, method, path_contains=""):
        """The recorded requests with this method whose path contains `path_contains`."""
        return [r for r in self.requests if r["method"] == method and path_contains in r["path"]]

    def __enter__(self):
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _handle(self):
                url = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                request = {"method": self.command, "path": urllib.parse.unquote(url.path),
                           "query": urllib.parse.parse_qs(url.query), "body": body,
                           "headers": dict(self.headers)}
                with recorder._lock:
                    recorder.requests.append(request)
                    status, answer = recorder._answer(request)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _handle

            def log_message(self, *args):  # keep the output clean
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    start = __enter__

    def stop(self):
        """Stop the server (what leaving the `with` block does)."""
        self.__exit__()

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- answers ---------------------------------------------------------------------------
    def _answer(self, request):
        method, path = request["method"], request["path"]
        for m, regex, fn in self._overrides:
            if m == method and regex.search(path):
                return fn(request)
        name = path[len("/v1/"):] if path.startswith("/v1/") else path.lstrip("/")
        collection = name.rsplit("/", 1)[-1]
        if method == "POST" and collection in JOB_COLLECTIONS:
            resource = dict(request["body"] or {}, name=f"{name}/{next(self._ids)}",
                            state="JOB_STATE_PENDING", createTime="2026-01-01T00:00:00Z")
            self.resources[resource["name"]] = resource
            return 200, resource
        if method == "GET":
            if "/operations/" in name:
                return 200, {"name": name, "done": True}
            name = name.split("@")[0]  # a model version, models/1@1
            resource = copy.deepcopy(self.resources.get(name) or self.deleted.get(name)
                                     or {"name": name})
            if resource.get("state", "").startswith("JOB_STATE_"):
                resource["state"] = self.job_state
                if self.job_state == "JOB_STATE_SUCCEEDED":
                    resource.update(self._batch_outputs(resource))
            return 200, resource
        if method == "DELETE":
            if self.resources.get(name, {}).get("deployedModels"):
                return 400, {"error": {"code": 400, "status": "FAILED_PRECONDITION",
                                       "message": "endpoint still has deployed models"}}
            self.deleted[name] = self.resources.pop(name, {"name": name})
            return 200, self._operation(name, metadata="DeleteOperationMetadata")
        if method in ("POST", "PATCH"):
            return 200, self._act(name, collection, request["body"] or {})
        return 404, {"error": {"code": 404, "message": f"no route for {method} {path}",
                               "status": "NOT_FOUND"}}

    def _batch_outputs(self, job):
        """What a batch prediction job into Cloud Storage reports once it has succeeded: its
        new folder, `<outputUriPrefix>/prediction-<model display name>-<create time>`, and its
        counts (`completion_stats`); nothing for other jobs."""
        prefix = job.get("outputConfig", {}).get("gcsDestination", {}).get("outputUriPrefix")
        if not prefix:
            return {}
        name = job.get("model", "").split("@")[0]
        model = self.resources.get(name) or self.deleted.get(name) or {}
        created = datetime.datetime.fromisoformat(job["createTime"])
        folder = f"{prefix.rstrip('/')}/{layout.folder_name(model.get('displayName'), created)}"
        return {"outputInfo": {"gcsOutputDirectory": folder},
                "completionStats": {k: str(v) for k, v in self.completion_stats.items()}}

    def _act(self, name, collection, body):
        """Carry out a create or an action on models and endpoints; the finished operation."""
        base, _, verb = name.partition(":")
        kind = verb or collection
        if kind not in OPERATION_TYPES:
            return self._operation(base)
        if kind == "upload":
            model = dict(body.get("model", {}), name=f"{base}/{next(self._ids)}", versionId="1",
                         supportedDeploymentResourcesTypes=["DEDICATED_RESOURCES"])
            self.resources[model["name"]] = model
            response = {"model": model["name"], "modelVersionId": "1"}
        elif kind == "endpoints":
            endpoint = dict(body, name=f"{base}/{next(self._ids)}", deployedModels=[],
                            trafficSplit={})
            self.resources[endpoint["name"]] = endpoint
            response = copy.deepcopy(endpoint)
        else:
            endpoint = self.resources.setdefault(base, {"name": base})
            deployed_models = endpoint.setdefault("deployedModels", [])
            split = body.get("trafficSplit", {})
            response = {}
            if kind == "deployModel":  # traffic split key "0" means the model being deployed
                deployed = dict(body["deployedModel"], id=str(next(self._ids)))
                deployed_models.append(deployed)
                split = {deployed["id"] if k == "0" else k: v for k, v in split.items()}
                response = {"deployedModel": copy.deepcopy(deployed)}
            else:
                deployed_models[:] = [d for d in deployed_models
                                      if d["id"] != body.get("deployedModelId")]
            endpoint["trafficSplit"] = split
        response_type, metadata = OPERATION_TYPES[kind]
        return self._operation(base, {"@type": TYPE_PREFIX + response_type, **response},
                               metadata)

    def _operation(self, base, response=None, metadata="GenericOperationMetadata"):
        """A long-running operation that has already finished."""
        return {"name": f"{base}/operations/{next(self._ids)}", "done": True,
                "metadata": {"@type": TYPE_PREFIX + metadata},
                "response": response or {"@type": "type.googleapis.com/google.protobuf.Empty"}}
