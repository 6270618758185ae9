"""`census serve`: TF Serving's REST API and Vertex AI's predict format, errors, versions,
reload under load, a fuzz run, and the client (`census predict --url`)."""
import asyncio
import collections
import json
import logging
import random
import shutil
import threading
import time

import httpx
import numpy as np
import pytest

from census import cli, export, predict, processes, schema, signature
from census.serving import (
    batching,
    cli as serving_cli,
    client,
    process as serving_process,
    protocol,
    versions,
)
from conftest import REPO, run_census

pytestmark = pytest.mark.slow  # model servers under load

INSTANCES = [json.loads(line) for line in (REPO / "test.json").read_text().splitlines() if line]


def publish(export_dir, base, version):
    """Copy an export into `base/<version>`: staged in a hidden folder beside it, then
    renamed into place."""
    path = export.publish(export_dir, base, version)
    assert not [p for p in base.iterdir() if p.name.startswith(".")]  # no staging left
    return path


def wait_for(condition, timeout=60, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def local(export_dir):
    """What in-process prediction gives for test.json (the reference for every route)."""
    return predict.rows(predict.predict(str(export_dir), INSTANCES))


@pytest.fixture(scope="module")
def base(export_dir, tmp_path_factory):
    """An export base directory holding one version, 1."""
    base = tmp_path_factory.mktemp("serve") / "export" / "census"
    base.mkdir(parents=True)
    publish(export_dir, base, 1)
    return base


@pytest.fixture(scope="module")
def server(base):
    with serving_process.BackgroundServer(base, poll_seconds=0.2) as running:
        yield running


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def close(rows, expected):
    for got, want in zip(rows, expected, strict=True):
        assert got["classes"] == want["classes"] and got["class_ids"] == want["class_ids"]
        np.testing.assert_allclose(got["probabilities"], want["probabilities"], rtol=1e-5)
        np.testing.assert_allclose(got["logits"], want["logits"], rtol=1e-5, atol=1e-6)


# --- TF Serving's REST API -----------------------------------------------------------------

def test_model_status_like_tf_serving(http):
    r = http.get("/v1/models/census")
    assert r.status_code == 200
    assert r.json() == {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK",
                                                          "error_message": ""}}]}
    assert http.get("/v1/models/census/versions/1").json()["model_version_status"][0][
        "version"] == "1"


def test_metadata_shows_the_signature(http):
    meta = http.get("/v1/models/census/metadata").json()
    assert meta["model_spec"] == {"name": "census", "signature_name": "", "version": "1"}
    sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["method_name"] == "tensorflow/serving/predict"
    assert set(sig["inputs"]) == set(schema.INPUT_COLUMNS)
    assert sig["inputs"]["age"]["dtype"] == "DT_FLOAT"
    assert sig["inputs"]["race"]["dtype"] == "DT_STRING"
    assert sig["inputs"]["age"]["tensor_shape"]["dim"] == [{"size": "-1", "name": ""}]
    assert set(sig["outputs"]) == set(signature.OUTPUT_KEYS)
    assert sig["outputs"]["probabilities"]["tensor_shape"]["dim"][1]["size"] == "2"
    assert "predict" in meta["metadata"]["signature_def"]["signature_def"]


def test_predict_instances_gives_rows_like_local_predict(http, local):
    r = http.post("/v1/models/census:predict", json={"instances": INSTANCES})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    close(r.json()["predictions"], local)
    assert r.json()["predictions"][0]["classes"][0] in schema.LABELS  # strings, not bytes


def test_predict_inputs_gives_columns(http, local):
    inputs = {c: [i[c] for i in INSTANCES] for c in schema.INPUT_COLUMNS}
    r = http.post("/v1/models/census/versions/1:predict",
                  json={"inputs": inputs, "signature_name": "predict"})
    assert r.status_code == 200
    outputs = r.json()["outputs"]
    assert set(outputs) == set(signature.OUTPUT_KEYS)
    close([{k: outputs[k][i] for k in outputs} for i in range(len(INSTANCES))], local)


def test_classify_gives_label_score_pairs(http, local):
    context = {"native_country": " United-States"}
    examples = [{k: v for k, v in i.items() if k != "native_country"} for i in INSTANCES]
    r = http.post("/v1/models/census:classify", json={"context": context, "examples": examples})
    assert r.status_code == 200
    results = r.json()["results"]
    assert [[label for label, _ in res] for res in results] == [list(schema.LABELS)] * 2
    np.testing.assert_allclose([[s for _, s in res] for res in results],
                               [row["probabilities"] for row in local], rtol=1e-5)


def test_integers_for_floats_and_leading_spaces_are_accepted(http):
    as_floats = [{k: float(v) if k in schema.NUMERIC_COLUMNS else v for k, v in i.items()}
                 for i in INSTANCES]
    stripped = [{k: v.strip() if isinstance(v, str) else v for k, v in i.items()}
                for i in INSTANCES]
    replies = [http.post("/v1/models/census:predict", json={"instances": x}).json()
               for x in (INSTANCES, as_floats, stripped)]
    close(replies[1]["predictions"], replies[0]["predictions"])
    assert all("predictions" in r for r in replies)


# --- Vertex AI ------------------------------------------------------------------------------

