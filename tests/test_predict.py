import json

import pytest

from census import cli, instances, predict, schema, signature
from conftest import REPO, run_census

pytestmark = pytest.mark.slow  # a trained model's exports, predicted from

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


def test_json_format_and_base_dir(export_dir, capsys):
    cli.main(["predict", "--model-dir", str(export_dir.parent), "--json-instances",
              str(TEST_JSON), "--format", "json"])  # in this process: the command's main
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [sorted(r) for r in rows] == [sorted(signature.OUTPUT_KEYS)] * 2
    assert all(abs(sum(r["probabilities"]) - 1) < 1e-5 for r in rows)


def test_a_base_dir_means_its_newest_version_with_a_saved_model(export_dir, tmp_path):
    """A version still being copied in has no saved_model.pb yet: not the newest version."""
    import shutil
    shutil.copytree(export_dir, tmp_path / "1")
    shutil.copytree(export_dir / "variables", tmp_path / "2" / "variables")
    assert predict.resolve_model_dir(str(tmp_path)) == str(tmp_path / "1")
    assert predict.resolve_model_dir(str(tmp_path / "1")) == str(tmp_path / "1")


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
    """In this process (the command's main): each is the exit message, one line (status 1, no
    traceback); the command's own exit status is test_a_bad_value_among_good_ones'."""
    bad = tmp_path / "bad.json"
    bad.write_text('{"age": 3}\n{oops\n')
    for model_dir, path, words in [(export_dir, bad, "line 2: not valid JSON"),
                                   (tmp_path, TEST_JSON, "no SavedModel in")]:
        with pytest.raises(SystemExit) as exit:
            cli.main(["predict", "--model-dir", str(model_dir), "--json-instances",
                      str(path)])
        message = exit.value.code
        assert isinstance(message, str) and "\n" not in message and words in message
        assert message.startswith("census predict: ")


# --- every export format, with the input kind that fits it -----------------------------------

PEOPLE = predict.read_instances(TEST_JSON)


def csv_rows(people):
    """The people as CSV rows of the training files without the label (fnlwgt: any number)."""
    return [", ".join("189778" if c == "fnlwgt" else str(p[c]).strip()
                      for c in signature.CSV_FIELDS) for p in people]


def write_inputs(tmp_path):
    """test.json's people in every input kind: JSON objects, CSV rows (as text lines and as
    JSON strings), tf.Example records (as a TFRecord file and as JSON {"b64": …})."""
    import base64

    import tensorflow as tf
    rows = csv_rows(PEOPLE)
    examples = [instances.to_example(instances.check_fields(n, p)) for n, p in
                enumerate(PEOPLE, 1)]
    paths = {"text": tmp_path / "rows.csv", "csv-json": tmp_path / "rows.json",
             "tfrecord": tmp_path / "people.tfrecord", "b64-json": tmp_path / "b64.json",
             "named-csv-json": tmp_path / "named-rows.json",
             "named-b64-json": tmp_path / "named-b64.json"}
    paths["text"].write_text("\n".join(rows) + "\n")
    paths["csv-json"].write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with tf.io.TFRecordWriter(str(paths["tfrecord"])) as writer:
        for e in examples:
            writer.write(e)
    paths["b64-json"].write_text("\n".join(json.dumps({"b64": base64.b64encode(e).decode()})
                                           for e in examples) + "\n")
    # TF Serving's row format may name a one-input signature's input (json_tensor.cc)
    paths["named-csv-json"].write_text("\n".join(json.dumps({"csv_row": r}) for r in rows))
    paths["named-b64-json"].write_text("\n".join(
        json.dumps({"examples": {"b64": base64.b64encode(e).decode()}}) for e in examples))
    return paths


