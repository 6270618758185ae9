"""The checks of chapter 10 (batch prediction): each passes a right answer and refuses a
realistic wrong one with a hint that leads before it tells. They run the real local batch job
on the JSON and CSV exports of the `exports` fixture and a few rows of the test split."""
import collections
import json
import os

import pytest

from census.batch import layout, local
from census.course import checks
from conftest import fails, leads_then_tells

pytestmark = pytest.mark.slow  # real batch jobs on the trained fixture's exports


@pytest.fixture(scope="module")
def some_rows(census_files, tmp_path_factory):
    """A labelled CSV file of 40 rows of the test split."""
    path = tmp_path_factory.mktemp("rows") / "some.csv"
    with open(census_files.test) as source, open(path, "w") as out:
        out.writelines(line for _, line in zip(range(40), source))
    return str(path)


# --- exercise 10.1: refusals ------------------------------------------------------------------

def refusals_right(folder):
    reasons = collections.Counter(line["error"]["message"].split(": ", 1)[1]
                                  for line in layout.read(folder, layout.ERRORS))
    top = reasons.most_common(1)
    return sum(reasons.values()), top[0][0] if top else None


def first_errors_file_only(folder):
    with open(layout.files(folder, layout.ERRORS)[0]) as f:
        reasons = collections.Counter(json.loads(line)["error"]["message"].split(": ", 1)[1]
                                      for line in f)
    return sum(reasons.values()), reasons.most_common(1)[0][0]


def whole_messages(folder):
    reasons = collections.Counter(line["error"]["message"]
                                  for line in layout.read(folder, layout.ERRORS))
    top = reasons.most_common(1)
    return sum(reasons.values()), top[0][0] if top else None


def no_refusal_crashes(folder):
    reasons = collections.Counter(line["error"]["message"].split(": ", 1)[1]
                                  for line in layout.read(folder, layout.ERRORS))
    return sum(reasons.values()), reasons.most_common(1)[0][0]


def test_refusals_right_answer_passes(exports, census_files, capsys):
    checks.check_refusals(refusals_right, exports["JSON"], census_files.test)
    assert capsys.readouterr().out.startswith("✓ 6 instances refused, read from 3 errors files")


@pytest.mark.parametrize("wrong, fix", [
    (first_errors_file_only, "layout.files(folder, layout.ERRORS)"),
    (whole_messages, "what follows the first ': '"),
    (no_refusal_crashes, "return (0, None)"),
])
def test_refusals_wrong_answers(exports, census_files, wrong, fix):
    assert leads_then_tells(fails(checks.check_refusals, wrong, exports["JSON"],
                                  census_files.test), fix)


# --- exercise 10.2: predict_csv_rows ----------------------------------------------------------

def rows_job(transform, kind="text"):
    """An answer that writes transform(fields of a row) for each row, joined by ','."""
    def answer(csv_path, model_dir, output_dir):
        os.makedirs(output_dir, exist_ok=True)
        path = os.path.join(output_dir, "instances.csv")
        with open(csv_path) as source, open(path, "w") as out:
            for line in source:
                out.write(",".join(transform(line.rstrip("\n").split(","))) + "\n")
        return local.run(model_dir, [path], output_dir, kind=kind)
    return answer


def test_predict_csv_rows_right_answer_passes(exports, some_rows, capsys):
    checks.check_predict_csv_rows(rows_job(lambda f: f[:-1]), exports["CSV"], some_rows)
    assert capsys.readouterr().out.startswith("✓ 40 CSV rows through the CSV export: 40 predicted")


@pytest.mark.parametrize("wrong, fix", [
    (rows_job(lambda f: f), "drop the last field, the label"),
    (rows_job(lambda f: [v.strip() for v in f[:-1]]), "no strip"),
    (rows_job(lambda f: f[:-1], kind="json"), "kind='text'"),
])
def test_predict_csv_rows_wrong_answers(exports, some_rows, wrong, fix):
    assert leads_then_tells(fails(checks.check_predict_csv_rows, wrong, exports["CSV"],
                                  some_rows), fix)
