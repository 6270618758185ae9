"""Vertex AI batch prediction (census.batch.vertex): the real google-cloud-aiplatform SDK, sent to
a local recorder of the Vertex REST API on 127.0.0.1 (census.course.vertex_recorder), which
answers as the service does once a job has succeeded. No model runs: nothing is trained here."""
import json
import shlex
import urllib.parse

import pytest

from census.batch import layout, vertex as batch
from census.course.vertex_recorder import VertexRecorder
from conftest import REPO
from gcs_emulator import fake_gcs_server

PROJECT = "course-project"
PARENT = f"projects/{PROJECT}/locations/us-central1"
EXPORT = "gs://course-bucket/job/export/census/1795640000"
SOURCES = ("gs://course-bucket/batch/test-1.json", "gs://course-bucket/batch/test-2.json")
PREFIX = "gs://course-bucket/batch/predictions"
STATS = {"successfulCount": 16280, "failedCount": 1, "incompleteCount": 0}
# Each but the format differs from its default, so that each is seen to reach the request.
OPTIONS = {"instances_format": "jsonl", "machine_type": "n1-standard-4",
           "starting_replica_count": 2, "max_replica_count": 3, "batch_size": 1024,
           "job_display_name": "census-test-split"}


@pytest.fixture
def recorder(fresh_aiplatform):
    with VertexRecorder(completion_stats=STATS) as vertex:
        yield vertex


def run(recorder, sources=SOURCES, **options):
    from google.auth.credentials import AnonymousCredentials
    return batch.run(EXPORT, sources, PREFIX, project=PROJECT,
                     credentials=AnonymousCredentials(), api_endpoint=recorder.endpoint,
                     api_transport="rest", **options)


def test_upload_batch_predict_and_delete_the_model(recorder):
    result = run(recorder, **OPTIONS)
    model_id = result["model"].rsplit("/", 1)[1]
    calls = [(r["method"], r["path"].removeprefix(f"/v1/{PARENT}")) for r in recorder.requests
             if r["method"] != "GET"]
    assert calls == [("POST", "/models:upload"), ("POST", "/batchPredictionJobs"),
                     ("DELETE", f"/models/{model_id}")]
    [create] = recorder.find("POST", "/batchPredictionJobs")
    body = create["body"]
    assert body["model"] == f"{PARENT}/models/{model_id}@1"  # version 1 of the uploaded model
    assert body["displayName"] == "census-test-split"
    assert body["inputConfig"] == {"instancesFormat": "jsonl",
                                   "gcsSource": {"uris": list(SOURCES)}}
    assert body["outputConfig"] == {"predictionsFormat": "jsonl",
                                    "gcsDestination": {"outputUriPrefix": PREFIX}}
    assert body["dedicatedResources"] == {"machineSpec": {"machineType": "n1-standard-4"},
                                          "startingReplicaCount": 2, "maxReplicaCount": 3}
    assert body["manualBatchTuningParameters"] == {"batchSize": 1024}
    [upload] = recorder.find("POST", "/models:upload")
    assert upload["body"]["model"]["artifactUri"] == EXPORT
    assert upload["body"]["model"]["displayName"] == "census"
    # The job, read back as the service reports it once it has succeeded.
    assert recorder.find("GET", result["job"])
    assert result["output_directory"] == \
        f"{PREFIX}/prediction-census-2026_01_01T00_00_00_000Z"
    assert result["completion_stats"] == {"successful": 16280, "failed": 1, "incomplete": 0}
    assert result["model"] in recorder.deleted and result["model"] not in recorder.resources


@pytest.mark.parametrize("options", [{}, OPTIONS], ids=["defaults", "options"])
def test_describe_prints_the_request_the_sdk_sends(recorder, options):
    run(recorder, **options)
    [create] = recorder.find("POST", "/batchPredictionJobs")
    text = batch.describe(create["body"]["model"], SOURCES, PREFIX, **options)
    header, rest = text.split("\n", 1)
    body, command = rest.rsplit("\n\n", 1)
    assert header == "# batch_prediction_job.json"
    assert json.loads(body) == create["body"]  # the whole body, field for field
    words = shlex.split(command)
    assert words[:3] == ["curl", "-X", "POST"]
    assert words[words.index("-d") + 1] == "@batch_prediction_job.json"
    assert "Authorization: Bearer $(gcloud auth print-access-token)" in words
    url = urllib.parse.urlsplit(words[-1])
    assert url.scheme == "https" and url.netloc == "us-central1-aiplatform.googleapis.com"
    assert url.path == create["path"]
    # The SDK's Model, as the chapter holds it, names the same version.
    from google.cloud import aiplatform
    model = aiplatform.Model(create["body"]["model"].split("@")[0])
    assert batch.describe(model, SOURCES, PREFIX, **options) == text


def test_the_model_is_deleted_when_the_job_fails(fresh_aiplatform):
    with VertexRecorder(job_state="JOB_STATE_FAILED") as recorder:
        with pytest.raises(RuntimeError, match="Job failed"):
            run(recorder)
    [upload, create] = recorder.find("POST")
    assert create["path"].endswith("/batchPredictionJobs")
    assert [r["method"] for r in recorder.requests if r["method"] != "GET"][-1] == "DELETE"
    assert not [name for name in recorder.resources if "/models/" in name]