def test_vertex_predict_route(http, local):
    r = http.post("/v1/projects/p/locations/us-central1/endpoints/123/deployedModels/456:predict",
                  json={"instances": INSTANCES, "parameters": {}})
    assert r.status_code == 200
    assert r.json()["deployedModelId"] == "456"
    close(r.json()["predictions"], local)
    short = http.post("/v1/endpoints/123/deployedModels/456:predict", json={"instances": INSTANCES})
    assert short.json()["predictions"] == r.json()["predictions"]
    assert http.get("/v1/endpoints/123/deployedModels/456").status_code == 200
    bad = http.post("/v1/endpoints/1/deployedModels/2:predict",
                    json={"instances": INSTANCES, "parameters": []})
    assert bad.status_code == 400 and "parameters" in bad.json()["error"]
    raw = http.post("/v1/endpoints/123/deployedModels/456:rawPredict",
                    json={"instances": INSTANCES})
    assert raw.json()["predictions"] == r.json()["predictions"]  # Vertex passes the body on
    top = http.post("/v1/endpoints/1/deployedModels/2:predict",
                    json={"instances": INSTANCES, "signature_name": "predict"})
    assert top.status_code == 400 and top.json()["error"].startswith(
        "signature_name goes in parameters on Vertex AI's route")
    named = http.post("/v1/endpoints/1/deployedModels/2:predict",
                      json={"instances": INSTANCES, "parameters": {"signature_name": "predict"}})
    assert named.json()["predictions"] == r.json()["predictions"]


def test_vertex_container_routes_from_aip_variables(base, monkeypatch, local):
    """Vertex tells a custom container its routes and port through AIP_* variables."""
    for name, value in {"AIP_PREDICT_ROUTE": "/predict", "AIP_HEALTH_ROUTE": "/health",
                        "AIP_DEPLOYED_MODEL_ID": "789", "AIP_HTTP_PORT": "8080"}.items():
        monkeypatch.setenv(name, value)
    with serving_process.BackgroundServer(base) as s, httpx.Client(base_url=s.url) as c:
        assert c.get("/health").status_code == 200
        r = c.post("/predict", json={"instances": INSTANCES})
        assert r.status_code == 200 and r.json()["deployedModelId"] == "789"
        close(r.json()["predictions"], local)
    assert serving_cli.options("x").port is None  # → AIP port


# --- errors -------------------------------------------------------------------------------

GOOD = INSTANCES[0]
ERRORS = [
    (b"", 400, "empty"),
    (b"{", 400, "JSON Parse error"),
    (b"\xff\xfe", 400, "UTF-8"),
    (b"[1, 2]", 400, "JSON object"),
    (b'{"instances": [{"age": NaN}]}', 400, "instance 1: missing field 'workclass'"),
    (json.dumps({"instances": [{**GOOD, "age": float("nan")}]}).encode(), 400,
     "instances: instance 1: field 'age' is out of the float32 range"),
    (json.dumps({"instances": [{**GOOD, "hours_per_week": float("-inf")}]}).encode(), 400,
     "field 'hours_per_week' is out of the float32 range"),
    ({}, 400, "Missing 'instances' or 'inputs'"),
    ({"instance": [GOOD]}, 400, "unknown key 'instance'"),
    ({"instances": [GOOD], "inputs": {}}, 400, "not both"),
    ({"instances": []}, 400, "empty"),
    ({"instances": GOOD}, 400, "list"),
    ({"instances": [1]}, 400, "instance 1: expected a JSON object"),
    ({"instances": [{**GOOD, "race": {"b64": "%%"}}]}, 400, "field 'race' not valid base64"),
    ({"instances": [{**GOOD, "race": {"b64": "/w=="}}]}, 400, "field 'race' its base64 value is "
     "not UTF-8"),
    ({"instances": [GOOD, {**GOOD, "age": "old"}]}, 400,
     "instance 2: field 'age' must be a number"),
    ({"instances": [{**GOOD, "race": 3}]}, 400, "field 'race' must be a string"),
    ({"instances": [GOOD, {**GOOD, "race": "\ud800"}]}, 400,  # tf.constant cannot take it
     "instance 2: field 'race' not Unicode text"),
    ({"instances": [{**GOOD, "age": True}]}, 400, "field 'age' must be a number"),
    ({"instances": [{k: v for k, v in GOOD.items() if k != "gender"}]}, 400,
     "missing field 'gender'"),
    ({"instances": [{**GOOD, "fnlwgt": 1}]}, 400, "unknown field 'fnlwgt'"),
    ({"instances": [{**GOOD, "age": 1e39}]}, 400, "float32 range"),
    ({"instances": [{**GOOD, "age": 10 ** 400}]}, 400, "field 'age' is out of the float32"),
    ({"instances": [GOOD, {**GOOD, "capital_loss": -100}]}, 400,
     "instances: instance 2: field 'capital_loss' must be at least 0, got -100"),
    ({"instances": [{**GOOD, "hours_per_week": 200}]}, 400, "must be from 0 to 168"),
    ({"instances": [{**GOOD, "age": -3}]}, 400, "field 'age' must be from 0 to 150"),
    ({"inputs": {**{c: [v, v] for c, v in GOOD.items()}, "capital_gain": [0, -1]}}, 400,
     "inputs: instance 2: field 'capital_gain' must be at least 0"),
    ({"instances": [GOOD], "signature_name": "nope"}, 400, '"nope" not found'),
    ({"instances": [GOOD], "signature_name": 3}, 400, "signature_name"),
    ({"inputs": [1, 2]}, 400, "inputs must be a JSON object"),
    ({"inputs": {"age": [1, 2], "race": [" White"]}}, 400, "same number of rows"),
    ({"inputs": {"age": 1}}, 400, "list of values"),
]


@pytest.mark.parametrize("body,status,message", ERRORS, ids=range(len(ERRORS)))
def test_bad_requests_get_a_json_error_naming_the_problem(http, body, status, message):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = http.post("/v1/models/census:predict", content=content)
    assert r.status_code == status, r.text
    assert set(r.json()) == {"error"} and message in r.json()["error"], r.json()


@pytest.mark.parametrize("path,body", [
    ("/v1/models/census:predict", {"instances": [GOOD], "signature_name": ["predict"]}),
    ("/v1/models/census:classify", {"examples": [GOOD], "signature_name": {"a": 1}}),
    ("/v1/endpoints/1/deployedModels/2:predict",
     {"instances": [GOOD], "parameters": {"signature_name": ["predict"]}})])
def test_a_signature_name_that_is_not_a_string_is_a_400_on_every_route(http, path, body):
    r = http.post(path, json=body)
    assert r.status_code == 400 and r.json() == {"error": "signature_name must be a string"}, \
        r.text


