"""Checks for chapter 9's exercises: a REST client that retries, a columnar request, and
retiring a model version on Vertex AI.

The checks talk to the real `census serve` started by the notebook, and to small scripted
HTTP servers of their own (stdlib `http.server`, 127.0.0.1 only) that answer 503, 429 or 400
on cue, so that every branch of the learner's client meets a real HTTP exchange. The Vertex
AI check drives the real google-cloud-aiplatform SDK against the course's local stand-in for
the service (`census.course.vertex_recorder`), which keeps models, versions and endpoints as
the service does and refuses what it refuses."""
import http.server
import json
import math
import threading
import time

from census import processes
from census.course.checks.core import CheckFailed, NotAnswered, call, expect, passed
from census.schema import HIGH, LOW

__all__ = ["check_predict_with_retries", "check_predict_frame", "check_retire"]

PREDICT_PATH = "/v1/models/census:predict"
BAD_REQUEST = "instances: instance 0: age: could not convert 'fifty' to float"
TIME_LIMIT = 20.0  # seconds one call may take before the check gives up on it


class _Scripted:
    """An HTTP server on 127.0.0.1 that answers POSTs from a script: [(status, body), …], the
    last reply repeating; it records every request's path and JSON body."""

    def __init__(self, replies):
        self.replies, self.requests = list(replies), []
        scripted = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                scripted.requests.append((self.path, body))
                status, reply = scripted.replies[min(len(scripted.requests),
                                                     len(scripted.replies)) - 1]
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # no access log in the notebook
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _bounded(fn, args, what, kwargs=None):
    """Call the learner's function in a thread, at most TIME_LIMIT seconds. Returns (result,
    error the learner's code raised, seconds); NotAnswered and a time-out raise."""
    box = {}

    def target():
        try:
            box["result"] = call(fn, *args, what=what, **(kwargs or {}))
        except BaseException as error:  # noqa: B036 - handed back to the check's thread
            box["error"] = error
    start = time.monotonic()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(TIME_LIMIT)
    seconds = time.monotonic() - start
    expect(not thread.is_alive(), f"{what} was still running after {TIME_LIMIT:.0f} s",
           "a client must give up in bounded time: count the tries, bound the waits",
           "stop after `attempts` tries, keep the waits short (0.1 s, 0.2 s, 0.4 s…) and give "
           "requests.post a timeout")
    error = box.get("error")
    if isinstance(error, NotAnswered):
        raise error
    if isinstance(error, CheckFailed) and error.__cause__ is not None:
        error = error.__cause__  # the learner's own exception
    elif error is not None and not isinstance(error, Exception):
        raise error
    return box.get("result"), error, seconds


def _same_predictions(got, want):
    if not isinstance(got, list) or len(got) != len(want):
        return False
    for a, b in zip(got, want):
        if not isinstance(a, dict) or a.get("classes") != b["classes"]:
            return False
        if not all(math.isclose(x, y, abs_tol=1e-5) for x, y in zip(a.get("logistic", []),
                                                                      b["logistic"])):
            return False
    return True


