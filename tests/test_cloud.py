"""Vertex AI custom jobs: the spec for every scale tier, its YAML and gcloud command, the
package, and what the real google-cloud-aiplatform SDK sends (to a local recorder)."""
import shlex
import tarfile

import pytest
import yaml
from google.auth.credentials import AnonymousCredentials

from census.distribute import tiers, vertex
from conftest import REPO
from gcs_emulator import fake_gcs_server
from census.course.vertex_recorder import VertexRecorder

JOB_DIR = "gs://my-bucket/census/job1"
PACKAGE = "gs://my-bucket/census/census_course-0.1.0.tar.gz"


def pools(job):
    return vertex.spec_dict(job)["workerPoolSpecs"]


@pytest.mark.parametrize("tier", list(tiers.TIERS))
def test_spec_for_every_tier(tier):
    layout = tiers.TIERS[tier]
    job = vertex.job_spec(layout, vertex.trainer_args(JOB_DIR), package_uris=[PACKAGE])
    specs = pools(job)
    assert [p.get("replicaCount", 0) for p in specs] == layout.vertex_pools()
    for spec in specs:
        package = spec["pythonPackageSpec"]
        assert package["executorImageUri"] == (vertex.TF_GPU_IMAGE if layout.gpus
                                               else vertex.TF_CPU_IMAGE)
        assert package["pythonModule"] == "census.task" and package["packageUris"] == [PACKAGE]
        args = package["args"]
        assert args[args.index("--job-dir") + 1] == JOB_DIR
        # No data flags: the trainer fetches the data and holds out the validation split.
        assert "--train-files" not in args and "--eval-files" not in args
        assert spec["machineSpec"]["machineType"] == "n1-standard-4"
        if layout.gpus:
            assert spec["machineSpec"]["acceleratorType"] == "NVIDIA_TESLA_T4"
            assert spec["machineSpec"]["acceleratorCount"] == 1
    if tier == "STANDARD_1":
        assert [p["replicaCount"] for p in specs] == [1, 4, 3]  # master + 4 workers + 3 ps


def test_empty_pools_keep_their_place_and_containers_take_the_flags():
    # Chief and evaluator only: Vertex wants empty worker and ps pools in between.
    layout = tiers.layout_for("CUSTOM", workers=0, ps=0, evaluator=1)
    job = vertex.job_spec(layout, ["--job-dir", JOB_DIR], container_image="gcr.io/p/census:1")
    assert pools(job)[1:3] == [{}, {}]
    assert pools(job)[3]["containerSpec"] == {"imageUri": "gcr.io/p/census:1",
                                              "args": ["--job-dir", JOB_DIR]}
    with pytest.raises(ValueError):
        vertex.job_spec(layout, [], package_uris=[PACKAGE], container_image="gcr.io/p/c:1")


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


def test_one_replicas_logs_and_the_local_run_commands():
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
    args = vertex.trainer_args("jobs/local-run", train_steps=200)
    command = shlex.split(vertex.local_run_command(args))
    assert command[:4] == ["gcloud", "ai", "custom-jobs", "local-run"]
    assert f"--executor-image-uri={vertex.TF_CPU_IMAGE}" in command
    assert "--python-module=census.task" in command
    assert command[command.index("--") + 1:] == args


def test_yaml_round_trip_has_ints_and_the_gcloud_command_reads_it(tmp_path):
    job = vertex.job_spec(tiers.TIERS["STANDARD_1"], vertex.trainer_args(JOB_DIR),
                         package_uris=[PACKAGE], display_name="census-std1",
                         base_output_dir=JOB_DIR)
    path = vertex.write_yaml(job, tmp_path / "job.yaml")
    spec = yaml.safe_load(open(path))
    assert spec == vertex.spec_dict(job)
    assert [p["replicaCount"] for p in spec["workerPoolSpecs"]] == [1, 4, 3]
    assert all(type(p["replicaCount"]) is int for p in spec["workerPoolSpecs"])
    assert type(spec["workerPoolSpecs"][0]["diskSpec"]["bootDiskSizeGb"]) is int
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


