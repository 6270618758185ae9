"""The set-up files agree with each other, and the README's commands run as written."""
import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from census.batch import layout
from conftest import REPO


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
    # The oldest Python on which a rehearsal resolves the pins (rehearsals/test_pythons.py).
    rehearsed = ast.literal_eval(re.search(r'"minor", (\[[^]]*\])', (
        REPO / "rehearsals" / "test_pythons.py").read_text())[1])
    oldest = min(rehearsed, key=lambda minor: tuple(map(int, minor.split("."))))
    assert project["requires-python"] == f">={oldest}"


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


@pytest.mark.slow
def test_readme_command_line_section_runs_as_written(raw_dir, tmp_path):
    commands = readme_commands("Command line")
    assert any(c.startswith("census train") for c in commands)
    shutil.copy(REPO / "test.json", tmp_path)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               CENSUS_DATA_DIR=str(raw_dir), CENSUS_CACHE_DIR=str(tmp_path / "cache"))
    for command in commands:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{command}\n{done.stderr[-3000:]}"
        if command.startswith("census predict") and "--output-dir" in command:
            assert done.stdout.startswith("2 instances: 2 predicted, 0 refused"), done.stdout
            [folder] = (tmp_path / "jobs" / "quick" / "predictions").iterdir()
            assert len(list(layout.read(str(folder)))) == 2
        elif command.startswith("census predict"):
            assert done.stdout.startswith("CLASS_IDS")


@pytest.mark.slow
def test_the_wheel_holds_every_module(tmp_path):
    """A non-editable install (Colab's, a container image's) gets every subpackage: pyproject
    finds them, none is listed by hand."""
    import zipfile
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                           "--wheel-dir", str(tmp_path), str(REPO)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    [wheel] = tmp_path.glob("census_course-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(REPO).as_posix() for p in (REPO / "census").rglob("*.py")}
    assert modules <= names, sorted(modules - names)


def test_the_readme_layout_table_matches_the_tree():
    """Every module and subpackage of census/ is named in its row of the Layout table, and
    every name there exists; every other row is a path of the repository."""
    text = (REPO / "README.md").read_text().split("\n## Layout\n", 1)[1].split("\n## ")[0]
    rows = {path: what for path, what in re.findall(r"^\| (.+?) \| (.+) \|$", text, re.M)
            if path != "path"}
    packages = [p for p in [REPO / "census", *(REPO / "census").iterdir()]
                if p.is_dir() and (p / "__init__.py").is_file()]
    folders = {f"census/{p.relative_to(REPO / 'census').as_posix()}/" for p in packages}
    folders = {f.replace("census/./", "census/") for f in folders}
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


def test_the_distribution_is_census_course():
    """pip knows the course as census-course (PyPI's `census` is another project); it
    provides the `census` import package and the `census` command."""
    import importlib.metadata

    from census import DISTRIBUTION
    assert DISTRIBUTION == "census-course"
    assert importlib.metadata.packages_distributions()["census"] == [DISTRIBUTION]
    dist = importlib.metadata.distribution(DISTRIBUTION)
    assert [e.value for e in dist.entry_points if e.name == "census"] == ["census.cli:main"]
    shown = subprocess.run([sys.executable, "-m", "pip", "show", DISTRIBUTION],
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and f"Name: {DISTRIBUTION}\n" in shown.stdout


def setup_cell(tmp_path, *python_flags, pythonpath=None):
    """Chapter 1's setup cell run as a script outside the checkout; returns CompletedProcess."""
    from census.course import sync
    cell = tmp_path / "setup_cell.py"
    cell.write_text(sync.setup_source("01_data"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CENSUS_COURSE_ROOT")}
    return subprocess.run([sys.executable, *python_flags, str(cell)], cwd=tmp_path, timeout=120,
                          capture_output=True, text=True,
                          env=env | ({"PYTHONPATH": str(pythonpath)} if pythonpath else {}))


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    """PyPI's `census` (another project), installed from the package index into a folder."""
    folder = tmp_path_factory.mktemp("foreign")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                           "--target", str(folder), "census==0.8.27"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return folder


@pytest.mark.parametrize("flags", [(), ("-S",)], ids=["course installed too", "alone"])
def test_the_setup_cell_tells_a_foreign_census_apart(tmp_path, foreign, flags):
    """PyPI's `census` first on the path, with the course installed too (whose editable finder
    would still find `census.course`) or alone: the setup cell names it and what to do, in
    place of "cannot import name 'course'"."""
    done = setup_cell(tmp_path, *flags, pythonpath=foreign)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"`census` here is another project ({foreign / 'census'}")
    assert "PyPI's `census`" in line and "(`pip uninstall census`), then install the course " \
        "(census-course)" in line and "pip install -e ." in line


def test_the_setup_cell_says_when_the_course_is_not_installed(tmp_path):
    done = setup_cell(tmp_path, "-S")  # no site-packages: nothing but the standard library
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"Install the course (census-course) for {sys.executable}: run")


def test_contributing_commands_run_as_written(tmp_path):
    """Each command of the README's Contributing section exists and does what it says: make
    targets (dry run: `make -n`), `census course check` on the committed chapters,
    `census course sync` (on a copy: it leaves chapters in sync byte for byte), `pre-commit
    install` (in a scratch repository)."""
    commands = [line.split("#")[0].split() for line in readme_commands("Contributing")]
    assert {c[0] for c in commands} == {"make", "census", "pre-commit"}
    copy = tmp_path / "copy"
    for folder in ("notebooks", "solutions"):
        shutil.copytree(REPO / folder, copy / folder)
    scratch = tmp_path / "scratch"
    subprocess.run(["git", "init", "--quiet", str(scratch)], check=True)
    bin_dir = Path(sys.executable).parent
    for command in commands:
        cwd, env = REPO, dict(os.environ)
        if command[0] == "make":
            command = ["make", "-n", *command[1:]]
        elif command[:3] == ["census", "course", "sync"]:
            env["CENSUS_COURSE_ROOT"] = str(copy)
        elif command[0] == "pre-commit":
            cwd = scratch
        done = subprocess.run([str(bin_dir / command[0]) if command[0] != "make" else "make",
                               *command[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, f"{' '.join(command)}\n{done.stderr[-2000:]}"
    assert (scratch / ".git" / "hooks" / "pre-commit").is_file()
    for path in sorted((copy / "notebooks").glob("*.ipynb")):
        assert path.read_bytes() == (REPO / "notebooks" / path.name).read_bytes(), path.name


@pytest.mark.slow
def test_pre_commit_runs_clean_on_every_file():
    """The hooks as a contributor's commit runs them, on every tracked file: ruff, and the
    scrub check of the chapters and solutions (pre-commit installs each hook's pinned tool
    from the package index into its own cache, ~/.cache/pre-commit, once)."""
    done = subprocess.run([str(Path(sys.executable).parent / "pre-commit"), "run",
                           "--all-files", "--color", "never"], cwd=REPO, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert re.search(r"^ruff check .*Passed$", done.stdout, re.M), done.stdout
    assert re.search(r"^chapters and solutions committed scrubbed .*Passed$", done.stdout, re.M), \
        done.stdout