@pytest.mark.parametrize("arguments, named", [
    ({"artifact_uri": "/local/export/1"}, "artifact_uri"),
    ({"sources": ["gs://b/ok.json", "test.json"]}, "gcs_source"),
    ({"sources": []}, "gcs_source"),
    ({"prefix": "predictions/"}, "gcs_destination_prefix"),
    ({"instances_format": "json"}, "instances_format"),
    ({"starting_replica_count": 2, "max_replica_count": 1}, "starting_replica_count"),
    ({"starting_replica_count": 0}, "starting_replica_count"),
])
def test_what_vertex_would_refuse_is_refused_before_anything_is_created(recorder, arguments,
                                                                         named):
    from google.auth.credentials import AnonymousCredentials
    export = arguments.pop("artifact_uri", EXPORT)
    sources = arguments.pop("sources", SOURCES)
    prefix = arguments.pop("prefix", PREFIX)
    with pytest.raises(ValueError, match=named):
        batch.run(export, sources, prefix, project=PROJECT, credentials=AnonymousCredentials(),
                  api_endpoint=recorder.endpoint, api_transport="rest", **arguments)
    assert recorder.requests == []


def test_guarded_without_a_project(monkeypatch, capsys):
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    assert batch.run(EXPORT, SOURCES, PREFIX, project="") is None
    assert batch.run(EXPORT, SOURCES, PREFIX) is None  # nor in the environment
    out = capsys.readouterr().out
    assert out.count("Vertex AI batch prediction skipped: no Google Cloud project given") == 2


def test_a_folder_is_named_with_the_create_time_to_the_millisecond():
    import datetime
    utc = datetime.timezone.utc
    assert layout.folder_name("census", datetime.datetime(2026, 1, 1, tzinfo=utc)) == \
        "prediction-census-2026_01_01T00_00_00_000Z"
    berlin = datetime.timezone(datetime.timedelta(hours=1))
    assert layout.folder_name("m", datetime.datetime(2026, 3, 4, 6, 6, 7, 891999, berlin)) == \
        "prediction-m-2026_03_04T05_06_07_891Z"


def test_the_job_output_reads_back_from_the_folder_it_names(recorder, tmp_path, monkeypatch):
    """The folder `run` returns is the one the SDK's own reader (BatchPredictionJob.
    iter_outputs, google-cloud-storage) lists in a Cloud Storage emulator holding a folder in
    Vertex AI's layout; an older job's folder beside it stays out."""
    from google.cloud import aiplatform
    instances = [json.loads(line) for line in (REPO / "test.json").read_text().splitlines()]
    results = [{"instance": i, "prediction": {"classes": [" <=50K", " >50K"]}}
               for i in instances]
    folder = f"{PREFIX}/prediction-census-2026_01_01T00_00_00_000Z"
    seed = tmp_path / "seed"
    for path, text in [
            (f"{folder}/prediction.results-00000-of-00001",
             "".join(json.dumps(r) + "\n" for r in results)),
            (f"{folder}/prediction.errors_stats-00000-of-00001", ""),
            (f"{PREFIX}/prediction-census-2025_12_31T23_59_59_999Z/"
             "prediction.results-00000-of-00001", "{}\n")]:
        file = seed / path.removeprefix("gs://")
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text)
    with fake_gcs_server(seed, log_path=tmp_path / "fake-gcs.log") as url:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        result = run(recorder)
        assert result["output_directory"] == folder
        blobs = list(aiplatform.BatchPredictionJob(result["job"]).iter_outputs())
        names = sorted(blob.name.rsplit("/", 1)[1] for blob in blobs)
        assert names == ["prediction.errors_stats-00000-of-00001",
                         "prediction.results-00000-of-00001"]
        [read] = [b.download_as_text().splitlines() for b in blobs if "results" in b.name]
    assert [json.loads(line) for line in read] == results


def test_the_jobs_folder_is_read_back_and_scored_as_the_local_jobs(recorder, export_dir,
                                                                  census_files, tmp_path,
                                                                  monkeypatch):
    """The stand-in service runs the job it is sent with the local batch job (the export it
    was given, the sources and output prefix of the request, on a Cloud Storage emulator),
    and names its folder from the job's create time as Vertex AI does; the folder `run`
    returns is read back and scored by the same code as the local job's."""
    import datetime

    from census.batch import local
    given = tmp_path / "seed" / "course-bucket" / "batch" / "test.jsonl"
    given.parent.mkdir(parents=True)
    labelled = local.write_instances(census_files.test, given, "json")

    def create(request):  # what the service does with the job: run it
        body = request["body"]
        done = local.run(export_dir, body["inputConfig"]["gcsSource"]["uris"],
                         body["outputConfig"]["gcsDestination"]["outputUriPrefix"],
                         batch_size=int(body["manualBatchTuningParameters"]["batchSize"]))
        created = datetime.datetime.strptime(done.folder.rsplit("-", 1)[1] + "+0000",
                                             "%Y_%m_%dT%H_%M_%S_%fZ%z")
        job = dict(body, name=f"{PARENT}/batchPredictionJobs/7", state="JOB_STATE_PENDING",
                   createTime=created.isoformat(timespec="milliseconds"))
        recorder.resources[job["name"]] = job
        return 200, job
    recorder.respond("POST", r"/batchPredictionJobs$", create)
    with fake_gcs_server(tmp_path / "seed", log_path=tmp_path / "gcs.log") as url:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        result = run(recorder, sources="gs://course-bucket/batch/test.jsonl", batch_size=1024)
        folder = result["output_directory"]
        assert folder.startswith(f"{PREFIX}/prediction-census-")
        scores = layout.score(layout.read(folder), labelled)
        assert list(layout.read(folder, layout.ERRORS)) == []
    here = local.run(export_dir, [given], tmp_path / "here", batch_size=1024)
    assert scores == layout.score(layout.read(here.folder), labelled)
    assert scores["rows"] == len(labelled) and scores["unmatched"] == 0