@pytest.mark.parametrize("method,path,status,message", [
    ("GET", "/v1/models/other", 404, "model other"),
    ("POST", "/v1/models/other:predict", 404, "Servable not found for request: Latest(other)"),
    ("POST", "/v1/models/census/versions/7:predict", 404, "Specific(census, 7)"),
    ("GET", "/v1/models/census/versions/7", 404, "version 7"),
    ("POST", "/v1/models/census/versions/x:predict", 400, "version must be a number"),
    ("GET", "/v1/models/census/versions/x", 400, "version must be a number"),
    ("POST", "/v1/models/census:explain", 400, "Malformed request: POST /v1/models/census:explain"),
    ("POST", "/v1/models/census:regress", 400, "classifier"),
    ("GET", "/v1/models", 400, "Missing model name in request."),
    ("GET", "/v1/other", 400, "Malformed request: GET /v1/other"),
    ("GET", "/", 404, "Malformed request"),
    # version labels: TF Serving's 400 for a label it does not know (server_core.cc)
    ("GET", "/v1/models/census/labels/stable", 400, "Unrecognized servable version label: "
     "stable (census serve serves no version labels"),
    ("GET", "/v1/models/census/labels/stable/metadata", 400, "version label: stable"),
    ("POST", "/v1/models/census/labels/canary:predict", 400, "version label: canary"),
    # Vertex AI's route: its own verbs, and no signature_name beside the instances
    ("POST", "/v1/endpoints/1/deployedModels/2:explain", 400, ":predict and :rawPredict"),
])
def test_unknown_models_versions_labels_and_routes(http, method, path, status, message):
    r = http.request(method, path, json={"instances": [GOOD]})
    assert r.status_code == status and message in r.json()["error"], r.text


@pytest.mark.parametrize("method,path,allowed", [
    ("GET", "/v1/models/census:predict", "POST"), ("PUT", "/v1/models/census", "GET"),
    ("DELETE", "/v1/models/census/versions/1/metadata", "GET"),
    ("GET", "/v1/endpoints/1/deployedModels/2:predict", "POST")])
def test_a_wrong_method_is_a_405_naming_the_right_one(http, method, path, allowed):
    r = http.request(method, path)
    assert r.status_code == 405 and allowed in r.headers["allow"], r.text
    assert r.json() == {"error": f"{method} is not allowed on {path} (it takes "
                                 f"{r.headers['allow']})"}


def test_a_trailing_slash_is_the_same_route(http, local):
    assert http.get("/v1/models/census/").json() == http.get("/v1/models/census").json()
    r = http.post("/v1/models/census/versions/1:predict/", json={"instances": INSTANCES})
    close(r.json()["predictions"], local)


def test_each_refused_request_is_one_line_in_the_log(http, caplog):
    caplog.set_level(logging.WARNING, "census.serving")
    http.get("/v1/models/census/labels/stable")
    http.post("/v1/models/census:predict", json={"instances": [{**GOOD, "age": -3}]})
    lines = [r for r in caplog.records if r.name == "census.serving"]
    assert [r.getMessage().split(": ")[0] for r in lines] == [
        "refused GET /v1/models/census/labels/stable", "refused POST /v1/models/census:predict"]
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in lines)


def test_request_size_limit_413(http):
    big = json.dumps({"instances": [GOOD] * 5000}).encode()  # ≈ 1.7 MB
    assert len(big) > protocol.MAX_REQUEST_BYTES
    r = http.post("/v1/models/census:predict", content=big)
    assert r.status_code == 413 and "limit" in r.json()["error"]

    def chunks():  # no Content-Length: the limit is checked on the bytes received
        for i in range(0, len(big), 65536):
            yield big[i:i + 65536]
    r = http.post("/v1/models/census:predict", content=chunks())
    assert r.status_code == 413 and "limit" in r.json()["error"]
    assert http.post("/v1/models/census:predict", json={"instances": [GOOD] * 3000}
                     ).status_code == 200  # ≈ 1 MB: under the limit


def test_one_bad_request_in_a_batch_fails_alone(server, local):
    """Concurrent requests share model calls; a bad one gets its 400, the rest their answers."""
    async def go():
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
            bodies = [{"instances": INSTANCES}] * 20 + [
                {"instances": [{**GOOD, "age": "x"}]},
                {"instances": [GOOD, {**GOOD, "capital_loss": -100}]}]
            return await asyncio.gather(*(c.post("/v1/models/census:predict", json=b)
                                          for b in bodies))
    replies = asyncio.run(go())
    assert [r.status_code for r in replies] == [200] * 20 + [400, 400]
    assert "instance 2: field 'capital_loss'" in replies[-1].json()["error"]
    for r in replies[:20]:
        close(r.json()["predictions"], local)


def test_a_request_that_breaks_the_model_fails_alone(tmp_path):
    """Should a checked request still make a model fail, the requests that share its model
    call are answered all the same: here a real export that fails for an age over 100."""
    import tensorflow as tf
    import tf_keras as keras

    from census import export, model as census_model
    inputs = census_model.raw_inputs()
    picky = keras.layers.Lambda(lambda age: tf.debugging.check_numerics(
        tf.math.log(100.0 - age[:, None]), "age over 100"))(inputs["age"])
    path = export.export_model(keras.Model(inputs, picky), str(tmp_path))
    version = versions.load_version(path)
    jobs = [batching.Job(version, "serving_default", "JSON", [{**GOOD, "age": age}], "instances",
                        lambda out: {"predictions": predict.rows(out)})
            for age in (30, 120, 40)]
    good, broken, other = batching.run_batch(jobs)
    assert isinstance(broken, protocol.ServingError) and broken.status == 500
    assert "age over 100" in broken.message
    for reply, age in ((good, 30), (other, 40)):
        logits = json.loads(reply)["predictions"][0]["logits"]
        np.testing.assert_allclose(logits, [np.log(100.0 - age)], rtol=1e-5)


