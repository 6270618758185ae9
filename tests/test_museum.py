"""The appendix's parts that run in the course's own environment: the 2017 environment's set-up
(`census.course.museum`), the listings compared (`census.museum.listings`), the chapter in the
course map and the runner, and the claims of its committed outputs. The 2017 code itself runs
in the rehearsals (rehearsals/test_museum.py), where a Python 3.11 with TensorFlow 2.15 is made.
"""
import re
import subprocess
import sys

import nbformat
import pytest

from census import signature
from census.course import chapters, environment, museum, runner
from census.museum import listings

REPO = environment.root()
APPENDIX = REPO / "notebooks" / f"{chapters.APPENDIX.name}.ipynb"


# --- the listings -----------------------------------------------------------------------------

def test_the_posts_listing_reads_as_the_post_printed_it():
    post = listings.parse(listings.POST)
    assert list(post["inputs"]) == ["age", "capital_gain", "capital_loss", "education"]
    assert post["inputs"]["age"] == ("DT_FLOAT", "(-1)", "Placeholder_8:0")
    assert list(post["outputs"]) == list(signature.OUTPUT_KEYS)
    assert post["outputs"]["probabilities"] == ("DT_FLOAT", "(-1, 2)",
                                                "head/predictions/probabilities:0")
    assert post["method"] == "tensorflow/serving/predict"


def test_a_text_without_tensors_is_refused_in_one_sentence():
    with pytest.raises(ValueError, match="saved_model_cli show"):
        listings.parse("MetaGraphDef with tag-set: 'serve' contains the following SignatureDefs:")


def test_differences_count_what_agrees_and_name_what_is_missing():
    post = listings.parse(listings.POST)
    other = {"inputs": {**post["inputs"], "age": ("DT_FLOAT", "(-1)", "serving_default_age:0"),
                        "gender": ("DT_STRING", "(-1)", "Placeholder_0:0")},
             "outputs": {k: v for k, v in post["outputs"].items() if k != "logistic"},
             "method": post["method"]}
    lines = listings.differences(post, other)
    assert lines[0] == ("inputs: 4 keys in both, 4 with the same dtype and shape, 3 of them with "
                        "the same tensor name; only in the second: gender")
    assert lines[1].endswith("only in the first: logistic")
    assert lines[2] == "method name: the same"
    rows = listings.side_by_side({"a": post, "b": other})
    assert ("outputs", "logistic", " ".join(post["outputs"]["logistic"]), "—") in rows


# --- the environment --------------------------------------------------------------------------

def test_the_kernel_is_found_through_jupyter_path(tmp_path):
    env = museum.jupyter_path({"JUPYTER_PATH": "/elsewhere"}, venv=tmp_path)
    assert env["JUPYTER_PATH"].split(":") == [str(tmp_path / "share" / "jupyter"), "/elsewhere"]
    assert runner.kernelspec(museum.KERNEL)["name"] == "census-2017"
    assert runner.kernelspec()["name"] == "python3"


def test_a_venv_is_ready_only_for_the_pins_it_was_made_with(tmp_path):
    assert not museum.is_ready(tmp_path)
    (tmp_path / ".ready").write_text(museum.fingerprint())
    assert museum.is_ready(tmp_path)
    (tmp_path / ".ready").write_text("0" * 16 + "\n")  # made with other pins
    assert not museum.is_ready(tmp_path)


def test_another_python_is_refused_in_one_sentence(tmp_path):
    python = tmp_path / "python3.12"
    python.write_text("#!/bin/sh\necho 3.12\n")
    python.chmod(0o755)
    with pytest.raises(museum.MuseumError, match=r"is Python 3\.12; the 2017 environment "
                       r"needs 3\.11"):
        museum.setup(tmp_path / "venv", python)
    assert not (tmp_path / "venv").exists()


def test_without_the_2017_environment_the_appendix_is_skipped_saying_why(monkeypatch, tmp_path,
                                                                        capsys):
    monkeypatch.setenv(museum.VENV_VARIABLE, str(tmp_path / "none"))
    assert runner.can_run("01_data")
    assert not runner.can_run(chapters.APPENDIX.name)
    said = capsys.readouterr().out
    assert said.startswith("[course] appendix_2017_code skipped:") and "make museum" in said
    assert len(said.strip().splitlines()) == 1


