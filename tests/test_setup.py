"""The set-up files agree with each other, and the README's commands run as written."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from packaging.requirements import Requirement

from conftest import REPO

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib


def pins(lines):
    reqs = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    return {r.name.lower(): str(r.specifier) for r in reqs}


def requirements_pins():
    return pins((REPO / "requirements.txt").read_text().splitlines())


def test_environment_yml_installs_the_same_pins():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert pins(pip_section) == requirements_pins()
    assert all(spec.startswith("==") for spec in requirements_pins().values())


def test_package_ranges_admit_the_pins():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + sum(project["optional-dependencies"].values(), [])
    pinned = {name: spec[2:] for name, spec in requirements_pins().items()}
    for line in declared:
        req = Requirement(line)
        assert req.specifier.contains(pinned[req.name.lower()]), line
    assert {Requirement(d).name.lower() for d in declared} == set(pinned)
    assert project["scripts"]["census"] == "census.cli:main"


def test_lower_bounds_are_versions_a_rehearsal_ran():
    """Each range starts at Colab's preinstalled version where Colab has the package (the
    Colab rehearsal runs it), else at the pin (make test runs it)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + sum(project["optional-dependencies"].values(), [])
    colab = {k.replace("_", "-"): v[2:] for k, v in pins(
        (REPO / "rehearsals" / "colab-runtime-2026-08.txt").read_text().splitlines()).items()}
    pinned = {name: spec[2:] for name, spec in requirements_pins().items()}
    for line in declared:
        req = Requirement(line)
        [lower] = [s.version for s in req.specifier if s.operator == ">="]
        name = req.name.lower()
        assert lower == colab.get(name, pinned[name]), line
    assert project["requires-python"] == ">=3.10"


def test_readme_starts_with_the_two_commands_and_ci_runs_one():
    readme = (REPO / "README.md").read_text()
    first_section = readme.split("\n## ")[1]
    assert "make course" in first_section and "make test" in first_section
    assert "make test" in (REPO / ".ci" / "run").read_text()


def readme_commands(section):
    """The lines of the ```bash blocks under a README section."""
    text = (REPO / "README.md").read_text().split(f"\n## {section}\n", 1)[1].split("\n## ")[0]
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    return [line for block in blocks for line in block.splitlines()
            if line.strip() and not line.startswith("#")]


def test_readme_command_line_section_runs_as_written(tmp_path):
    commands = readme_commands("Command line")
    assert any(c.startswith("census train") for c in commands)
    shutil.copy(REPO / "test.json", tmp_path)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    for command in commands:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{command}\n{done.stderr[-3000:]}"
        if command.startswith("census predict"):
            assert done.stdout.startswith("CLASS_IDS")


def test_the_wheel_holds_every_module(tmp_path):
    """A non-editable install (Colab's, Vertex AI's) gets every subpackage: pyproject finds
    them, none is listed by hand."""
    import zipfile
    done = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path),
                           str(REPO)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    [wheel] = tmp_path.glob("census-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(REPO).as_posix() for p in (REPO / "census").rglob("*.py")}
    assert modules <= names, sorted(modules - names)


def test_the_readme_layout_table_matches_the_tree():
    """Every module and subpackage of census/ is named in its row of the Layout table, and
    every name there exists; every other row is a path of the repository."""
    text = (REPO / "README.md").read_text().split("\n## Layout\n", 1)[1].split("\n## ")[0]
    rows = {path: what for path, what in re.findall(r"^\| (.+?) \| (.+) \|$", text, re.M)
            if path != "path"}
    folders = {f"census/{p.relative_to(REPO / 'census').as_posix()}/".replace("census/./", "census/")
               for p in [REPO / "census", *(REPO / "census").iterdir()]
               if p.is_dir() and (p / "__init__.py").is_file()}
    for folder in folders:
        named = set(re.findall(r"`([a-z_]+)/?`", rows[f"`{folder}`"]))
        here = {p.stem for p in (REPO / folder).glob("*.py") if p.stem[0] != "_"}
        here |= {p.name for p in (REPO / folder).iterdir()
                 if (p / "__init__.py").is_file() and f"{folder}{p.name}/" not in folders}
        assert here <= named, (folder, sorted(here - named))
        assert named - {"census"} <= here | {f.split("/")[-2] for f in folders}, \
            (folder, sorted(named - here))
    for path in rows:
        if not path.startswith("`census/"):
            for name in re.findall(r"`([^`]+)`", path):
                assert (REPO / name).exists(), name