@pytest.mark.parametrize("fmt, flag, source", [
    ("CSV", "--text-instances", "text"), ("CSV", "--json-instances", "csv-json"),
    ("EXAMPLE", "--tfrecord-instances", "tfrecord"), ("EXAMPLE", "--json-instances", "b64-json"),
    ("CSV", "--json-instances", "named-csv-json"),
    ("EXAMPLE", "--json-instances", "named-b64-json")])
def test_every_export_format_predicts_from_the_input_that_fits_it(exports, tmp_path, capsys,
                                                                   fmt, flag, source):
    """The same people through each export format give JSON's table, number for number."""
    path = write_inputs(tmp_path)[source]
    cli.main(["predict", "--model-dir", str(exports["JSON"]), "--json-instances",
              str(TEST_JSON)])
    reference = capsys.readouterr().out
    cli.main(["predict", "--model-dir", str(exports[fmt]), flag, str(path)])
    assert capsys.readouterr().out == reference and reference.startswith("CLASS_IDS")


@pytest.mark.parametrize("fmt, flag, source, words", [
    ("CSV", "--json-instances", "test.json",
     "instance 1: this export (CSV format) takes a CSV row per instance"),
    ("EXAMPLE", "--json-instances", "test.json",
     "instance 1: this export (EXAMPLE format) takes a serialized tf.train.Example"),
    ("EXAMPLE", "--text-instances", "text", "this export (EXAMPLE format) takes serialized "
     "tf.train.Example records (--tfrecord-instances"),
    ("JSON", "--text-instances", "text",
     "this export (JSON format) takes JSON objects with the 13 inputs (--json-instances)"),
    ("JSON", "--tfrecord-instances", "tfrecord", "this export (JSON format) takes JSON"),
    ("CSV", "--tfrecord-instances", "tfrecord", "this export (CSV format) takes CSV rows"),
])
def test_a_mismatch_of_input_and_export_is_one_sentence(exports, tmp_path, fmt, flag, source,
                                                        words):
    path = TEST_JSON if source == "test.json" else write_inputs(tmp_path)[source]
    with pytest.raises(SystemExit) as exit:
        cli.main(["predict", "--model-dir", str(exports[fmt]), flag, str(path)])
    assert words in str(exit.value.code) and "\n" not in str(exit.value.code)


@pytest.mark.parametrize("row, words", [
    ("39, State-gov, 77516, Bachelors", "instance 1: 4 fields instead of 14"),
    ("39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, "
     "Male, 2174, 0, 40, United-States, <=50K", "15 fields instead of 14"),
    ("old, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, "
     "Male, 2174, 0, 40, United-States", "field 'age' is not a valid float: 'old'"),
    ("39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, "
     "Male, 2174, -100, 40, United-States", "field 'capital_loss' must be at least 0"),
    ("39, State-gov, -5, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, "
     "Male, 2174, 0, 40, United-States", "field 'fnlwgt' must be a number of at least 0"),
])
def test_bad_csv_rows_name_instance_and_field(exports, tmp_path, row, words):
    path = tmp_path / "rows.csv"
    path.write_text(row + "\n")
    with pytest.raises(SystemExit) as exit:
        cli.main(["predict", "--model-dir", str(exports["CSV"]), "--text-instances", str(path)])
    assert words in str(exit.value.code)


ROW = ("39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, "
       "White, Male, 2174, 0, 40, United-States")