def test_the_pins_hold_tensorflow_215_with_estimator_and_a_kernel():
    pins = dict(line.split("==") for line in (REPO / museum.REQUIREMENTS).read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    assert pins["tensorflow-cpu"] == "2.15.1" and pins["tensorflow-estimator"] == "2.15.0"
    assert "ipykernel" in pins and "tqdm" in pins  # the kernel; census.sources' progress bars
    assert "census-course" not in pins  # installed beside them, without its dependencies


def test_the_course_map_ends_with_the_appendix():
    last = chapters.course_map().splitlines()[-1]
    assert last.startswith("| A | [Appendix: the 2017 code, run]")
    assert "Open In Colab" not in last and "exercises" not in last


# --- the committed run ------------------------------------------------------------------------

def outputs():
    """Each code cell's source and printed text, of the committed appendix."""
    nb = nbformat.read(APPENDIX, as_version=4)
    return [(c.source, "".join(o.get("text", "") for o in c.outputs))
            for c in nb.cells if c.cell_type == "code"]


def printed_after(marker):
    """The text printed by the first code cell whose source holds `marker`."""
    return next(text for source, text in outputs() if marker in source)


def test_the_committed_2017_listing_matches_the_post():
    """The run's `predict` listing holds every entry the post printed with the same dtype and
    shape, its inputs under the very tensor names, and the two outputs the post left out."""
    ours = listings.parse(printed_after("LISTING_2017 = "))
    post = listings.parse(listings.POST)
    assert {k: ours["inputs"][k] for k in post["inputs"]} == post["inputs"]
    assert {k: ours["outputs"][k][:2] for k in post["outputs"]} == {
        k: v[:2] for k, v in post["outputs"].items()}
    assert len(ours["inputs"]) == 13
    assert set(ours["outputs"]) == set(post["outputs"]) | {"all_class_ids", "all_classes"}


def test_the_committed_differences_are_computed_from_the_listings():
    """The differences printed are those of the listings printed, and today's export keeps
    the 2017 keys, dtypes and shapes, as the text after them says."""
    text = printed_after("listings.differences(")
    ours = listings.parse(printed_after("LISTING_2017 = "))
    for line in listings.differences(listings.parse(listings.POST), ours):
        assert line in text
    assert "inputs: 13 keys in both, 13 with the same dtype and shape" in text
    assert "outputs: 5 keys in both, 5 with the same dtype and shape" in text


def test_the_committed_scores_come_once_per_split():
    """Validation for both models, then the test split once; the sentence after the test
    table is true of it."""
    sources = [source for source, _ in outputs()]
    scored = [source for source in sources if "exports.score(" in source]
    assert len(scored) == 2 and "files.test" in scored[1] and "files.test" not in scored[0]
    text = printed_after("exports.score(export, files.test)")
    scores = {title: float(auc) for title, auc in
              re.findall(r"^(2017 code|today)\s+test \([\d,]+ rows\): accuracy [\d.]+  AUC "
                         r"([\d.]+)", text, re.MULTILINE)}
    assert len(scores) == 2, text
    best = max(scores, key=scores.get)
    assert f"Higher test AUC: {best} ({scores[best]:.4f}" in text


def test_the_appendix_uses_only_what_the_2017_kernel_has():
    """No cell imports a module of the course's that needs today's TensorFlow."""
    allowed = {"course", "data", "quiet", "processes", "listings", "exports", "model", "task",
               "museum", "process"}
    for source, _ in outputs():
        for module in re.findall(r"from census(?:\.\w+)* import (\w+)", source):
            assert module in allowed, module


def test_the_setup_cell_outside_the_2017_kernel_says_what_to_do():
    """`museum.start` in a kernel without tf.estimator: one sentence naming `make museum`."""
    code = ("import sys; sys.modules['tensorflow'] = None\n"
            "from census.course import museum\nmuseum.start()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1 and "make museum" in done.stderr
    assert "Traceback" not in done.stderr, done.stderr