def check_predict_with_retries(predict_with_retries, url, instances):
    """predict_with_retries(url, instances, attempts=3): the predictions of a TF Serving REST
    server, through 503/429 and connection errors (at most `attempts` tries), and a clear
    PredictError carrying the server's message otherwise."""
    import requests

    from census import predict
    fn, n = predict_with_retries, len(instances)
    what = f"predict_with_retries(URL, {n} instances)"
    truth = requests.post(url + PREDICT_PATH, json={"instances": instances},
                          timeout=30).json()["predictions"]

    # 1. the real server
    got, error, _ = _bounded(fn, (url, instances), what)
    expect(error is None, f"{what} raised {type(error).__name__}: {error}",
           "start with the plain request, as chapter 9 sends it",
           "POST {'instances': instances} to url + '/v1/models/census:predict' and return "
           "reply.json()['predictions']")
    expect(not (isinstance(got, dict) and "predictions" in got),
           f"{what} returned the whole reply", "the caller wants the predictions only",
           "return reply.json()['predictions']")
    expect(_same_predictions(got, truth), f"{what} returned {str(got)[:120]}",
           "return what the server answered, as it answered it",
           "return the server's 'predictions': one dict per person, as TF Serving sends them")

    # 2. two 503s, then the answer: three attempts are enough
    with _Scripted([(503, {"error": "model census is loading"})] * 2 + [(200, {
            "predictions": truth})]) as server:
        got, error, _ = _bounded(fn, (server.url, instances), what, {"attempts": 3})
        sent = server.requests
    expect(error is None or len(sent) > 1,
           f"it gave up at the first 503 ({type(error).__name__}: {str(error)[:100]})",
           "a 503 means 'not now': the same request may succeed a moment later",
           "on a 503, wait a little and try again, up to `attempts` times")
    expect(error is None, f"after two 503s it raised {type(error).__name__}: "
           f"{str(error)[:100]}", "count the tries: the first one counts too",
           "the third attempt gets the answer: with attempts=3, try three times before "
           "giving up")
    expect(all(path == PREDICT_PATH for path, _ in sent),
           f"it posted to {sent[0][0]}", "every try goes to the same predict URL",
           f"post to url + '{PREDICT_PATH}'")
    expect(all(body == {"instances": instances} for _, body in sent),
           f"the request body was {str(sent[0][1])[:100]}",
           "every try sends the same request", "send json={'instances': instances} every time")
    expect(_same_predictions(got, truth), f"after two 503s it returned {str(got)[:100]}",
           "the answer is in the reply that succeeded",
           "return the predictions of the reply that succeeded")

    # 3. 429 (too many requests) is worth another try too
    with _Scripted([(429, {"error": "too many requests"}), (200, {"predictions": truth})]) \
            as server:
        got, error, _ = _bounded(fn, (server.url, instances), what, {"attempts": 3})
    expect(error is None and _same_predictions(got, truth),
           "after a 429 it " + (f"raised {type(error).__name__}" if error
                                else f"returned {str(got)[:60]}"),
           "a 429 (too many requests) is a 'not now' too",
           "retry on 429 as on 503")

    # 4. always 503: exactly `attempts` tries, then a PredictError
    for attempts in (3, 2):
        with _Scripted([(503, {"error": "model census is loading"})]) as server:
            got, error, seconds = _bounded(fn, (server.url, instances), what,
                                           {"attempts": attempts})
            tries = len(server.requests)
        expect(error is not None, f"with a server that always answers 503, it returned "
               f"{got!r} after {tries} tries",
               "returning nothing hides the failure from the caller",
               "after the last attempt, raise predict.PredictError")
        expect(tries == attempts, f"with attempts={attempts} it sent {tries} requests",
               "`attempts` counts every request, the first one included",
               "loop for attempt in range(attempts)")
        expect(isinstance(error, predict.PredictError),
               f"after the last 503 it raised {type(error).__name__}",
               "the course's clients raise one kind of error for a failed prediction",
               "raise predict.PredictError(...) with the server's last message")
        expect(seconds < 10, f"{attempts} attempts took {seconds:.1f} s",
               "a wait between tries should be a moment, not seconds",
               "keep the waits short and bounded: 0.1 s, then 0.2 s, …")

    # 5. 400: the request is wrong; retrying cannot help
    with _Scripted([(400, {"error": BAD_REQUEST})]) as server:
        got, error, _ = _bounded(fn, (server.url, instances), what, {"attempts": 3})
        tries = len(server.requests)
    expect(error is not None, f"on a 400 it returned {str(got)[:80]}",
           "a 400 means the request is wrong: the caller must hear of it",
           "on a 400, raise predict.PredictError with the server's message")
    expect(tries == 1, f"it sent the refused request {tries} times",
           "a 400 is the request's fault: the same request will be refused again",
           "retry only on 503, 429 and connection errors; raise at once otherwise")
    expect(isinstance(error, predict.PredictError), f"on a 400 it raised "
           f"{type(error).__name__}: {str(error)[:80]}",
           "the course's clients raise one kind of error for a failed prediction",
           "raise predict.PredictError(...) (not raise_for_status, whose message drops the "
           "server's)")
    expect(BAD_REQUEST in str(error), f"the error says {str(error)[:100]!r}",
           "the server says what is wrong in its reply's body",
           "put the server's message, reply.json()['error'], in the PredictError: it names the "
           "instance and the field at fault")

    # 6. nobody listening (the server is down or not started yet)
    dead = f"http://127.0.0.1:{processes.free_port()}"  # nothing listens
    got, error, seconds = _bounded(fn, (dead, instances), what, {"attempts": 2})
    expect(error is not None, f"with no server it returned {got!r}",
           "returning nothing hides the failure from the caller",
           "after the last failed attempt, raise predict.PredictError")
    expect(isinstance(error, predict.PredictError),
           f"with no server it raised {type(error).__name__}",
           "a refused connection (a server restarting) is a 'not now' too: requests raises "
           "an exception instead of returning a reply",
           "catch requests.ConnectionError too (retry it like a 503), and raise "
           "predict.PredictError after the last attempt")
    passed(f"predict_with_retries: {n} predictions from census serve; through two 503s and "
           f"a 429; `attempts` tries, then PredictError; a 400's message at once; no server: "
           f"PredictError after {seconds:.1f} s")


