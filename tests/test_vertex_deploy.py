"""Vertex AI deployment (census.vertex_deploy): the real google-cloud-aiplatform SDK, sent to a
local recorder of the Vertex REST API on 127.0.0.1 that answers with minimal valid replies
(long-running operations come back done)."""
import json

import pytest

from census.course.vertex_recorder import VertexRecorder
from census.serving import vertex as vertex_endpoint
from conftest import REPO

INSTANCES = [json.loads(line) for line in (REPO / "test.json").read_text().splitlines() if line]
PARENT = "projects/course-project/locations/us-central1"
PREDICTIONS = [{"classes": [" <=50K"], "probabilities": [0.9, 0.1]},
               {"classes": [" >50K"], "probabilities": [0.2, 0.8]}]


@pytest.fixture
def recorder():
    with VertexRecorder() as vertex:
        def predict(request):  # the endpoint's first deployed model answers
            endpoint = vertex.resources[request["path"].removeprefix("/v1/").split(":")[0]]
            deployed = endpoint["deployedModels"][0]
            return 200, {"predictions": PREDICTIONS[:len(request["body"]["instances"])],
                         "deployedModelId": deployed["id"], "model": deployed["model"],
                         "modelVersionId": "1"}
        vertex.respond("POST", r"/endpoints/\d+:predict$", predict)
        yield vertex


def test_upload_deploy_predict_and_clean_up(recorder):
    from google.auth.credentials import AnonymousCredentials
    result = vertex_endpoint.run("gs://course-bucket/job/export/census/1795640000", INSTANCES,
                               project="course-project", credentials=AnonymousCredentials(),
                               api_endpoint=recorder.endpoint, api_transport="rest")
    calls = [(r["method"], r["path"].removeprefix(f"/v1/{PARENT}")) for r in recorder.requests
             if r["method"] != "GET"]
    model_id = result["model"].rsplit("/", 1)[1]
    endpoint_id = result["endpoint"].rsplit("/", 1)[1]
    assert calls == [
        ("POST", "/models:upload"),
        ("POST", "/endpoints"),
        ("POST", f"/endpoints/{endpoint_id}:deployModel"),
        ("POST", f"/endpoints/{endpoint_id}:predict"),
        ("POST", f"/endpoints/{endpoint_id}:undeployModel"),
        ("DELETE", f"/endpoints/{endpoint_id}"),
        ("DELETE", f"/models/{model_id}"),
    ]
    bodies = {r["path"].rsplit("/", 1)[-1]: r["body"] for r in recorder.find("POST")}
    upload = bodies["models:upload"]["model"]
    assert upload["artifactUri"] == "gs://course-bucket/job/export/census/1795640000"
    assert upload["containerSpec"]["imageUri"] == vertex_endpoint.PREDICTION_IMAGE
    assert upload["displayName"] == "census"
    deployed = bodies[f"{endpoint_id}:deployModel"]["deployedModel"]
    assert deployed["model"] == f"{PARENT}/models/{model_id}@1"  # version 1 of the model
    assert deployed["dedicatedResources"]["machineSpec"]["machineType"] == "n1-standard-2"
    assert deployed["dedicatedResources"]["minReplicaCount"] == 1
    assert bodies[f"{endpoint_id}:predict"] == {"instances": INSTANCES}  # test.json as is
    assert result["predictions"] == PREDICTIONS
    assert result["deployed_model_id"] == bodies[f"{endpoint_id}:undeployModel"][
        "deployedModelId"]
    assert bodies[f"{endpoint_id}:deployModel"]["trafficSplit"] == {"0": 100}
    assert not recorder.resources  # nothing left behind
    assert set(recorder.deleted) == {result["model"], result["endpoint"]}


def test_clean_up_even_when_predict_fails(recorder, monkeypatch):
    from google.auth.credentials import AnonymousCredentials

    def broken(endpoint, instances):
        raise RuntimeError("prediction failed")
    monkeypatch.setattr(vertex_endpoint, "predict", broken)
    with pytest.raises(RuntimeError, match="prediction failed"):
        vertex_endpoint.run("gs://course-bucket/m/1", INSTANCES, project="course-project",
                          credentials=AnonymousCredentials(), api_endpoint=recorder.endpoint,
                          api_transport="rest")
    assert not recorder.resources


def test_guarded_without_a_project(monkeypatch, capsys):
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    assert vertex_endpoint.run("gs://b/m/1", INSTANCES, project="") is None
    assert "skipped" in capsys.readouterr().out
    with pytest.raises(ValueError, match="gs://"):
        vertex_endpoint.run("/local/dir", INSTANCES, project="p")
