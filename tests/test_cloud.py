"""Vertex AI custom jobs: the spec for every scale tier, its YAML and gcloud command, and
what the real google-cloud-aiplatform SDK sends (to a local recorder)."""
import shlex

import pytest
import yaml
from google.auth.credentials import AnonymousCredentials

from census.course.vertex_recorder import VertexRecorder
from census.distribute import tiers, vertex
from conftest import REPO

JOB_DIR = "gs://my-bucket/census/job1"
IMAGE = vertex.image_uri("us-central1", "my-project", tag="0.1.0")


def pools(job):
    return vertex.spec_dict(job)["workerPoolSpecs"]


def test_no_file_names_a_retired_prebuilt_training_image():
    """Google's prebuilt TensorFlow training images ended with 2.17 (end of availability
    2026-07-11): the jobs run the course's own image."""
    import re
    import subprocess
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split()
    retired = re.compile(r"vertex-ai/training/|tf-[cg]pu\.2-\d+")
    named = [f for f in files if (REPO / f).is_file()
             and retired.search((REPO / f).read_text(errors="replace"))]
    assert named == [] or named == ["tests/test_cloud.py"], named


def test_the_image_is_an_artifact_registry_uri():
    assert IMAGE == "us-central1-docker.pkg.dev/my-project/census/trainer:0.1.0"
    from importlib.metadata import version
    tag = version("census-course")
    assert vertex.image_uri("europe-west4", "p", "r", "i") == \
        f"europe-west4-docker.pkg.dev/p/r/i:{tag}"


@pytest.mark.parametrize("tier", list(tiers.TIERS))
def test_spec_for_every_tier(tier):
    layout = tiers.TIERS[tier]
    job = vertex.job_spec(layout, vertex.trainer_args(), IMAGE)
    specs = pools(job)
    assert [p.get("replicaCount", 0) for p in specs] == layout.vertex_pools()
    for spec in specs:
        container = spec["containerSpec"]
        assert container["imageUri"] == IMAGE and "pythonPackageSpec" not in spec
        assert container["command"] == ["python", "-m", "census.task"]
        # No --job-dir (the AIP_* directories), no data flags (the trainer fetches the data
        # and holds out the validation split).
        assert container["args"] == ["--train-steps", "5000"]
        assert spec["machineSpec"]["machineType"] == "n1-standard-4"
        if layout.gpus:
            assert spec["machineSpec"]["acceleratorType"] == "NVIDIA_TESLA_T4"
            assert spec["machineSpec"]["acceleratorCount"] == 1
    if tier == "STANDARD_1":
        assert [p["replicaCount"] for p in specs] == [1, 4, 3]  # master + 4 workers + 3 ps


def test_empty_pools_keep_their_place():
    # Chief and evaluator only: Vertex wants empty worker and ps pools in between.
    layout = tiers.layout_for("CUSTOM", workers=0, ps=0, evaluator=1)
    job = vertex.job_spec(layout, ["--job-dir", JOB_DIR], IMAGE)
    assert pools(job)[1:3] == [{}, {}]
    assert pools(job)[3]["containerSpec"]["args"] == ["--job-dir", JOB_DIR]


def test_both_forms_of_the_data_flags():
    own = (["gs://my-bucket/census/data/train.csv"], ["gs://my-bucket/census/data/validation.csv"])
    default = vertex.trainer_args(JOB_DIR)
    direct = vertex.trainer_args(JOB_DIR, *own, train_steps=200)
    mounted = vertex.trainer_args(JOB_DIR, *own, train_steps=200, mount=True)
    assert default == ["--job-dir", JOB_DIR, "--train-steps", "5000"]  # the 2017 step count
    assert direct[direct.index("--train-files") + 1] == own[0][0]
    assert direct[direct.index("--eval-files") + 1] == own[1][0]
    assert mounted[mounted.index("--train-files") + 1] == "/gcs/my-bucket/census/data/train.csv"
    assert mounted[mounted.index("--eval-files") + 1] == \
        "/gcs/my-bucket/census/data/validation.csv"
    assert mounted[mounted.index("--job-dir") + 1] == "/gcs/my-bucket/census/job1"
    assert direct[direct.index("--train-steps") + 1] == "200"
    assert vertex.trainer_args(JOB_DIR, eval_steps=100)[-2:] == ["--eval-steps", "100"]
    with pytest.raises(ValueError):
        vertex.trainer_args(JOB_DIR, train_files=own[0])
    # Every flag is one the trainer accepts, and reads back as the config it came from.
    from census.config import TrainConfig
    for args in (default, direct, mounted):
        assert TrainConfig.from_args(args).to_args() == args


