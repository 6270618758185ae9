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


def test_a_second_version_rolled_out_promoted_and_cleaned_up(recorder):
    """Version 2 of the same model deployed beside version 1 with 20% of the traffic
    (`roll_out`), then promoted (the `default` alias and all the traffic; version 1
    undeployed), then everything deleted: what the real SDK sent, and what the stand-in
    holds after each step."""
    from google.auth.credentials import AnonymousCredentials
    vertex_endpoint.init("course-project", credentials=AnonymousCredentials(),
                         api_endpoint=recorder.endpoint, api_transport="rest")
    first = vertex_endpoint.upload("gs://course-bucket/census/1")
    endpoint = vertex_endpoint.deploy(first)
    second = vertex_endpoint.roll_out(first, "gs://course-bucket/census/2", endpoint, 20)
    model = first.resource_name
    assert (second.resource_name, second.version_id) == (model, "2")
    [upload] = [r["body"] for r in recorder.find("POST", "/models:upload")
                if r["body"].get("parentModel")]
    assert upload["parentModel"] == model
    assert upload["model"]["versionAliases"] == ["candidate"]  # `default` stays on 1
    aliases = {v["versionId"]: v["versionAliases"] for v in recorder.versions[model].values()}
    assert aliases == {"1": ["default"], "2": ["candidate"]}
    ids = {d["modelVersionId"]: d["id"] for d in recorder.resources[endpoint.resource_name][
        "deployedModels"]}
    assert recorder.resources[endpoint.resource_name]["trafficSplit"] == {ids["1"]: 80,
                                                                         ids["2"]: 20}
    deploys = [r["body"] for r in recorder.find("POST", ":deployModel")]
    assert deploys[1]["deployedModel"]["model"] == f"{model}@2"
    assert deploys[1]["trafficSplit"] == {ids["1"]: 80, "0": 20}
    for body in deploys:
        resources = body["deployedModel"]["dedicatedResources"]
        assert (resources["minReplicaCount"], resources["maxReplicaCount"]) == (1, 2)

    vertex_endpoint.promote(endpoint, first, "2")
    aliases = {v["versionId"]: v["versionAliases"] for v in recorder.versions[model].values()}
    assert aliases == {"1": [], "2": ["candidate", "default"]}
    assert recorder.resources[model]["versionId"] == "2"  # `models/M` is the default version
    held = recorder.resources[endpoint.resource_name]
    assert held["trafficSplit"] == {ids["2"]: 100}
    assert [d["id"] for d in held["deployedModels"]] == [ids["2"]]
    with pytest.raises(ValueError, match="version 1 is not deployed"):
        vertex_endpoint.promote(endpoint, first, "1")

    vertex_endpoint.clean_up(first, endpoint)
    assert not recorder.resources and not recorder.versions
    assert {model, endpoint.resource_name} <= set(recorder.deleted)


def test_the_stand_in_refuses_what_vertex_refuses(recorder):
    """A split that does not add up to 100, deleting a deployed model or the default
    version, taking the `default` alias away: the service's errors (HTTP 400), raised by
    the SDK."""
    from google.api_core import exceptions
    from google.auth.credentials import AnonymousCredentials
    vertex_endpoint.init("course-project", credentials=AnonymousCredentials(),
                         api_endpoint=recorder.endpoint, api_transport="rest")
    first = vertex_endpoint.upload("gs://course-bucket/census/1")
    endpoint = vertex_endpoint.deploy(first)
    second = vertex_endpoint.roll_out(first, "gs://course-bucket/census/2", endpoint, 50)
    deployed = [d.id for d in endpoint.list_models()]
    with pytest.raises(exceptions.BadRequest, match="adds up to 90"):
        endpoint.update(traffic_split={deployed[0]: 40, deployed[1]: 50})
    with pytest.raises(exceptions.BadRequest, match="not deployed here"):
        endpoint.update(traffic_split={"12345": 100})
    with pytest.raises(exceptions.BadRequest, match="undeploy it first"):
        first.delete()
    with pytest.raises(exceptions.BadRequest, match="default version cannot"):
        first.versioning_registry.delete_version("1")
    with pytest.raises(exceptions.BadRequest, match="cannot be taken away"):
        first.versioning_registry.remove_version_aliases(["default"], "1")
    endpoint.undeploy_all()
    first.versioning_registry.delete_version(second.version_id)  # not the default: it may go
    assert [v.version_id for v in first.versioning_registry.list_versions()] == ["1"]
    with pytest.raises(exceptions.BadRequest, match="default version cannot"):
        first.versioning_registry.delete_version("1")
    vertex_endpoint.clean_up(first, endpoint)
    assert not recorder.resources
