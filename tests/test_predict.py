import json

import pytest

from census import cli, predict, schema
from conftest import REPO, run_census

TEST_JSON = REPO / "test.json"


def test_census_predict_prints_the_gcloud_table(export_dir):
    done = run_census("predict", "--model-dir", export_dir, "--json-instances", TEST_JSON)
    assert done.returncode == 0, done.stderr[-2000:]
    header, *rows = done.stdout.strip().splitlines()
    assert header.split() == ["CLASS_IDS", "CLASSES", "LOGISTIC", "LOGITS", "PROBABILITIES"]
    assert len(rows) == len(TEST_JSON.read_text().splitlines()) == 2
    for row in rows:
        class_id = json.loads(row.split()[0])
        assert class_id in ([0], [1]) and repr(schema.LABELS[class_id[0]])[1:-1] in row


def test_json_format_and_base_dir(export_dir):
    done = run_census("predict", "--model-dir", export_dir.parent, "--json-instances",
                      TEST_JSON, "--format", "json")
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [sorted(r) for r in rows] == [sorted(predict.OUTPUT_KEYS)] * 2
    assert all(abs(sum(r["probabilities"]) - 1) < 1e-5 for r in rows)


def test_leading_spaces_make_no_difference(export_dir):
    instances = predict.read_instances(TEST_JSON)
    stripped = [{k: v.strip() if isinstance(v, str) else v for k, v in i.items()}
                for i in instances]
    a, b = predict.predict(export_dir, instances), predict.predict(export_dir, stripped)
    assert (a["logits"] == b["logits"]).all()


@pytest.mark.parametrize("change, message", [
    (lambda i: i.pop("age"), "instance 1: missing field 'age'"),
    (lambda i: i.update(age="old"), "instance 1: field 'age' must be a number, got 'old'"),
    (lambda i: i.update(race=3), "instance 1: field 'race' must be a string"),
    (lambda i: i.update(salary=1), "instance 1: unknown field 'salary'"),
    (lambda i: i.update(capital_loss=-100), "instance 1: field 'capital_loss' must be at least 0"),
    (lambda i: i.update(capital_gain=-0.5), "instance 1: field 'capital_gain' must be at least 0"),
    (lambda i: i.update(age=-1), "instance 1: field 'age' must be from 0 to 150, got -1"),
    (lambda i: i.update(hours_per_week=169), "field 'hours_per_week' must be from 0 to 168"),
    (lambda i: i.update(education_num=0), "field 'education_num' must be from 1 to 16"),
    (lambda i: i.update(age=float("nan")), "field 'age' is out of the float32 range"),
    (lambda i: i.update(capital_gain=float("inf")), "field 'capital_gain' is out of the float32"),
    (lambda i: i.update(capital_gain=1e39), "field 'capital_gain' is out of the float32 range"),
    (lambda i: i.update(age=10 ** 400), "field 'age' is out of the float32 range"),
])
def test_bad_instances_get_a_clear_error(export_dir, tmp_path, capsys, change, message):
    """`census predict` in this process (the same `main` the command runs): the error is the
    exit message, and nothing is printed as a prediction."""
    instance = predict.read_instances(TEST_JSON)[0]
    change(instance)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(instance) + "\n")
    with pytest.raises(SystemExit) as exit:
        cli.main(["predict", "--model-dir", str(export_dir), "--json-instances", str(bad)])
    assert str(exit.value.code).startswith("census predict: ") and message in exit.value.code
    assert capsys.readouterr().out == ""


def test_a_bad_value_among_good_ones_names_its_instance(export_dir, tmp_path):
    """The report's own case, as the command: exit status 1, one line, no table, no NaN."""
    good = predict.read_instances(TEST_JSON)
    bad = tmp_path / "bad.json"
    bad.write_text("\n".join(json.dumps(i) for i in [*good, {**good[0], "capital_loss": -100}]))
    done = run_census("predict", "--model-dir", export_dir, "--json-instances", bad)
    assert done.returncode == 1 and not done.stdout
    assert done.stderr.strip().splitlines()[-1] == (
        "census predict: instance 3: field 'capital_loss' must be at least 0, got -100")


def test_invalid_json_and_missing_model(export_dir, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"age": 3}\n{oops\n')
    done = run_census("predict", "--model-dir", export_dir, "--json-instances", bad)
    assert done.returncode == 1 and "line 2: not valid JSON" in done.stderr
    done = run_census("predict", "--model-dir", tmp_path, "--json-instances", TEST_JSON)
    assert done.returncode == 1 and "no SavedModel in" in done.stderr
    assert "Traceback" not in done.stderr