@pytest.mark.slow
def test_sdist_holds_the_package_and_its_metadata(tmp_path):
    path = vertex.build_sdist(tmp_path)
    assert path.endswith("census_course-0.1.0.tar.gz")
    with tarfile.open(path) as tar:
        names = tar.getnames()
    modules = {f"census_course-0.1.0/{p.relative_to(REPO).as_posix()}"
               for p in (REPO / "census").rglob("*.py")}
    metadata = {"census_course-0.1.0/pyproject.toml", "census_course-0.1.0/PKG-INFO"}
    assert metadata | modules <= set(names)
    # A chapter run again builds again into the same folder: the new sdist replaces the old.
    assert vertex.build_sdist(tmp_path) == path
    assert [p.name for p in tmp_path.iterdir()] == ["census_course-0.1.0.tar.gz"]


class Installed:
    """A stand-in for importlib.metadata's distribution, with the direct_url.json pip wrote."""

    def __init__(self, direct_url):
        self.direct_url = direct_url

    def read_text(self, name):
        return self.direct_url if name == "direct_url.json" else None


def test_the_source_tree_is_the_checkout_or_the_folder_pip_installed_from(tmp_path,
                                                                        monkeypatch):
    import importlib.metadata
    assert vertex.source_root() == REPO  # this clone: the package runs from it
    # Installed, not editable (Colab: `pip install CLONE`): the folder pip recorded (PEP 610).
    site = tmp_path / "site-packages" / "census" / "distribute" / "vertex.py"
    monkeypatch.setattr(vertex, "__file__", str(site))
    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: Installed(
        '{"url": "%s", "dir_info": {}}' % REPO.as_uri()))
    assert vertex.source_root() == REPO
    # From an index or a wheel: no source tree to build, and the error says so.
    for recorded in (None, '{"url": "https://example.com/c.whl", "archive_info": {}}'):
        monkeypatch.setattr(importlib.metadata, "distribution",
                            lambda name, recorded=recorded: Installed(recorded))
        with pytest.raises(FileNotFoundError, match="build the sdist from a clone"):
            vertex.source_root()


def test_upload_to_cloud_storage(tmp_path, monkeypatch):
    (tmp_path / "seed" / "my-bucket").mkdir(parents=True)
    (tmp_path / "seed" / "my-bucket" / "README").write_text("seed")
    package = tmp_path / "census_course-0.1.0.tar.gz"
    package.write_bytes(b"sdist bytes")
    with fake_gcs_server(tmp_path / "seed") as url:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        from google.cloud import storage
        client = storage.Client(project="test", credentials=AnonymousCredentials())
        assert vertex.upload(package, PACKAGE, client) == PACKAGE
        blob = client.bucket("my-bucket").blob("census/census_course-0.1.0.tar.gz")
        assert blob.download_as_bytes() == b"sdist bytes"


def test_without_a_project_it_says_what_it_would_submit(capsys, fresh_aiplatform):
    job = vertex.job_spec(tiers.TIERS["BASIC"], vertex.trainer_args(JOB_DIR),
                         package_uris=[PACKAGE])
    assert vertex.submit(job, project=None, location="us-central1") is None
    out = capsys.readouterr().out
    assert out.startswith("No project given: not submitting.")
    assert "gcloud ai custom-jobs create --region=us-central1 --display-name=census" in out
    assert yaml.safe_load(out.split("# job.yaml\n", 1)[1].split("\ngcloud ", 1)[0]) == \
        vertex.spec_dict(job)


def test_the_sdk_sends_the_job_to_vertex(capsys, fresh_aiplatform):
    layout = tiers.layout_for("STANDARD_1", evaluator=1)
    job = vertex.job_spec(layout, vertex.trainer_args(JOB_DIR), package_uris=[PACKAGE],
                         display_name="census-std1", base_output_dir=JOB_DIR)
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
    assert all(p["pythonPackageSpec"]["pythonModule"] == "census.task" for p in sent)
    assert sent[0]["pythonPackageSpec"]["args"] == vertex.trainer_args(JOB_DIR)
    assert sent[0]["pythonPackageSpec"]["executorImageUri"] == vertex.TF_CPU_IMAGE
    assert body["jobSpec"]["baseOutputDirectory"]["outputUriPrefix"] == JOB_DIR
    assert recorder.find("GET", "/customJobs/1")  # waited for the job
    assert submitted.resource_name == "projects/my-project/locations/us-central1/customJobs/1"
    out = capsys.readouterr().out
    assert "gcloud ai custom-jobs stream-logs 1 --region=us-central1" in out
    assert "--task-name=workerpool0-0" in out
    assert "JOB_STATE_SUCCEEDED" in out
