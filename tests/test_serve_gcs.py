"""`census serve` with its model in Cloud Storage, as in a Vertex AI custom prediction container:
the gs:// folder ($AIP_STORAGE_URI, or --model-base-path) copied to a local temporary folder
with google-cloud-storage, here from a real fake-gcs-server."""
import json
import os
import shutil
import subprocess
import sys
import time

import httpx
import pytest

from census import predict, processes
from conftest import REPO, run_census
from gcs_emulator import fake_gcs_server

pytestmark = pytest.mark.slow  # a model server

INSTANCES = [json.loads(line) for line in (REPO / "test.json").read_text().splitlines() if line]
ROUTES = {"AIP_HEALTH_ROUTE": "/v1/endpoints/11/deployedModels/22",
          "AIP_PREDICT_ROUTE": "/v1/endpoints/11/deployedModels/22:predict",
          "AIP_DEPLOYED_MODEL_ID": "22"}


def files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def bucket(export_dir, tmp_path_factory):
    """A Cloud Storage emulator holding the export as Vertex AI's copy of a Model's artifacts
    (gs://vertex-copy/model/: the SavedModel directory itself), a job folder that holds no
    model, and an empty bucket; its URL."""
    seed = tmp_path_factory.mktemp("seed")
    shutil.copytree(export_dir, seed / "vertex-copy" / "model")
    (seed / "empty").mkdir()
    (seed / "vertex-copy" / "job" / "checkpoints").mkdir(parents=True)  # not a model
    (seed / "vertex-copy" / "job" / "checkpoints" / "checkpoint").write_text("ckpt-1\n")
    with fake_gcs_server(seed, log_path=seed.parent / "fake-gcs.log") as url:
        yield url


def test_serves_the_model_aip_storage_uri_names(bucket, export_dir, tmp_path):
    """No --model-base-path: $AIP_STORAGE_URI is copied into $TMPDIR, served as version 1 on
    Vertex AI's routes as local prediction gives it, and removed when SIGTERM stops the
    server (a clean stop: -15)."""
    port = processes.free_port()
    env = {"AIP_STORAGE_URI": "gs://vertex-copy/model", "AIP_HTTP_PORT": str(port),
           "STORAGE_EMULATOR_HOST": bucket, "TMPDIR": str(tmp_path), **ROUTES}
    proc = subprocess.Popen([sys.executable, "-m", "census", "serve", "--stop-with-parent"],
                            cwd=REPO, env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            deadline = time.monotonic() + 120
            while True:
                assert proc.poll() is None, proc.communicate()[1][-3000:]
                assert time.monotonic() < deadline, "census serve never became healthy"
                try:
                    if http.get(ROUTES["AIP_HEALTH_ROUTE"]).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
            [copy] = tmp_path.glob("census-serve-*")
            assert files(copy) == files(export_dir)  # an empty assets/ is no object
            status = http.get("/v1/models/census").json()["model_version_status"]
            assert [(s["version"], s["state"]) for s in status] == [("1", "AVAILABLE")]
            reply = http.post(ROUTES["AIP_PREDICT_ROUTE"], json={"instances": INSTANCES}).json()
    finally:
        status = processes.stop([proc], grace=30)[0]
    out, _ = proc.communicate()
    assert status in (0, -15)
    assert "from gs://vertex-copy/model (copied into " in out
    assert sorted(reply) == ["deployedModelId", "predictions"] and reply["deployedModelId"] == "22"
    local = predict.rows(predict.predict(str(export_dir), INSTANCES))
    assert [r["class_ids"] for r in reply["predictions"]] == [r["class_ids"] for r in local]
    for got, want in zip(reply["predictions"], local, strict=True):
        assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-6)
    assert not list(tmp_path.glob("census-serve-*"))  # the copy is gone


@pytest.mark.parametrize("uri,words", [
    ("gs://no-such-bucket/model", "no bucket gs://no-such-bucket"),
    ("gs://empty/model", "no objects under gs://empty/model"),
    ("gs://vertex-copy/mode", "no objects under gs://vertex-copy/mode"),  # a prefix, not a folder
])
def test_a_missing_or_empty_gcs_folder_is_one_sentence(bucket, uri, words, tmp_path):
    done = run_census("serve", "--model-base-path", uri,
                      env={"STORAGE_EMULATOR_HOST": bucket, "TMPDIR": str(tmp_path)})
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"census serve: cannot copy the model from {uri}: {words}" + (
            f" (for {uri})" if "no-such" in uri else ""))
    assert not list(tmp_path.glob("census-serve-*"))


def test_no_model_path_and_no_aip_storage_uri_is_one_sentence():
    done = run_census("serve", env={"AIP_STORAGE_URI": ""})
    assert done.returncode == 1 and done.stderr.strip() == (
        "census serve: give --model-base-path (or set $AIP_STORAGE_URI)")


def test_a_gcs_folder_that_holds_no_model_names_what_it_is_a_copy_of(bucket, tmp_path):
    done = run_census("serve", "--model-base-path", "gs://vertex-copy/job",
                      env={"STORAGE_EMULATOR_HOST": bucket, "TMPDIR": str(tmp_path)})
    last = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert last.startswith(f"census serve: {tmp_path}/census-serve-") and last.endswith(
        " holds no numbered version directories and no saved_model.pb (expected the export "
        "base directory, JOB_DIR/export/census, or a SavedModel directory) (a copy of "
        "gs://vertex-copy/job)"), last
    assert not list(tmp_path.glob("census-serve-*"))