@pytest.mark.parametrize("flag, lines, words", [
    ("--text-instances", [ROW, ROW.replace("Adm-clerical", 'Adm"clerical')],
     "instance 2: Unquoted fields cannot have quotes/CRLFs inside"),
    ("--json-instances", [json.dumps(ROW), json.dumps(ROW + "\r\n")],
     "instance 2: Unquoted fields cannot have quotes/CRLFs inside"),
    ("--text-instances", ["١٢" + ROW[2:]], "instance 1: field 'age' is not a valid float"),
    ("--text-instances", [ROW.replace(" 2174", " 1e39")],
     "instance 1: field 'capital_gain' is out of the float32 range"),
    ("--json-instances", [json.dumps(ROW.replace("39", "nan", 1))],
     "instance 1: field 'age' is out of the float32 range"),
], ids=["stray-quote", "crlf-in-json", "unicode-digits", "overflow", "nan"])
def test_rows_the_csv_export_refuses_are_one_sentence(exports, tmp_path, capsys, flag, lines,
                                                     words):
    """Issue 19: these passed the checks, then DecodeCSV failed with a traceback; now the
    command's exit message is one sentence naming the instance, and nothing is predicted."""
    path = tmp_path / "rows.txt"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SystemExit) as exit:
        cli.main(["predict", "--model-dir", str(exports["CSV"]), flag, str(path)])
    message = str(exit.value.code)
    assert message.startswith(f"census predict: {words}") and "\n" not in message, message
    assert capsys.readouterr().out == ""


def test_rows_with_a_byte_order_mark_and_crlf_predict(exports, tmp_path, capsys):
    rows = tmp_path / "rows.csv"
    rows.write_bytes(b"\xef\xbb\xbf" + (ROW + "\r\n").encode() * 2)
    cli.main(["predict", "--model-dir", str(exports["CSV"]), "--text-instances", str(rows)])
    assert len(capsys.readouterr().out.splitlines()) == 3  # the header and two rows


def test_a_gzipped_tfrecord_file_takes_compression(exports, tmp_path, capsys):
    import gzip
    plain = write_inputs(tmp_path)["tfrecord"]
    zipped = tmp_path / "people.tfrecord.gz"
    zipped.write_bytes(gzip.compress(plain.read_bytes()))
    with pytest.raises(SystemExit) as exit:
        cli.main(["predict", "--model-dir", str(exports["EXAMPLE"]), "--tfrecord-instances",
                  str(zipped)])
    message = str(exit.value.code)
    assert message.startswith(f"census predict: {zipped}: not a readable TFRecord file (")
    assert "--compression GZIP or ZLIB" in message and "\n" not in message
    cli.main(["predict", "--model-dir", str(exports["EXAMPLE"]), "--tfrecord-instances",
              str(plain)])
    reference = capsys.readouterr().out
    cli.main(["predict", "--model-dir", str(exports["EXAMPLE"]), "--tfrecord-instances",
              str(zipped), "--compression", "GZIP"])
    assert capsys.readouterr().out == reference and reference.startswith("CLASS_IDS")


def test_bad_examples_name_instance_and_feature(exports, tmp_path):
    import tensorflow as tf
    person = instances.check_fields(1, PEOPLE[0])
    broken = {"capital_loss": -100.0}
    cases = [(instances.to_example({**person, **broken}), "feature 'capital_loss' must be at"),
             (instances.to_example({k: v for k, v in person.items() if k != "race"}),
              "missing feature 'race'"), (b"\x01\x02garbage", "not a serialized tf.train.Example")]
    for record, words in cases:
        path = tmp_path / "bad.tfrecord"
        with tf.io.TFRecordWriter(str(path)) as writer:
            writer.write(record)
        with pytest.raises(SystemExit) as exit:
            cli.main(["predict", "--model-dir", str(exports["EXAMPLE"]), "--tfrecord-instances",
                      str(path)])
        assert words in str(exit.value.code)


def test_string_fields_may_come_as_b64(export_dir, capsys):
    """TF Serving's binary encoding, {"b64": …}, for any string input."""
    import base64
    encoded = [{k: {"b64": base64.b64encode(v.encode()).decode()} if isinstance(v, str) else v
                for k, v in p.items()} for p in PEOPLE]
    assert (predict.predict(export_dir, encoded)["logits"] ==
            predict.predict(export_dir, PEOPLE)["logits"]).all()
    with pytest.raises(predict.PredictError, match="field 'race' not valid base64"):
        predict.predict(export_dir, [{**PEOPLE[0], "race": {"b64": "%%%"}}])