def check_predict_frame(predict_frame, url, frame):
    """predict_frame(url, frame): one columnar request for the rows of `frame` (raw census
    columns); a DataFrame with the frame's index and columns `classes` and `logistic`."""
    import pandas as pd
    import requests

    from census import schema
    rows = [{c: (float(v) if c in schema.NUMERIC_COLUMNS else str(v)) for c, v in r.items()}
            for r in frame[list(schema.INPUT_COLUMNS)].to_dict("records")]
    truth = requests.post(url + PREDICT_PATH, json={"instances": rows},
                          timeout=30).json()["predictions"]
    classes = [p["classes"][0] for p in truth]
    logistic = [p["logistic"][0] for p in truth]
    what = f"predict_frame(URL, frame)  # {len(frame)} people"
    try:
        got = call(predict_frame, url, frame.copy(), what=what)
    except NotAnswered:
        raise
    except CheckFailed as failure:
        cause = str(failure.__cause__ or "")
        expect("not JSON serializable" not in cause, failure.problem,
               "JSON knows Python's numbers, not numpy's",
               "turn each column into a list of Python values with .tolist()")
        expect(not any(k in cause for k in ("400", "unknown field", "fnlwgt", "outputs")),
               failure.problem, "the server refuses the request: print reply.json() to read "
               "its message",
               "send only the model's 13 inputs (schema.INPUT_COLUMNS): the frame also holds "
               "fnlwgt and the label")
        raise
    expect(isinstance(got, pd.DataFrame), f"{what} returned a {type(got).__name__}",
           "the caller wants a table, one row per person", "return a pandas DataFrame")
    expect({"classes", "logistic"} <= set(got.columns),
           f"the columns are {list(got.columns)}", "one column per output asked for",
           "name the columns 'classes' and 'logistic'")
    expect(len(got) == len(frame), f"{len(got)} rows for {len(frame)} people",
           "one row per person: each output holds one value (in a list) per person",
           "build the columns from reply.json()['outputs'][name], one item per person")
    expect(list(got.index) == list(frame.index), "the rows lost the frame's index "
           f"({list(got.index)[:3]}… instead of {list(frame.index)[:3]}…)",
           "each answer should stay next to its person: the frame's index says who is who",
           "build the DataFrame with index=frame.index")
    first = got["classes"].iloc[0]
    expect(not isinstance(first, (list, tuple)), f"the classes are lists ({first!r})",
           f"each output holds one list per person ([' {LOW}'])",
           "keep each list's first item: [c[0] for c in outputs['classes']]")
    expect(list(got["classes"]) == classes, f"the classes are {list(got['classes'])[:3]}…, "
           f"not the model's {classes[:3]}…", "the server names the predicted label itself",
           "take the 'classes' output of the reply")
    values = [v[0] if isinstance(v, (list, tuple)) else v for v in got["logistic"]]
    expect(not all(math.isclose(float(v), 1 - w, abs_tol=1e-5) for v, w in zip(values, logistic)),
           f"these are the probabilities of {LOW}", "which output is the probability of "
           f"{HIGH}?", f"'logistic' is the probability of {HIGH} (the second column of "
           "'probabilities', not the first)")
    expect(all(math.isclose(float(v), w, abs_tol=1e-5) for v, w in zip(values, logistic)),
           f"the probabilities are {[round(float(v), 3) for v in values[:3]]}…, not the "
           f"model's {[round(w, 3) for w in logistic[:3]]}…",
           "the server computes the probability itself: read it from the reply",
           "take the 'logistic' output, one number per person")
    high = sum(c == schema.LABELS[1] for c in classes)  # replies carry the files' labels
    passed(f"{len(frame)} people in one columnar request: {high} predicted "
           f"{schema.HIGH}, mean probability {sum(logistic) / len(logistic):.3f}")