# --- versions -----------------------------------------------------------------------------

def test_waits_for_a_version_then_loads_new_ones_and_pins(export_dir, tmp_path, local):
    base = tmp_path / "export" / "census"
    base.mkdir(parents=True)
    with serving_process.BackgroundServer(base, poll_seconds=0.1, wait=False,
                                          keep_versions=2) as s, \
            httpx.Client(base_url=s.url, timeout=30) as c:
        wait_for(lambda: s.server.started, what="server start")
        r = c.post("/v1/models/census:predict", json={"instances": INSTANCES})
        assert r.status_code == 503 and r.json()["error"] == (
            f"model census has no version loaded yet: waiting for {base}/<version>/saved_model.pb")
        assert c.get("/v1/models/census").status_code == 503

        (base / "notes").mkdir()  # not a version
        half = base / "5"  # a half-written version: no saved_model.pb yet
        shutil.copytree(export_dir / "variables", half / "variables")
        broken = base / "6"  # a version whose saved_model.pb is garbage
        broken.mkdir()
        (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
        publish(export_dir, base, 3)
        wait_for(lambda: s.watcher.latest() is not None and 6 in s.watcher.retrying(),
                 what="version 3 serving, 6 tried")
        assert s.watcher.latest().number == 3  # the newest that loads serves
        status = {v["version"]: v for v in c.get("/v1/models/census").json()[
            "model_version_status"]}
        assert status["3"]["state"] == "AVAILABLE" and "5" not in status
        # 6 is tried again (when its files change, else every 30 s at most): never given up
        assert status["6"]["state"] == "LOADING" and status["6"]["status"]["error_message"]
        close(c.post("/v1/models/census:predict", json={"instances": INSTANCES}).json()[
            "predictions"], local)

        publish(export_dir, base, 7)
        wait_for(lambda: s.watcher.latest().number == 7, what="version 7")
        assert c.get("/v1/models/census/metadata").json()["model_spec"]["version"] == "7"
        for v in ("3", "7"):  # the previous version stays loaded and can be pinned
            r = c.post(f"/v1/models/census/versions/{v}:predict", json={"instances": INSTANCES})
            assert r.status_code == 200, r.text
        publish(export_dir, base, 8)
        wait_for(lambda: s.watcher.latest().number == 8, what="version 8")
        wait_for(lambda: s.watcher.get(3) is None, what="3 unloaded")
        r = c.post("/v1/models/census/versions/3:predict", json={"instances": INSTANCES})
        assert r.status_code == 404  # only the newest two stay loaded
        assert s.watcher.status()[3][0] == "END"
        wait_for(lambda: s.watcher.status()[6][0] == "END", what="6 older than what serves")
        assert not s.watcher.retrying()

        # a version copied in pieces, saved_model.pb first (gsutil cp, cp -r), while serving
        pieces = base / "9"
        pieces.mkdir()
        shutil.copy2(export_dir / "saved_model.pb", pieces)
        wait_for(lambda: 9 in s.watcher.retrying(), what="9 tried")
        r = c.post("/v1/models/census/versions/9:predict", json={"instances": INSTANCES})
        assert r.status_code == 404 and s.watcher.status()[9][0] == "LOADING"
        copy_the_rest(export_dir, pieces)
        wait_for(lambda: s.watcher.get(9) is not None, what="9 loaded without a restart")
        close(c.post("/v1/models/census/versions/9:predict", json={"instances": INSTANCES})
              .json()["predictions"], local)


def test_by_default_only_the_newest_version_stays_loaded(export_dir, tmp_path):
    """TF Serving's default policy, `latest { num_versions: 1 }`: once version 2 serves,
    version 1 is unloaded and pinning it is a 404."""
    base = tmp_path / "export" / "census"
    publish(export_dir, base, 1)
    with serving_process.BackgroundServer(base, poll_seconds=0.1) as s, \
            httpx.Client(base_url=s.url, timeout=30) as c:
        assert c.post("/v1/models/census/versions/1:predict",
                      json={"instances": INSTANCES}).status_code == 200
        publish(export_dir, base, 2)
        wait_for(lambda: s.watcher.latest().number == 2, what="version 2")
        wait_for(lambda: s.watcher.get(1) is None, what="1 unloaded")
        r = c.post("/v1/models/census/versions/1:predict", json={"instances": INSTANCES})
        assert r.status_code == 404 and s.watcher.status()[1][0] == "END"


def copy_the_rest(export_dir, version_dir):
    """Everything of an export but saved_model.pb (copied first, as gsutil cp does)."""
    for item in export_dir.iterdir():
        if item.is_dir():
            shutil.copytree(item, version_dir / item.name)
        elif item.name != "saved_model.pb":
            shutil.copy2(item, version_dir)


def test_a_version_in_pieces_is_tried_when_its_files_change_and_logged_once(export_dir,
                                                                             tmp_path, caplog):
    """The watcher's own polls, one at a time (no thread, no clock): a version without its
    variables fails, is not tried again while its files stay as they were (a back-off of an
    hour here), and loads once they change; one log line for each change of state, not for
    each attempt."""
    caplog.set_level(logging.INFO, "census.serving")
    base = tmp_path / "census"
    base.mkdir()
    watcher = versions.ModelWatcher(base, poll_seconds=3600, max_retry_seconds=3600)
    watcher.poll()
    (base / "4").mkdir()
    shutil.copy2(export_dir / "saved_model.pb", base / "4")
    for _ in range(3):
        watcher.poll()
    assert watcher.latest() is None and watcher.retrying()[4].failures == 1
    state, error = watcher.status()[4]
    assert state == "LOADING" and "variables" in error
    assert watcher.not_serving() == (f"version 4 did not load yet ({error}); it is tried again "
                                     "when its files change")  # what a 503 says meanwhile
    copy_the_rest(export_dir, base / "4")
    watcher.poll()
    assert watcher.latest().number == 4 and watcher.status() == {4: ("AVAILABLE", "")}
    said = [r.getMessage() for r in caplog.records if r.name == "census.serving"]
    assert len(said) == 3, said
    assert said[0] == ("model census has no version yet: waiting for "
                       f"{base}/<version>/saved_model.pb")
    assert said[1].startswith("version 4 of census did not load (") and "variables" in said[1]
    assert said[2] == "version 4 of census loaded at last: serving it"


def test_a_failed_version_is_tried_again_after_its_back_off(export_dir, tmp_path, caplog):
    """Files unchanged, a failed version is tried again once its back-off is over (none
    here), and logged once however often it fails."""
    caplog.set_level(logging.INFO, "census.serving")
    (tmp_path / "2").mkdir()
    shutil.copy2(export_dir / "saved_model.pb", tmp_path / "2")
    watcher = versions.ModelWatcher(tmp_path, poll_seconds=3600, max_retry_seconds=0)
    for _ in range(3):
        watcher.poll()
    assert watcher.retrying()[2].failures == 3 and watcher.status()[2][0] == "LOADING"
    assert len([r for r in caplog.records if "did not load" in r.getMessage()]) == 1


def test_a_savedmodel_directory_as_base_path_is_version_1(export_dir, local, caplog):
    """What Vertex AI's artifact_uri names: one SavedModel directory, served as version 1."""
    caplog.set_level(logging.WARNING, "census.serving")
    with serving_process.BackgroundServer(export_dir, poll_seconds=0.2) as s, \
            httpx.Client(base_url=s.url, timeout=30) as c:
        close(c.post("/v1/models/census/versions/1:predict", json={"instances": INSTANCES})
              .json()["predictions"], local)
        assert c.get("/v1/models/census").json()["model_version_status"][0]["version"] == "1"
    said = [r.getMessage() for r in caplog.records if r.name == "census.serving"]
    assert said == [f"{export_dir} is a SavedModel directory: serving it as version 1 of census"]


def test_a_base_path_of_the_wrong_shape_is_refused_at_start_up(export_dir, tmp_path):
    """One sentence, before anything listens: never a server that answers 503 forever."""
    job = tmp_path / "job"  # given instead of its export base directory
    (job / "export" / "census" / "1").mkdir(parents=True)
    (job / "export" / "census" / "1" / "saved_model.pb").touch()
    (job / "checkpoints").mkdir()
    cases = {str(tmp_path / "no" / "such"): "no directory",
             str(export_dir / "saved_model.pb"): "is a file, not a directory",
             str(job): f"holds no numbered version directories and no saved_model.pb "
                       f"(expected the export base directory, JOB_DIR/export/census, or a "
                       f"SavedModel directory); did you mean {job}/export/census"}
    for path, words in cases.items():
        with pytest.raises(SystemExit) as exit:
            cli.main(["serve", "--model-base-path", path])
        message = str(exit.value.code)
        assert message.startswith("census serve: ") and words in message, message
        assert "\n" not in message


def test_an_export_being_staged_is_not_a_base_path_of_the_wrong_shape(tmp_path):
    """`export.publish` stages a version in a hidden folder inside the base directory (on
    the target's own file system): a server started meanwhile waits for versions."""
    (tmp_path / "census" / f"{export.STAGING_PREFIX}x1" / "version").mkdir(parents=True)
    assert versions.layout(tmp_path / "census") == "versions"


def test_no_request_fails_across_a_reload_under_load(server, base, export_dir):
    """8 clients keep sending while a new version is published and loaded, however long that
    takes on a busy machine, and for one more second after it serves: every request must
    succeed. (A fixed 4 s of load once ended before a loaded machine switched.)"""
    url = server.url + client.predict_path()
    rounds = []

    def keep_loading():  # 1-s rounds until a whole round ran after the switch (at most 90 s)
        switched, deadline = False, time.monotonic() + 90
        while time.monotonic() < deadline:
            rounds.append(client.load(url, {"instances": INSTANCES}, concurrency=8, seconds=1,
                                      max_requests=20000))
            if switched:
                return
            switched = server.watcher.latest().number == 2
    runner = threading.Thread(target=keep_loading)
    runner.start()
    time.sleep(1)
    publish(export_dir, base, 2)
    runner.join(timeout=120)
    assert server.watcher.latest().number == 2 and len(rounds) >= 2  # it switched during the run
    statuses = collections.Counter()
    for r in rounds:
        statuses.update(r["statuses"])
    assert sum(statuses.values()) > 100
    assert statuses == {200: sum(statuses.values())}, [r["errors"] for r in rounds]
    assert server.batcher.calls < server.batcher.batched_requests  # requests were batched


# --- fuzz ---------------------------------------------------------------------------------

def malformed_bodies(n, seed=2017):
    """Broken JSON, wrong shapes, wrong types, missing and unknown fields, odd values."""
    rng = random.Random(seed)
    good = json.dumps({"instances": INSTANCES}).encode()
    odd_values = [None, True, [], {}, "", " ", "x" * 1000, -1, 0, 1e308, -1e39, 10 ** 50, 3.5,
                  [1], {"a": 1}, "\u0000", "é", "?", 2 ** 63]
    for i in range(n):
        kind = i % 10
        if kind == 0:  # bytes cut or flipped
            b = bytearray(good)
            for _ in range(rng.randint(1, 5)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            yield bytes(b[:rng.randrange(1, len(b))]) if rng.random() < 0.5 else bytes(b)
        elif kind == 1:  # a field with an odd value
            inst = dict(rng.choice(INSTANCES))
            inst[rng.choice(list(inst))] = rng.choice(odd_values)
            yield json.dumps({"instances": [inst]}).encode()
        elif kind == 2:  # a missing field, an unknown one
            inst = dict(rng.choice(INSTANCES))
            del inst[rng.choice(list(inst))]
            if rng.random() < 0.5:
                inst[rng.choice(["fnlwgt", "Age", "", "income_bracket"])] = 1
            yield json.dumps({"instances": [inst]}).encode()
        elif kind == 3:  # wrong top-level shapes
            yield json.dumps(rng.choice([
                {"instances": rng.choice(odd_values)}, {"inputs": rng.choice(odd_values)},
                {"signature_name": rng.choice(odd_values), "instances": INSTANCES},
                {"instances": [rng.choice(odd_values)]}, rng.choice(odd_values),
                {"inputs": {"age": [1], "race": rng.choice(odd_values)}}])).encode()
        elif kind == 4:  # deep nesting
            depth = rng.choice([10, 1000, 100000])
            yield b'{"instances": ' + b"[" * depth + b"]" * depth + b"}"
        elif kind == 5:  # random bytes
            yield bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
        elif kind == 6:  # columnar with ragged or wrong columns
            inputs = {c: [i[c] for i in INSTANCES] for c in schema.INPUT_COLUMNS}
            column = rng.choice(list(inputs))
            inputs[column] = rng.choice([inputs[column][:1], [], [None, None], "x"])
            yield json.dumps({"inputs": inputs}).encode()
        elif kind == 7:  # valid JSON, wrong keys
            yield json.dumps({rng.choice(["instance", "Instances", "examples", "input"]):
                              INSTANCES}).encode()
        elif kind == 8:  # classify's own fields, odd
            yield json.dumps({"examples": rng.choice([INSTANCES, rng.choice(odd_values)]),
                              "context": rng.choice(odd_values + [{"age": 30}]),
                              "signature_name": rng.choice(odd_values + ["predict"])}).encode()
        else:  # Vertex AI's own fields, odd
            yield json.dumps({"instances": INSTANCES, "parameters": rng.choice(
                odd_values + [{"signature_name": rng.choice(odd_values)}])}).encode()


def test_fuzz_malformed_requests_never_break_the_server(server, local):
    paths = ["/v1/models/census:predict", "/v1/models/census:classify",
             "/v1/endpoints/1/deployedModels/2:predict"]
    bodies = list(malformed_bodies(2400))

    async def go():
        limits = httpx.Limits(max_connections=8)
        async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as c:
            gate = asyncio.Semaphore(8)

            async def send(i, body):
                async with gate:
                    return await c.post(paths[i % len(paths)], content=body)
            return await asyncio.gather(*(send(i, b) for i, b in enumerate(bodies)))
    replies = asyncio.run(go())
    statuses = {}
    for body, r in zip(bodies, replies):
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        assert r.status_code in (200, 400), (body[:200], r.status_code, r.text[:300])
        assert r.status_code == 200 or "error" in r.json(), (body[:200], r.text[:300])
    assert statuses[400] > 2000
    r = httpx.post(server.url + "/v1/models/census:predict", json={"instances": INSTANCES})
    close(r.json()["predictions"], local)


# --- the process and the client -----------------------------------------------------------

@pytest.fixture(scope="module")
def serve_process(base):
    """`census serve` as its own process (on a free port), for the tests of the process and of
    the command line; its URL. It stops cleanly at the end: uvicorn shuts down on SIGTERM,
    then re-raises the signal (-15 is a clean exit)."""
    port = processes.free_port()
    proc = serving_process.start_process(base, port=port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        assert serving_process.stop_process(proc) in (0, -15)


def test_serve_process_and_client_table(serve_process, export_dir):
    """`census serve` as its own process, and `predict_url` against it prints the same table
    as local prediction."""
    url = serve_process
    remote = client.predict_url(url, INSTANCES)
    local_outputs = predict.predict(str(export_dir), INSTANCES)
    assert predict.format_table(remote) == predict.format_table(local_outputs)
    with pytest.raises(predict.PredictError, match="HTTP 404: .*Latest\\(other\\)"):
        client.predict_url(url, INSTANCES, model="other")
    table = predict.format_table(local_outputs)
    [serving] = httpx.get(f"{url}/v1/models/census").json()["model_version_status"]  # one kept
    for where, signature_name in [("/v1/endpoints/1/deployedModels/2:predict", None),
                                  ("/v1/endpoints/1/deployedModels/2:predict", "predict"),
                                  ("/v1/endpoints/1/deployedModels/2:rawPredict", None),
                                  ("/v1/models/census", "predict"),  # census serve's line
                                  (f"/v1/models/census/versions/{serving['version']}/", None)]:
        outputs = client.predict_url(url + where, INSTANCES, signature=signature_name)
        assert predict.format_table(outputs) == table, where


def test_census_serve_and_census_predict_url_cli(serve_process, export_dir, capsys):
    """`census predict --url` (the command, a process of its own) prints what `census predict
    --model-dir` prints (the same `main`, in this process: no second TensorFlow start-up)."""
    cli.main(["predict", "--model-dir", str(export_dir), "--json-instances",
              str(REPO / "test.json")])
    local_out = capsys.readouterr().out
    done = run_census("predict", "--url", serve_process, "--json-instances", "test.json")
    assert done.returncode == 0, done.stderr
    assert done.stdout == local_out and done.stdout.startswith("CLASS_IDS")
    vertex = run_census("predict", "--url", f"{serve_process}/v1/endpoints/1/"
                        "deployedModels/2:predict", "--json-instances", "test.json")
    assert vertex.returncode == 0 and vertex.stdout == local_out, vertex.stderr


@pytest.mark.parametrize("url,words", [
    ("127.0.0.1:8501", "--url takes an http:// or https:// URL, got '127.0.0.1:8501'"),
    ("http://h/v1/models/census:classify", "http://h/v1/models/census:classify names "
     ":classify, but census predict sends :predict requests (the table shows every output)"),
    ("http://h/v1/endpoints/1:explain", "sends :predict or :rawPredict requests"),
    ("http://h/predict", "cannot tell which API http://h/predict speaks: give the server's "
     "address"),
    ("http://h/v1/models/census:predict/v1/models/census:predict", "names :predict/v1/"),
])
def test_the_client_refuses_a_url_it_cannot_use_in_one_sentence(url, words):
    with pytest.raises(predict.PredictError) as error:
        client.predict_url(url, INSTANCES)
    assert words in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("url,target,dialect", [
    ("http://h:1", "http://h:1/v1/models/census:predict", "TF Serving"),
    ("http://h:1/v1/models/census/", "http://h:1/v1/models/census:predict", "TF Serving"),
    ("http://h:1/v1/models/census/versions/3:predict", None, "TF Serving"),
    ("http://h:1/v1/endpoints/1/deployedModels/2", "http://h:1/v1/endpoints/1/deployedModels/2"
     ":predict", "Vertex AI"),
    ("https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/"
     "endpoints/123:predict", None, "Vertex AI"),
])
def test_the_client_speaks_each_routes_dialect(url, target, dialect):
    assert client.route(url) == (target or url, dialect)
    body = client.request_body(INSTANCES, dialect, "predict")
    assert body == ({"instances": INSTANCES, "signature_name": "predict"} if dialect ==
                    "TF Serving" else
                    {"instances": INSTANCES, "parameters": {"signature_name": "predict"}})
    assert client.request_body(INSTANCES, dialect, "serving_default") == {"instances": INSTANCES}


def test_server_process_stops_with_its_parent(base, tmp_path):
    """A server started from a notebook must not outlive the kernel, even one that dies."""
    import subprocess
    import sys
    port = processes.free_port()
    script = (f"import os; from census.serving import process; "
              f"p = process.start_process({str(base)!r}, port={port}, "
              f"log_path={str(tmp_path / 'serve.log')!r}); print(p.pid, flush=True); os._exit(0)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=180, cwd=REPO)
    pid = int(done.stdout.split()[-1])

    def gone():
        try:
            state = open(f"/proc/{pid}/status").read().split("State:")[1].split()[0]
        except (FileNotFoundError, IndexError):
            return True
        return state in ("Z", "X")
    wait_for(gone, timeout=30, what="the orphaned server to stop")
    assert "census serve: model census" in (tmp_path / "serve.log").read_text()


# --- every export format, and TF Serving's REST API section by section ---------------------

@pytest.fixture(scope="module")
def by_format(exports):
    """A server for the CSV and EXAMPLE exports too (one version each, under other names)."""
    rows = [", ".join("189778" if c == "fnlwgt" else str(i[c]).strip()
                      for c in signature.CSV_FIELDS)
            for i in INSTANCES]
    servers = {fmt: serving_process.BackgroundServer(exports[fmt], poll_seconds=0.2)
               for fmt in ("CSV", "EXAMPLE")}
    yield servers, rows
    for s in servers.values():
        s.stop()


def b64(data):
    import base64
    return {"b64": base64.b64encode(data).decode()}


def test_a_csv_export_is_served_rows(by_format, local):
    servers, rows = by_format
    url = servers["CSV"].url + "/v1/models/census:predict"
    close(httpx.post(url, json={"instances": rows}).json()["predictions"], local)
    close(httpx.post(url, json={"instances": [b64(r.encode()) for r in rows]}).json()[
        "predictions"], local)
    columns = httpx.post(url, json={"inputs": rows}).json()["outputs"]
    named = {signature.SINGLE_INPUT["CSV"]: rows}
    assert columns == httpx.post(url, json={"inputs": named}).json()["outputs"]
    # TF Serving's row format names a one-input signature's input, or not (json_tensor.cc)
    for instances in ([{"csv_row": r} for r in rows], [{"csv_row": b64(r.encode())} for r in rows]):
        close(httpx.post(url, json={"instances": instances}).json()["predictions"], local)
    vertex = servers["CSV"].url + "/v1/endpoints/1/deployedModels/2:predict"
    close(httpx.post(vertex, json={"instances": [{"csv_row": r} for r in rows]}).json()[
        "predictions"], local)
    bad = httpx.post(url, json={"instances": [rows[0], rows[1].replace(" 40,", " 400,", 1)]})
    assert bad.status_code == 400 and "instance 2: field 'hours_per_week'" in bad.json()["error"]
    wrong = httpx.post(url, json={"instances": INSTANCES})
    assert wrong.status_code == 400 and "(CSV format) takes a CSV row" in wrong.json()["error"]
    classify = httpx.post(servers["CSV"].url + "/v1/models/census:classify",
                          json={"examples": INSTANCES})
    assert classify.status_code == 400 and "use :predict" in classify.json()["error"]


def test_rows_the_csv_export_refuses_are_a_400_and_one_log_line(by_format, caplog):
    """Issue 19: rows that passed the checks made DecodeCSV fail, a 500 with TF's node text
    and a 30-line traceback in the log per request. Now the export's own op is the check: a
    400 naming the instance, one log line per refused request, no traceback."""
    servers, rows = by_format
    path = "/v1/models/census:predict"
    bad = {rows[1] + "\r\n": "Unquoted fields cannot have quotes/CRLFs inside",
           rows[1].replace(", ", ', x"', 1): "Unquoted fields cannot have quotes",
           "\ufeff" + rows[1]: r"field 'age' is not a valid float: '\ufeff",
           "١٢" + rows[1][2:]: "field 'age' is not a valid float: '١٢'",
           rows[1].rsplit(",", 1)[0]: "13 fields instead of 14",
           rows[1].rsplit(",", 4)[0] + ", 1e39, 0, 40, United-States":
               "field 'capital_gain' is out of the float32 range"}
    with caplog.at_level(logging.WARNING, logger="census.serving"):
        for row, words in bad.items():
            r = httpx.post(servers["CSV"].url + path, json={"instances": [rows[0], row]})
            assert r.status_code == 400, r.text
            assert r.json()["error"].startswith(f"instances: instance 2: {words}"), r.text
            assert "{{" not in r.text and "[Op:" not in r.text
    lines = [record for record in caplog.records if path in record.getMessage()]
    assert len(lines) == len(bad), [record.getMessage() for record in lines]
    for record in lines:
        message = record.getMessage()
        assert "400 instances: instance 2: " in message and "\n" not in message
    assert not [record for record in caplog.records if record.exc_info]


def test_an_example_export_is_served_b64_examples_and_classify(by_format, local):
    from census import instances
    servers, _ = by_format
    base = servers["EXAMPLE"].url + "/v1/models/census"
    examples = [instances.to_example(instances.check_fields(n, i))
                for n, i in enumerate(INSTANCES, 1)]
    close(httpx.post(base + ":predict", json={"instances": [b64(e) for e in examples]}).json()[
        "predictions"], local)
    results = httpx.post(base + ":classify", json={"examples": INSTANCES}).json()["results"]
    np.testing.assert_allclose([[s for _, s in r] for r in results],
                               [row["probabilities"] for row in local], rtol=1e-5)
    raw = httpx.post(base + ":predict", json={"instances": [{"b64": "bm90IGFuIGV4YW1wbGU="}]})
    assert raw.status_code == 400 and "instance 1:" in raw.json()["error"]
    named = [{"examples": b64(e)} for e in examples]
    close(httpx.post(base + ":predict", json={"instances": named}).json()["predictions"], local)


def test_classify_follows_tf_serving(http, local):
    """A feature may be given in `context` or in an example, not both; a one-value list is
    the value (tf.Example features are lists)."""
    as_lists = [{k: [v] for k, v in i.items()} for i in INSTANCES]
    r = http.post("/v1/models/census:classify", json={"examples": as_lists})
    np.testing.assert_allclose([[s for _, s in res] for res in r.json()["results"]],
                               [row["probabilities"] for row in local], rtol=1e-5)
    both = http.post("/v1/models/census:classify",
                     json={"context": {"race": " White"}, "examples": INSTANCES})
    assert both.status_code == 400 and "'race' is also in the context" in both.json()["error"]


def test_binary_strings_come_as_b64_as_in_tf_serving(http, local):
    """api_rest.md, "Encoding binary values": {"b64": …} wherever a string goes."""
    import base64
    encoded = [{k: b64(v.encode()) if isinstance(v, str) else v for k, v in i.items()}
               for i in INSTANCES]
    close(http.post("/v1/models/census:predict", json={"instances": encoded}).json()[
        "predictions"], local)
    assert base64.b64decode(encoded[0]["workclass"]["b64"]) == INSTANCES[0]["workclass"].encode()


# --- every error reaches every ordinary client, as JSON ------------------------------------

BIG = json.dumps({"instances": [GOOD] * 6000}).encode()  # ≈ 2 MB, over the 1.5 MB limit


def curl(url, body, *headers):
    import subprocess
    done = subprocess.run(["curl", "-sS", "-X", "POST", "-H", "Content-Type: application/json",
                           *[a for h in headers for a in ("-H", h)], "--data-binary", "@-",
                           "-w", "\n%{http_code}", url], input=body, capture_output=True,
                          timeout=60)
    text, _, code = done.stdout.decode().rpartition("\n")
    return int(code or 0), text


def requests_post(url, body):
    import requests
    r = requests.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=60)
    return r.status_code, r.text


def httpx_post(url, body):
    r = httpx.post(url, content=body, headers={"Content-Type": "application/json"}, timeout=60)
    return r.status_code, r.text


def urllib_post(url, body):
    import urllib.error
    import urllib.request
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def course_client(url, body):
    try:
        client.predict_url(url, json.loads(body)["instances"])
        return 200, ""
    except predict.PredictError as e:
        if "HTTP " not in str(e):  # refused before it is sent: the client's own sentence
            return None, str(e)
        status = int(str(e).split("HTTP ")[1].split(":")[0])
        return status, json.dumps({"error": str(e).split(": ", 2)[-1]})


CLIENTS = {"curl": curl, "curl, no Expect": lambda u, b: curl(u, b, "Expect:"),
           "requests": requests_post, "httpx": httpx_post, "urllib": urllib_post,
           "census client": course_client}


@pytest.mark.parametrize("name", CLIENTS)
def test_every_client_sees_the_servers_error_for_a_big_body(server, name):
    """Refused before its body is read (413 from Content-Length, 400 for an unknown verb), a
    request still gets its JSON error, not a broken pipe: five times over, for each client."""
    send = CLIENTS[name]
    for attempt in range(5):
        status, text = send(server.url + "/v1/models/census:predict", BIG)
        assert status == 413 and "over the limit" in text, (attempt, status, text[:200])
        status, text = send(server.url + "/v1/models/census:explain", BIG)
        if name == "census client":  # it sends :predict requests only, and says so
            assert status is None and "names :explain" in text, text
        else:
            assert status == 400 and "Malformed request" in text, (attempt, status, text[:200])
    assert send(server.url + "/v1/models/census:predict",
                json.dumps({"instances": INSTANCES}).encode())[0] == 200


def test_the_deliberate_differences_are_listed_in_help_and_chapter_9():
    import nbformat
    done = run_census("serve", "--help")
    said = " ".join(done.stdout.split())
    chapter = nbformat.read(REPO / "notebooks" / "09_online_prediction.ipynb", as_version=4)
    prose = " ".join(" ".join(c.source for c in chapter.cells if c.cell_type == "markdown").split())
    for difference in protocol.DIFFERENCES:
        assert " ".join(difference.split()) in said and difference in prose, difference


def test_a_bad_aip_http_port_is_one_sentence(base):
    done = run_census("serve", "--model-base-path", base, env={"AIP_HTTP_PORT": "http"})
    assert done.returncode == 1 and done.stderr.strip().splitlines()[-1] == (
        "census serve: $AIP_HTTP_PORT must be a whole number from 1 to 65535, got 'http'")
