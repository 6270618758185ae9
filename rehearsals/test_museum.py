"""The 2017 code, rehearsed (the appendix): `make museum`'s environment (TensorFlow 2.15, the
`museum_venv` fixture) trains the post's Estimator trainer (`python -m census.museum.task`)
and exports it as in 2017; today's tools, in the course's TensorFlow 2.21, then answer for that
export: `census predict` and `census serve` (TF Serving's routes and Vertex AI's) fall back to
its `predict` signature and pass its two extra outputs through, each agreeing with what
TensorFlow 2.15 itself computes. Last, the appendix's quick run in its own kernel.
"""
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, REPORT, course_printed_path, printed, run
from tf215_predict import described

QUIET = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
OUTPUTS_2017 = {"class_ids": ("int64", 1), "classes": ("string", 1), "logistic": ("float32", 1),
                "logits": ("float32", 1), "probabilities": ("float32", 2),
                "all_class_ids": ("int32", 2), "all_classes": ("string", 2)}


@pytest.fixture(scope="module")
def people():
    """The course's two example people (test.json), as the 2017 post sent them."""
    return [json.loads(line) for line in (REPO / "test.json").read_text().splitlines()]


@pytest.fixture(scope="module")
def export_2017(museum_venv, raw_dir, tmp_path_factory):
    """A short run of the 2017 trainer in TensorFlow 2.15 (200 steps of 40 rows, evaluated on
    the validation split): the version folder its FinalExporter wrote."""
    start = time.monotonic()
    cache = tmp_path_factory.mktemp("cache")
    job_dir = tmp_path_factory.mktemp("job-2017")
    env = dict(QUIET, CENSUS_DATA_DIR=str(raw_dir), CENSUS_CACHE_DIR=str(cache))
    files = json.loads(run([museum_venv / "bin" / "python", "-c",
                            "import json; from census import data; f = data.fetch("
                            "progress=False); print(json.dumps([str(f.train), "
                            "str(f.validation)]))"], env=env).stdout.splitlines()[-1])
    run([museum_venv / "bin" / "python", "-m", "census.museum.task", "--train-files", files[0],
         "--eval-files", files[1], "--job-dir", job_dir, "--train-steps", "200",
         "--eval-steps", "10"], env=env, timeout=900)
    versions = sorted((job_dir / "export" / "census").iterdir())
    assert len(versions) == 1 and (versions[0] / "saved_model.pb").is_file()
    REPORT.append(f"2017 trainer (TF 2.15, 200 steps) trained and exported in "
                  f"{time.monotonic() - start:.0f} s")
    return versions[0]


def tf215_predict(museum_venv, export_dir, people):
    """What TensorFlow 2.15 itself gives: the export's `predict` signature on `people`."""
    inputs = {c: [p[c] for p in people] for c in people[0]}
    done = run([museum_venv / "bin" / "python", REPO / "rehearsals" / "tf215_predict.py", "load",
                export_dir, "predict"], input=json.dumps(inputs), env=QUIET, timeout=300)
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["tensorflow"] == "2.15.1"
    return answer["outputs"]


def assert_agrees(got, want):
    """{key: described array} of today's tools against TF 2.15's own: every output of the 2017
    head, dtypes and widths as the Estimator writes them, values equal (floats within 1e-5)."""
    assert sorted(got) == sorted(want) == sorted(OUTPUTS_2017)
    for key, (dtype, width) in OUTPUTS_2017.items():
        assert want[key]["dtype"] == dtype and want[key]["shape"][1:] == [width], key
        assert got[key]["shape"] == want[key]["shape"], key
        if dtype == "string" or dtype.startswith("int"):
            assert got[key]["values"] == want[key]["values"], key
        else:
            np.testing.assert_allclose(got[key]["values"], want[key]["values"], atol=1e-5,
                                       rtol=1e-5, err_msg=key)


def test_2017_export_has_only_predict(museum_venv, export_2017):
    """The post's JSON receiver (several tensors) gets no serving_default: only `predict`."""
    done = run([museum_venv / "bin" / "saved_model_cli", "show", "--dir", export_2017,
                "--tag_set", "serve"], env=QUIET)
    assert "predict" in done.stdout and "serving_default" not in done.stdout, done.stdout


