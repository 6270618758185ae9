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
long-running operation that is already `done: true`. Models and endpoints keep the state
the service keeps, and refuse what it refuses (400 FAILED_PRECONDITION or INVALID_ARGUMENT):
`…/models:upload` stores a model, or with `parentModel` its next version; its version
aliases are unique within the model and exactly one version holds `default` (the first
version, or one uploaded or merged with it: `…@V:mergeVersionAliases`, which cannot take it
away); `models/M` is its default version, `models/M@V` a version by id or alias,
`models/M:listVersions` all of them. `POST …/endpoints` stores an endpoint; `…:deployModel`,
`…:undeployModel` and PATCH change its deployed models and traffic split, which must name
deployed models and add up to 100 (the key "0" is the model being deployed; a deployed model
keeps no traffic when it goes). DELETE moves a resource to `deleted`: refused for an endpoint
with deployed models, a model or version deployed somewhere, and a model's default or last
version (Vertex AI's model-alias and delete-model pages, cloud.google.com/vertex-ai/docs/
model-registry/model-alias and …/delete-model). GET returns the last resource stored at that
path (jobs as succeeded), else `{"name": …}`; a succeeded batch prediction job into
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
        self.versions = {}  # model name → {version id: the version}; resources[name] is the
        # model's default version
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
            if name.endswith(":listVersions"):
                base = name.removesuffix(":listVersions")
                return 200, {"models": [copy.deepcopy(v) for _, v in
                                        sorted(self.versions.get(base, {}).items())]}
            if "@" in name:  # a model version, by id or alias: models/1@2, models/1@default
                version = self._version(name)
                if version is None:
                    return _error(404, "NOT_FOUND", f"no model version {name}")
                return 200, copy.deepcopy(version)
            resource = copy.deepcopy(self.resources.get(name) or self.deleted.get(name)
                                     or {"name": name})
            if resource.get("state", "").startswith("JOB_STATE_"):
                resource["state"] = self.job_state
                if self.job_state == "JOB_STATE_SUCCEEDED":
                    resource.update(self._batch_outputs(resource))
            return 200, resource
        if method == "DELETE":
            if self.resources.get(name, {}).get("deployedModels"):
                return _error(400, "FAILED_PRECONDITION", "endpoint still has deployed models")
            base, _, version = name.removesuffix(":deleteVersion").partition("@")
            if base in self.versions:
                problem = self._delete_model(base, version)
                if problem:
                    return _error(400, "FAILED_PRECONDITION", problem)
                return 200, self._operation(name, metadata="DeleteOperationMetadata")
            self.deleted[name] = self.resources.pop(name, {"name": name})
            return 200, self._operation(name, metadata="DeleteOperationMetadata")
        if method == "PATCH" and name in self.resources:
            return self._update(name, request["body"] or {}, request["query"])
        if method == "POST" and name.endswith(":mergeVersionAliases"):
            return self._merge_aliases(name.removesuffix(":mergeVersionAliases"),
                                       (request["body"] or {}).get("versionAliases", []))
        if method in ("POST", "PATCH"):
            return self._act(name, collection, request["body"] or {})
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
        """Carry out a create or an action on models and endpoints: (status, the finished
        operation, or an error)."""
        base, _, verb = name.partition(":")
        kind = verb or collection
        if kind not in OPERATION_TYPES:
            return 200, self._operation(base)
        if kind == "upload":
            model_name = body.get("parentModel") or f"{base}/{next(self._ids)}"
            if body.get("parentModel") and model_name not in self.versions:
                return _error(404, "NOT_FOUND", f"no model {model_name} to add a version to")
            versions = self.versions.setdefault(model_name, {})
            version_id = str(len(versions) + sum(  # the deleted ones' ids are not reused
                d.startswith(model_name + "@") for d in self.deleted) + 1)
            aliases = list(body.get("model", {}).get("versionAliases", []))
            if not versions and "default" not in aliases:  # a new model's first version
                aliases.insert(0, "default")
            versions[version_id] = dict(
                body.get("model", {}), name=model_name, versionId=version_id,
                versionAliases=[], supportedDeploymentResourcesTypes=["DEDICATED_RESOURCES"])
            self._move_aliases(model_name, version_id, aliases)
            response = {"model": model_name, "modelVersionId": version_id}
        elif kind == "endpoints":
            endpoint = dict(body, name=f"{base}/{next(self._ids)}", deployedModels=[],
                            trafficSplit={})
            self.resources[endpoint["name"]] = endpoint
            response = copy.deepcopy(endpoint)
        else:
            endpoint = self.resources.setdefault(base, {"name": base})
            deployed_models = endpoint.setdefault("deployedModels", [])
            response = {}
            if kind == "deployModel":  # traffic split key "0" means the model being deployed
                version = self._version(body["deployedModel"].get("model", ""))
                if version is None:
                    return _error(404, "NOT_FOUND", "no such model (version) to deploy: "
                                  f"{body['deployedModel'].get('model')}")
                deployed = dict(body["deployedModel"], id=str(next(self._ids)),
                                modelVersionId=version["versionId"])
                split = {deployed["id"] if k == "0" else k: v
                         for k, v in body.get("trafficSplit", {"0": 100}).items()}
                problem = _split_problem(split, [d["id"] for d in deployed_models]
                                         + [deployed["id"]])
                if problem:
                    return _error(400, "INVALID_ARGUMENT", problem)
                deployed_models.append(deployed)
                response = {"deployedModel": copy.deepcopy(deployed)}
            else:
                gone = body.get("deployedModelId")
                left = [d for d in deployed_models if d["id"] != gone]
                split = body.get("trafficSplit")
                if split is None:
                    split = {k: v for k, v in endpoint.get("trafficSplit", {}).items()
                             if k != gone}
                problem = _split_problem(split, [d["id"] for d in left]) if left else None
                if problem:
                    return _error(400, "FAILED_PRECONDITION",
                                  f"undeploying {gone} leaves a traffic split that {problem}")
                deployed_models[:] = left
                split = split if left else {}
            endpoint["trafficSplit"] = split
        response_type, metadata = OPERATION_TYPES[kind]
        return 200, self._operation(base, {"@type": TYPE_PREFIX + response_type, **response},
                                    metadata)

    def _update(self, name, body, query):
        """PATCH of an endpoint (UpdateEndpoint: the fields its updateMask names, camelCase
        or snake_case); the endpoint, or a 400 for a traffic split the service refuses."""
        resource = self.resources[name]
        fields = [f for mask in query.get("updateMask", []) for f in mask.split(",")]
        for field in fields:
            key = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), field)
            if key == "trafficSplit":
                problem = _split_problem(body.get("trafficSplit", {}),
                                         [d["id"] for d in resource.get("deployedModels", [])])
                if problem:
                    return _error(400, "INVALID_ARGUMENT", problem)
            resource[key] = copy.deepcopy(body.get(key))
        return 200, copy.deepcopy(resource)

    # --- model versions ---------------------------------------------------------------------
    def _version(self, name):
        """The stored version that `models/M`, `models/M@ID` or `models/M@ALIAS` names."""
        base, _, wanted = name.partition("@")
        versions = self.versions.get(base, {})
        wanted = wanted or "default"
        if wanted in versions:
            return versions[wanted]
        return next((v for v in versions.values() if wanted in v["versionAliases"]), None)

    def _move_aliases(self, model_name, version_id, aliases):
        """Give version `version_id` `aliases` ("-alias" takes one away), taking each from
        the version that held it; resources[model] follows the `default` alias."""
        versions = self.versions[model_name]
        for alias in aliases:
            if alias.startswith("-"):
                versions[version_id]["versionAliases"].remove(alias[1:])
                continue
            for version in versions.values():
                if alias in version["versionAliases"]:
                    version["versionAliases"].remove(alias)
            versions[version_id]["versionAliases"].append(alias)
        self.resources[model_name] = self._version(model_name)

    def _merge_aliases(self, name, aliases):
        """MergeVersionAliases: (status, the version, or an error)."""
        version = self._version(name)
        if version is None:
            return _error(404, "NOT_FOUND", f"no model version {name}")
        held = version["versionAliases"]
        for alias in aliases:
            if alias == "-default":
                return _error(400, "FAILED_PRECONDITION", "the default alias cannot be taken "
                              "away, only moved: give it to another version")
            if alias.startswith("-") and alias[1:] not in held:
                return _error(400, "INVALID_ARGUMENT",
                              f"version {version['versionId']} has no alias {alias[1:]!r}")
            if not re.fullmatch(r"-?[a-z][a-zA-Z0-9-]{0,126}[a-z0-9]", alias):
                return _error(400, "INVALID_ARGUMENT", f"not a version alias: {alias!r}")
        self._move_aliases(name.partition("@")[0], version["versionId"], aliases)
        return 200, copy.deepcopy(version)

    def _delete_model(self, base, version_id):
        """DeleteModel (all versions) or DeleteModelVersion: None, or why it is refused."""
        versions = self.versions[base]
        doomed = list(versions)
        if version_id:
            version = self._version(f"{base}@{version_id}")
            if version is None:
                return f"no model version {base}@{version_id}"
            doomed = [version["versionId"]]
            if "default" in version["versionAliases"]:
                return "the default version cannot be deleted: move the default alias first"
            if len(versions) == 1:
                return "the last version cannot be deleted: delete the model"
        for endpoint in list(self.resources.values()):
            for deployed in endpoint.get("deployedModels", []):
                deployed_base, _, _ = deployed.get("model", "").partition("@")
                if deployed_base == base and deployed.get("modelVersionId") in doomed:
                    return (f"version {deployed['modelVersionId']} is deployed on "
                            f"{endpoint['name']}: undeploy it first")
        if version_id:
            self.deleted[f"{base}@{doomed[0]}"] = versions.pop(doomed[0])
        else:
            del self.versions[base]
            self.deleted[base] = self.resources.pop(base)
        return None

    def _operation(self, base, response=None, metadata="GenericOperationMetadata"):
        """A long-running operation that has already finished."""
        return {"name": f"{base}/operations/{next(self._ids)}", "done": True,
                "metadata": {"@type": TYPE_PREFIX + metadata},
                "response": response or {"@type": "type.googleapis.com/google.protobuf.Empty"}}


def _split_problem(split, deployed_ids):
    """Why the service refuses `split` (deployed model id → percent) on an endpoint with
    `deployed_ids`, or None: unknown ids, a percent outside 0-100, a sum other than 100."""
    unknown = sorted(set(split) - set(deployed_ids))
    if unknown:
        return f"names models not deployed here: {', '.join(unknown)}"
    if any(not isinstance(v, int) or not 0 <= v <= 100 for v in split.values()):
        return "holds a percent that is not a whole number from 0 to 100"
    if sum(split.values()) != 100:
        return f"adds up to {sum(split.values())}, not 100"
    return None


def _error(status, code, message):
    """(HTTP status, a google.rpc error body) as Vertex AI's REST API answers."""
    return status, {"error": {"code": status, "status": code, "message": message}}
