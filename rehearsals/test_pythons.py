"""Other Pythons: the exact pins resolve on 3.11, 3.12 and 3.13 (`requires-python`)."""
import json

import pytest

from conftest import REPO, pyenv_python, run


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
