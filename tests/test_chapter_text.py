"""What the chapters and solutions say and show: no talk of the test harness, nothing private on
display, no hidden stderr, and their sources at the end."""
import re

import nbformat
import pytest

from census.course import chapters, environment

REPO = environment.root()
NOTEBOOKS = [(folder, name) for folder in ("notebooks", "solutions") for name in chapters.NAMES]

# Words of the harness, not of the course: the smoke switch, nbval, the test suite, the targets
# that run it. (papermill stays: chapter 8 teaches a notebook as a tuning trial.)
HARNESS = re.compile(r"\bSMOKE\b|\bsmoke\b|nbval|\bthe tests\b|\btest suite\b|"
                     r"\bmake (test|course|outputs)\b|pytest|course-design\.md", re.IGNORECASE)
# An attribute whose name starts with one underscore, read from a census module or object.
PRIVATE_USE = re.compile(r"\b[a-z]\w*\._[a-z]\w*")
PRIVATE_SOURCE = re.compile(r"^\s*(def|class) _[a-z]\w*", re.MULTILINE)


def cells(folder, name):
    return nbformat.read(REPO / folder / f"{name}.ipynb", as_version=4).cells


def comments(source):
    return "\n".join(line.split("#", 1)[1] for line in source.splitlines() if "#" in line)


@pytest.mark.parametrize("folder, name", NOTEBOOKS)
def test_prose_does_not_talk_about_the_harness(folder, name):
    for cell in cells(folder, name):
        if "parameters" in cell.metadata.get("tags", []):
            continue  # the smoke switch is declared there, for the runner
        text = cell.source if cell.cell_type == "markdown" else comments(cell.source)
        found = HARNESS.search(text)
        assert not found, f"{folder}/{name}: {found.group(0)!r} in {cell.source[:80]!r}"


@pytest.mark.parametrize("folder, name", NOTEBOOKS)
def test_nothing_private_is_shown_or_called(folder, name):
    for cell in cells(folder, name):
        if cell.cell_type != "code":
            continue
        used = PRIVATE_USE.search(cell.source)
        assert not used, f"{folder}/{name} uses {used.group(0)!r}"
        for output in cell.get("outputs", []):
            text = output.get("text", "") + "".join(output.get("data", {}).get("text/plain", ""))
            shown = PRIVATE_SOURCE.search(text)
            assert not shown, f"{folder}/{name} shows {shown.group(0).strip()!r}"


@pytest.mark.parametrize("folder, name", NOTEBOOKS)
def test_no_command_hides_its_stderr(folder, name):
    for cell in cells(folder, name):
        if cell.cell_type == "code":
            assert "2>/dev/null" not in cell.source and "2>&-" not in cell.source, cell.source


@pytest.mark.parametrize("name", chapters.NAMES)
def test_each_chapter_ends_with_its_references(name):
    markdown = [c.source for c in cells("notebooks", name) if c.cell_type == "markdown"]
    references = [s for s in markdown if "## References" in s]
    assert references, f"{name} has no References section"
    section = references[-1].split("## References", 1)[1]
    assert len(re.findall(r"\]\((https?://[^)\s]+)\)", section)) >= 2, section
    assert markdown.index(references[-1]) >= len(markdown) - 2, "References come last"


def test_the_private_patterns_catch_what_they_should():
    assert PRIVATE_USE.search("print(inspect.getsource(model._indices))")
    assert not PRIVATE_USE.search("model.layer_sizes(100, 4, 0.7)")
    assert PRIVATE_SOURCE.search("def _wide_logit(indices):\n    pass")
    assert HARNESS.search("`SMOKE = True` is the quick setting the tests use")
    assert not HARNESS.search("a small notebook run with papermill as a trial")


def test_the_notebooks_folder_talks_to_learners():
    """notebooks/README.md is read by learners browsing the chapters: no harness, no module
    that does not exist."""
    text = (REPO / "notebooks" / "README.md").read_text()
    found = HARNESS.search(text)
    assert not found, found.group(0)
    for name in re.findall(r"`(census/[\w/.]+)`", text):
        assert (REPO / name).exists(), name