def check_retire(retire):
    """retire(endpoint, model, version_id): on a stand-in Vertex AI, version 2 of a model
    serves 30% of an endpoint's traffic beside version 1 (`default`, 70%); retiring version
    2 undeploys it, gives its share to the default version's deployed model, and deletes
    version 2 from the registry; retiring version 1 (the default) raises ValueError and
    changes nothing."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.aiplatform import initializer

    from census import quiet
    from census.course.vertex_recorder import VertexRecorder
    from census.serving import vertex
    saved = dict(vars(initializer.global_config))
    try:
        with (VertexRecorder() as stand_in, quiet.logs("google.cloud.aiplatform.models"),
              quiet.logs("google.cloud.aiplatform.base")):
            vertex.init("my-project", credentials=AnonymousCredentials(),
                        api_endpoint=stand_in.endpoint, api_transport="rest")
            model = vertex.upload("gs://my-bucket/census/1")
            endpoint = vertex.deploy(model)
            vertex.roll_out(model, "gs://my-bucket/census/2", endpoint, 30)
            ids = {d.model_version_id: d.id for d in endpoint.list_models()}
            share = ("the endpoint's split must still add up to 100 once version 2 is gone",
                     "give version 2's share to the default version: "
                     "endpoint.undeploy(id, traffic_split={…: 100})")
            call(retire, endpoint, model, "2", what="retire(endpoint, model, '2')", hint=[
                ("adds up to", share), ("needs to be 100", share),
                ("is deployed on", ("a deployed version cannot be deleted",
                                    "undeploy it from the endpoint first, then delete it"))])
            held = stand_in.resources[endpoint.resource_name]
            left = [d["modelVersionId"] for d in held["deployedModels"]]
            expect("2" not in left, "version 2 is still deployed on the endpoint",
                   "retiring a version starts on the endpoint",
                   "endpoint.undeploy(deployed_model_id, traffic_split=…): the deployed "
                   "model whose model_version_id is '2' (endpoint.list_models())")
            expect(left == ["1"], f"the endpoint serves versions {left}, not just version 1",
                   "only version 2 goes", "undeploy only the deployed model of version 2")
            expect(held["trafficSplit"] == {ids["1"]: 100},
                   f"the endpoint's traffic split is {held['trafficSplit']}",
                   "version 2's share goes to the default version",
                   f"traffic_split={{'{ids['1']}': 100}}: the default version's deployed "
                   "model takes all of it")
            versions = sorted(stand_in.versions[model.resource_name])
            expect(versions == ["1"], f"the model still has versions {versions}",
                   "an undeployed version still sits in the Model Registry",
                   "model.versioning_registry.delete_version(version_id)")
            before = len(stand_in.requests)
            try:
                retire(endpoint, model, "1")
            except ValueError as error:
                expect("traffic" not in str(error), "retiring the default version stopped "
                       f"in the SDK ({error}), not in your function",
                       "the default version cannot be retired: say so before any call",
                       "raise ValueError when 'default' is among the version's aliases "
                       "(model.versioning_registry.list_versions() gives each version's "
                       "version_aliases)")
            except Exception as error:  # noqa: BLE001 — the service refused it: say so
                expect(False, f"retire(endpoint, model, '1') raised {type(error).__name__}: "
                       f"{str(error)[:200]}", "version 1 holds the default alias: check "
                       "that before asking the service", "raise ValueError when 'default' is "
                       "among the version's aliases (model.versioning_registry.list_versions()"
                       " gives each version's version_aliases)")
            else:
                expect(False, "retire(endpoint, model, '1') returned: version 1 holds the "
                       "default alias", "the default version cannot be deleted",
                       "raise ValueError when 'default' is among the version's aliases")
            changed = [f"{r['method']} {r['path'].rsplit('/', 1)[-1]}"
                       for r in stand_in.requests[before:] if r["method"] != "GET"]
            expect(not changed, f"retiring the default version sent {changed} before it "
                   "refused", "refuse before changing anything",
                   "look at the version's aliases first, and raise before any undeploy")
            vertex.clean_up(model, endpoint)
    finally:
        vars(initializer.global_config).update(saved)
    passed("version 2 retired: undeployed, its 30% given to version 1, deleted from the "
           "registry; the default version refused")