def test_one_replicas_logs_and_the_container_run_command():
    assert [vertex.task_name(pool) for pool in vertex.POOLS] == \
        ["workerpool0-0", "workerpool1-0", "workerpool2-0", "workerpool3-0"]
    assert vertex.task_name("worker", 3) == "workerpool1-3"
    assert shlex.split(vertex.stream_logs_command(123, "europe-west4")) == \
        ["gcloud", "ai", "custom-jobs", "stream-logs", "123", "--region=europe-west4"]
    assert shlex.split(vertex.stream_logs_command(123, "us-central1", "workerpool2-0"))[-1] == \
        "--task-name=workerpool2-0"
    assert vertex.log_filter(123, "workerpool1-0").splitlines() == [
        'resource.type="ml_job"', 'resource.labels.job_id="123"',
        'resource.labels.task_name="workerpool1-0"']
    assert vertex.log_filter(123).splitlines()[-1] == 'resource.labels.job_id="123"'
    environment = {"AIP_MODEL_DIR": "/out/model/", "CLUSTER_SPEC": '{"task": {}}'}
    command = vertex.container_run_command(IMAGE, ["--train-steps", 200], environment,
                                           ["data:/data:ro"])
    assert command == ["docker", "run", "--rm", "--network", "none",
                       "-e", "AIP_MODEL_DIR=/out/model/", "-e", 'CLUSTER_SPEC={"task": {}}',
                       "-v", "data:/data:ro", IMAGE, "--train-steps", "200"]
    in_pod = vertex.container_run_command(IMAGE, engine="podman", network=None,
                                          options=["--pod", "census"])
    assert in_pod == ["podman", "run", "--rm", "--pod", "census", IMAGE]


def test_yaml_round_trip_has_ints_and_the_gcloud_command_reads_it(tmp_path):
    job = vertex.job_spec(tiers.TIERS["STANDARD_1"], vertex.trainer_args(), IMAGE,
                         display_name="census-std1", base_output_dir=JOB_DIR)
    path = vertex.write_yaml(job, tmp_path / "job.yaml")
    spec = yaml.safe_load(open(path))
    assert spec == vertex.spec_dict(job)
    assert [p["replicaCount"] for p in spec["workerPoolSpecs"]] == [1, 4, 3]
    assert all(type(p["replicaCount"]) is int for p in spec["workerPoolSpecs"])
    assert spec["baseOutputDirectory"] == {"outputUriPrefix": JOB_DIR}
    # The dict parses back into the API's own type (camelCase keys, as gcloud reads them).
    from google.cloud import aiplatform_v1
    from google.protobuf import json_format
    parsed = aiplatform_v1.CustomJobSpec.pb()()
    json_format.ParseDict(spec, parsed)
    assert parsed.worker_pool_specs[1].replica_count == 4

    command = vertex.gcloud_command(job, "europe-west4", path)
    assert shlex.split(command) == ["gcloud", "ai", "custom-jobs", "create",
                                    "--region=europe-west4", "--display-name=census-std1",
                                    f"--config={path}"]


def test_without_a_project_it_says_what_it_would_submit(capsys, fresh_aiplatform):
    job = vertex.job_spec(tiers.TIERS["BASIC"], vertex.trainer_args(), IMAGE)
    assert vertex.submit(job, project=None, location="us-central1") is None
    out = capsys.readouterr().out
    assert out.startswith("No project given: not submitting.")
    assert "gcloud ai custom-jobs create --region=us-central1 --display-name=census" in out
    assert yaml.safe_load(out.split("# job.yaml\n", 1)[1].split("\ngcloud ", 1)[0]) == \
        vertex.spec_dict(job)


def test_the_sdk_sends_the_job_to_vertex(capsys, fresh_aiplatform):
    layout = tiers.layout_for("STANDARD_1", evaluator=1)
    job = vertex.job_spec(layout, vertex.trainer_args(), IMAGE, display_name="census-std1",
                         base_output_dir=JOB_DIR)
    with VertexRecorder() as recorder:
        submitted = vertex.submit(job, project="my-project", location="us-central1",
                                 staging_bucket="gs://my-bucket",
                                 credentials=AnonymousCredentials(),
                                 api_endpoint=recorder.endpoint, api_transport="rest", wait=True)
    [create] = recorder.find("POST")
    assert create["path"] == "/v1/projects/my-project/locations/us-central1/customJobs"
    body = create["body"]
    assert body["displayName"] == "census-std1"
    sent = body["jobSpec"]["workerPoolSpecs"]
    assert [int(p["replicaCount"]) for p in sent] == [1, 4, 3, 1]  # JSON int64s are strings
    assert all(p["containerSpec"] == {"imageUri": IMAGE, "args": vertex.trainer_args(),
                                      "command": ["python", "-m", "census.task"]} for p in sent)
    assert body["jobSpec"]["baseOutputDirectory"]["outputUriPrefix"] == JOB_DIR
    assert recorder.find("GET", "/customJobs/1")  # waited for the job
    assert submitted.resource_name == "projects/my-project/locations/us-central1/customJobs/1"
    out = capsys.readouterr().out
    assert "gcloud ai custom-jobs stream-logs 1 --region=us-central1" in out
    assert "--task-name=workerpool0-0" in out
    assert "JOB_STATE_SUCCEEDED" in out
