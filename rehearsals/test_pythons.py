"""Other Pythons: the exact pins resolve on 3.11, 3.12 and 3.13; and the package installs on
Vertex AI's prebuilt training images (Python 3.10 with their own TensorFlow, 2.17 for the
newest `tf-cpu.2-17.py310`), where the trainer trains and exports."""
import json

import pytest

from census.distribute import vertex
from conftest import REPO, pyenv_python, run

VERTEX_IMAGE_TENSORFLOW = "tensorflow==2.17.1"  # what tf-cpu.2-17.py310 holds


@pytest.mark.parametrize("minor", ["3.11", "3.12", "3.13"])
def test_the_pins_resolve(minor, tmp_path):
    python = pyenv_python(minor)
    if python is None:
        pytest.skip(f"no Python {minor} here (pyenv)")
    report = tmp_path / "report.json"
    run([python, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed",
         "--report", report, "-r", REPO / "requirements.txt"], timeout=900)
    resolved = {p["metadata"]["name"].lower().replace("_", "-"): p["metadata"]["version"]
                for p in json.loads(report.read_text())["install"]}
    assert resolved["tensorflow"] == "2.21.0" and resolved["tf-keras"] == "2.21.0"


def test_the_trainer_on_a_vertex_training_image(raw_dir, tmp_path):
    """What a Vertex AI CustomJob does with our sdist: pip installs it on the image's Python
    and TensorFlow, then runs `python -m census.task` with the trainer flags."""
    python = pyenv_python("3.10")
    if python is None:
        pytest.skip("no Python 3.10 here (pyenv): Vertex AI's prebuilt images run 3.10")
    image = tmp_path / "image"  # built afresh: installing the package changes it
    run([python, "-m", "venv", image])
    run([image / "bin" / "python", "-m", "pip", "install", "--quiet", VERTEX_IMAGE_TENSORFLOW],
        timeout=1800)
    sdist = vertex.build_sdist(tmp_path / "dist", REPO)
    run([image / "bin" / "python", "-m", "pip", "install", "--quiet", sdist], timeout=1800)
    job = tmp_path / "job"
    from census import data
    files = data.fetch(raw_dir, tmp_path / "cache", progress=False)
    done = run([image / "bin" / "python", "-m", "census.task", "--train-files", files.train,
                "--eval-files", files.validation, "--job-dir", job, "--train-steps", "60",
                "--eval-every-steps", "60", "--verbosity", "ERROR"], timeout=900,
               cwd=tmp_path)
    metrics = json.loads(done.stdout[done.stdout.index("{"):])
    assert metrics["global_step"] == 60 and metrics["exports"]
    version = run([image / "bin" / "python", "-c", "import sys; print(sys.version_info[:2])"])
    assert version.stdout.strip() == "(3, 10)"