def test_census_predict_answers_from_predict(museum_venv, export_2017, people):
    """`census predict` (TF 2.21) on the 2017 export: the `predict` signature, all seven
    outputs, as TF 2.15 computes them; the table lists them all."""
    from census import predict
    got = predict.predict(str(export_2017), people)
    assert_agrees({k: described(v) for k, v in got.items()},
                  tf215_predict(museum_venv, export_2017, people))
    table = run([REPO / ".venv" / "bin" / "census", "predict", "--model-dir", export_2017,
                 "--json-instances", REPO / "test.json"], env=QUIET).stdout
    header = table.splitlines()[0].split()
    assert header == [k.upper() for k in OUTPUTS_2017], table


def test_census_predict_names_what_the_export_has(export_2017):
    """A signature the 2017 export lacks: one sentence naming the one it has."""
    done = run_failing([REPO / ".venv" / "bin" / "census", "predict", "--model-dir", export_2017,
                        "--json-instances", REPO / "test.json", "--signature",
                        "classification"])
    message = done.stderr.strip()
    assert "'predict'" in message or "predict" in message, message
    assert "Traceback" not in message and len(message.splitlines()) == 1, message


def run_failing(command):
    """Run `command`, which must fail; its CompletedProcess."""
    import subprocess
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, env=QUIET,
                          timeout=300)
    assert done.returncode != 0, done.stdout
    return done


def test_census_serve_answers_from_predict(museum_venv, export_2017, people):
    """`census serve` on the 2017 export: TF Serving's :predict (rows and columns), Vertex
    AI's route and the metadata, each from `predict`, as TF 2.15 computes it; a signature it
    lacks is a 400 naming the one it has."""
    import httpx

    from census.serving.process import BackgroundServer
    want = tf215_predict(museum_venv, export_2017, people)
    with BackgroundServer(str(export_2017)) as server:
        base = f"{server.url}/v1/models/census"
        rows = httpx.post(f"{base}:predict", json={"instances": people}, timeout=60).json()
        assert_agrees({k: described([row[k] for row in rows["predictions"]]) for k in want},
                      want)
        inputs = {c: [p[c] for p in people] for c in people[0]}
        columns = httpx.post(f"{base}:predict", json={"inputs": inputs}, timeout=60).json()
        assert_agrees({k: described(v) for k, v in columns["outputs"].items()}, want)
        vertex = httpx.post(f"{server.url}/v1/endpoints/1/deployedModels/1:predict",
                            json={"instances": people}, timeout=60).json()
        assert_agrees({k: described([row[k] for row in vertex["predictions"]]) for k in want},
                      want)
        metadata = httpx.get(f"{base}/metadata", timeout=60).json()
        assert list(metadata["metadata"]["signature_def"]["signature_def"]) == ["predict"]
        wrong = httpx.post(f"{base}:predict", timeout=60, json={
            "signature_name": "classification", "instances": people})
        assert wrong.status_code == 400 and "predict" in wrong.json()["error"], wrong.text


def test_appendix_quick_run(museum_venv, raw_dir, tmp_path):
    """The appendix, quick, in its own kernel as `make course` runs it: every cell runs, the
    three listings and the scores are printed, no machine path."""
    start = time.monotonic()
    env = dict(QUIET, CENSUS_DATA_DIR=str(raw_dir), CENSUS_CACHE_DIR=str(tmp_path / "cache"),
               CENSUS_MUSEUM_VENV=str(museum_venv))
    run([REPO / ".venv" / "bin" / "census", "course", "run", "--smoke", "--chapters",
         "appendix_2017_code", "--job-root", tmp_path / "jobs", "--build-dir",
         tmp_path / "build"], env=env, timeout=1800, cwd=REPO)
    text = printed(tmp_path / "build" / "appendix_2017_code.ipynb")
    for expected in ("the post (2017)", "2017 code, TF 2.15", "today, TF 2.21",
                     "ALL_CLASSES", "test (", "validation ("):
        assert expected in text, expected
    assert course_printed_path(text) is None, course_printed_path(text)
    REPORT.append(f"appendix, quick run in the census-2017 kernel: "
                  f"{time.monotonic() - start:.0f} s")


def test_appendix_kernel_is_inside_the_venv(museum_venv):
    """`make museum` installed the kernel inside the venv, naming the course's own Python,
    and nowhere in the user's home."""
    from census.course import museum
    spec = museum_venv / "share" / "jupyter" / "kernels" / museum.KERNEL / "kernel.json"
    kernel = json.loads(spec.read_text())
    assert Path(kernel["argv"][0]).parent == museum_venv / "bin", kernel
    assert Path(kernel["env"][museum.TODAY_PYTHON]).is_file(), kernel
    home = Path.home() / ".local" / "share" / "jupyter" / "kernels" / museum.KERNEL
    assert not home.exists(), home
