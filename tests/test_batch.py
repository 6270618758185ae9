"""The local batch prediction job (census.batch.local, `census predict --output-dir`): the test
split through a real export, its folder checked line by line; bad instances of every kind as
errors lines while the job goes on; every input kind and export format; gs:// in and out on a
real Cloud Storage emulator."""
import base64
import gzip
import json
import re

import numpy as np
import pytest

from census import cli, instances, predict, signature
from census.batch import batches, layout, local
from conftest import run_census
from gcs_emulator import fake_gcs_server
from test_predict import PEOPLE, ROW

FOLDER = re.compile(r"prediction-census-\d{4}_\d\d_\d\dT\d\d_\d\d_\d\d_\d{3}Z")


def lines_of(path):
    return path.read_text().splitlines()


def test_the_test_split_line_by_line(export_dir, census_files, tmp_path):
    """Every line of the test split comes back in order, its instance echoed as given, its
    prediction the signature's own (floats read back to the same float32), in shards of
    `shard_rows`; the score read back is `predict.score`'s on the same file."""
    given = tmp_path / "test.jsonl"
    labelled = local.write_instances(census_files.test, given, "json")
    result = local.run(export_dir, [given], tmp_path / "out", batch_size=1024, shard_rows=5000)
    folder = tmp_path / "out" / result.folder.rsplit("/", 1)[1]
    assert FOLDER.fullmatch(folder.name) and sorted(p.name for p in folder.iterdir()) == [
        "prediction.errors_stats-00000-of-00001",  # no part file left
        *(f"prediction.results-0000{i}-of-00004" for i in range(4))]
    assert (result.rows, result.predicted, result.errors) == (len(labelled), len(labelled), 0)
    shards = [lines_of(folder / f"prediction.results-0000{i}-of-00004") for i in range(4)]
    assert [len(s) for s in shards] == [5000, 5000, 5000, len(labelled) - 15000]
    assert lines_of(folder / "prediction.errors_stats-00000-of-00001") == []
    results = [json.loads(line) for shard in shards for line in shard]
    sent = [json.loads(line) for line in lines_of(given)]
    assert [r["instance"] for r in results] == sent == [i for i, _ in labelled]
    expected = predict.rows(predict.predict(export_dir, sent))
    for line, want in zip(results, expected):
        got = line["prediction"]
        assert list(got) == list(signature.OUTPUT_KEYS)
        assert got["classes"] == want["classes"] and got["class_ids"] == want["class_ids"]
        for key in ("logistic", "logits", "probabilities"):
            assert np.array_equal(np.float32(got[key]), np.float32(want[key])), key
    scores = layout.score(layout.read(result.folder), labelled)
    reference = predict.score(export_dir, [census_files.test])
    assert scores["rows"] == reference["rows"] == len(labelled) and scores["unmatched"] == 0
    assert scores["accuracy"] == pytest.approx(reference["accuracy"], abs=1e-6)  # float32
    assert scores["auc"] == pytest.approx(reference["auc"], abs=1e-9)


GOOD = json.dumps(PEOPLE[0])
BAD_JSON = [  # (line, reason): the reasons `census predict` gives, now an errors line each
    (json.dumps({**PEOPLE[0], "age": -3}), "field 'age' must be from 0 to 150, got -3"),
    (json.dumps({**PEOPLE[0], "agee": 3}), "unknown field 'agee'"),
    (json.dumps({k: v for k, v in PEOPLE[0].items() if k != "race"}), "missing field 'race'"),
    (json.dumps({**PEOPLE[0], "age": "39"}), "field 'age' must be a number, got '39'"),
    (json.dumps({**PEOPLE[0], "hours_per_week": True}),
     "field 'hours_per_week' must be a number, got True"),
    (GOOD.replace('"age": 25', '"age": NaN'), "field 'age' is out of the float32 range"),
    (GOOD.replace('"capital_gain": 0', '"capital_gain": 1' + "0" * 400),
     "field 'capital_gain' is out of the float32 range"),
    (GOOD.replace('" Private"', '"\\ud800"'), "field 'workclass' not Unicode text"),
    (GOOD.replace('"capital_gain": 0', '"capital_gain": 3.5e38'),  # beyond float32
     "field 'capital_gain' is out of the float32 range"),
    ("{not json", "not valid JSON (Expecting property name"),
    ("[1, 2]", "expected a JSON object with the input fields"),
]


def test_bad_instances_become_errors_lines_and_the_job_goes_on(export_dir, tmp_path):
    """Each bad line is an errors line naming the file, the line and the reason, its instance
    echoed; blank lines are skipped (but counted as lines), a byte order mark and CRLF are
    read through; every good line is predicted, in order, in the fast path's batches and the
    slow path's alike."""
    path = tmp_path / "mixed.jsonl"
    body = [GOOD] * 3 + [""] + [line for line, _ in BAD_JSON] + [GOOD]
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(body).encode() + b"\n\xff\xfe\n")
    for batch_size in (1, 4, 64):
        result = local.run(export_dir, [path], tmp_path / f"out{batch_size}",
                           batch_size=batch_size)
        assert (result.predicted, result.errors) == (4, len(BAD_JSON) + 1)
        errors = list(layout.read(result.folder, layout.ERRORS))
        expected = [(f"{path} line {n}: ", reason) for n, (_, reason) in
                    enumerate(BAD_JSON, 5)] + [(f"{path} line {len(body) + 1}: ",
                                                "not UTF-8 text")]
        assert len(errors) == len(expected)
        for error, (where, reason) in zip(errors, expected):
            assert error["error"]["status"] == "INVALID_ARGUMENT"
            assert error["error"]["message"].startswith(where + reason), error
        assert errors[0]["instance"] == {**PEOPLE[0], "age": -3}
        assert errors[5]["instance"] == BAD_JSON[5][0]  # not strict JSON: shown as its text
        assert errors[6]["instance"]["capital_gain"] == 10 ** 400
        results = list(layout.read(result.folder))
        assert [r["instance"] for r in results] == [PEOPLE[0]] * 4


def test_the_fast_path_writes_what_the_slow_path_writes(exports, export_dir, tmp_path):
    """One valid batch of each input kind, both ways: the same bytes."""
    rows = [ROW, ROW.replace("39", "52", 1)]
    examples = [instances.to_example(instances.check_fields(1, p)) for p in PEOPLE]
    cases = [(export_dir, "json", [(json.dumps(p) + "\n").encode() for p in PEOPLE]),
             (exports["CSV"], "text", [(r + "\n").encode() for r in rows]),
             (exports["EXAMPLE"], "tfrecord", examples)]
    for model, kind, batch in cases:
        function, fmt = predict.load_signature(str(model), kind=kind)
        predictor = batches.Predictor(function, fmt, kind)
        fast = predictor.fast(batch)
        assert fast is not None, kind
        assert predictor.slow("f", 1, batch) == (fast, [], len(batch)), kind


PERSON = PEOPLE[0]
JSON_LAYOUTS = [  # (a line, whether the fast path reads a batch of such lines in the graph)
    (GOOD, True),
    (json.dumps(PERSON, separators=(",", ":")), True),
    (json.dumps(PERSON, separators=(" ,\t", " :  ")), True),
    (json.dumps(dict(reversed(PERSON.items()))), True),  # the keys in another order
    (GOOD.replace('"age": 25', '"age": 2.5e1').replace('"capital_loss": 0',
                                                       '"capital_loss": 0.0'), True),
    (json.dumps({**PERSON, "workclass": "age", "race": 'a{b}: c, d'}), True),
    (GOOD.replace('"capital_loss": 0', '"capital_loss": -0'), False),  # a sign
    (GOOD.replace('"capital_gain": 0', '"capital_gain": 1234567890123456'), False),
    (GOOD.replace('" Private"', '" Priv\\u0061te"'), False),  # an escape
    (GOOD.replace('" Private"', '" Bogot\u00e1"'), False),  # not ASCII
    (GOOD.replace('" Private"', '{"b64": "IFByaXZhdGU="}'), False),
    (GOOD.replace('{"age": 25', '{"age": 99, "age": 25'), False),  # a key twice
]


def test_json_lines_read_in_the_graph_as_pythons_json_reads_them(export_dir):
    """JSON lines written plainly, whatever their spacing and key order, are read by the
    fast path's regular expression; every other line is left to Python's `json`. Either
    way, a batch's results are those of the slow path, byte for byte."""
    function, fmt = predict.load_signature(str(export_dir), kind="json")
    predictor = batches.Predictor(function, fmt, "json")
    for line, plain in JSON_LAYOUTS:
        same_order = list(json.loads(line)) == list(PERSON)
        for batch, fast_path in (
                ([f"{line}\n".encode(), f"{line}\r\n".encode(), line.encode()], plain),
                ([f"{GOOD}\n".encode(), line.encode()], plain and same_order)):
            fast = predictor.fast(batch)
            slow = predictor.slow("f", 1, batch)
            assert slow[1:] == ([], len(batch)), line  # all predicted
            assert (fast is not None) == fast_path, line
            assert fast is None or fast == slow[0], line


def test_every_input_kind_and_export_format(exports, tmp_path):
    """CSV rows (text) into the CSV export, Examples (TFRecord, plain and GZIP) into the
    EXAMPLE export, with a refused one each; a TFRecord file cut short ends in a DATA_LOSS
    line after the records it could read."""
    import tensorflow as tf
    text = tmp_path / "rows.csv"
    text.write_text("\n".join([ROW, ROW.replace("Adm-clerical", 'Adm"clerical'), ROW]) + "\n")
    result = local.run(exports["CSV"], [text], tmp_path / "csv", kind="text")
    assert (result.predicted, result.errors) == (2, 1)
    [error] = layout.read(result.folder, layout.ERRORS)
    assert error["instance"] == ROW.replace("Adm-clerical", 'Adm"clerical')
    assert error["error"]["message"].startswith(
        f"{text} line 2: Unquoted fields cannot have quotes/CRLFs inside")
    assert [r["instance"] for r in layout.read(result.folder)] == [ROW, ROW]

    good = instances.to_example(instances.check_fields(1, PEOPLE[0]))
    bad = instances.to_example({**instances.check_fields(1, PEOPLE[0]), "capital_loss": -1.0})
    records = tmp_path / "people.tfrecord"
    with tf.io.TFRecordWriter(str(records)) as writer:
        for record in (good, bad, good):
            writer.write(record)
    zipped = tmp_path / "people.tfrecord.gz"
    zipped.write_bytes(gzip.compress(records.read_bytes()))
    for path, compression in ((records, ""), (zipped, "GZIP")):
        result = local.run(exports["EXAMPLE"], [path], tmp_path / "ex", kind="tfrecord",
                           compression=compression)
        assert (result.predicted, result.errors) == (2, 1)
        [error] = layout.read(result.folder, layout.ERRORS)
        assert error["error"]["message"].startswith(
            f"{path} record 2: feature 'capital_loss' must be at least 0")
        assert error["instance"] == {"b64": base64.b64encode(bad).decode()}
        assert [base64.b64decode(r["instance"]["b64"]) for r in layout.read(result.folder)] \
            == [good, good]
    cut = tmp_path / "cut.tfrecord"
    cut.write_bytes(records.read_bytes()[:-7])
    result = local.run(exports["EXAMPLE"], [cut], tmp_path / "cut", kind="tfrecord")
    assert (result.predicted, result.errors) == (1, 2)  # good, then bad, then lost
    *_, lost = layout.read(result.folder, layout.ERRORS)
    assert lost["error"]["status"] == "DATA_LOSS" and lost["instance"] is None
    assert lost["error"]["message"].startswith(f"{cut}: cannot be read after record 2 (")


def test_a_number_beyond_float32_is_refused_in_every_kind(exports, export_dir, tmp_path):
    """A number no float32 holds (3.5e38, infinity) is an errors line for every input kind:
    the fast path leaves it to the slow path, which refuses it."""
    import tensorflow as tf
    huge = tmp_path / "huge"
    huge.mkdir()
    (huge / "people.jsonl").write_text(GOOD.replace('"capital_gain": 0',
                                                    '"capital_gain": 3.5e38') + "\n")
    (huge / "rows.csv").write_text(ROW.replace(", 2174,", ", 3.5e38,") + "\n")
    with tf.io.TFRecordWriter(str(huge / "people.tfrecord")) as writer:
        writer.write(instances.to_example({**instances.check_fields(1, PERSON),
                                           "capital_gain": float("inf")}))
    for model, kind, name in ((export_dir, "json", "people.jsonl"),
                              (exports["CSV"], "text", "rows.csv"),
                              (exports["EXAMPLE"], "tfrecord", "people.tfrecord")):
        result = local.run(model, [huge / name], tmp_path / kind, kind=kind)
        assert (result.predicted, result.errors) == (0, 1), kind
        [error] = layout.read(result.folder, layout.ERRORS)
        assert "capital_gain" in error["error"]["message"], error


def test_each_run_writes_a_new_folder_and_bad_settings_write_nothing(export_dir, tmp_path):
    given = tmp_path / "people.jsonl"
    given.write_text(GOOD + "\n")
    out = tmp_path / "out"
    first = local.run(export_dir, [given], out)
    second = local.run(export_dir, [given], out)
    assert first.folder != second.folder
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f.rsplit("/", 1)[1] for f in (first.folder, second.folder))
    for kwargs, words in [({"input_paths": [tmp_path / "nope.jsonl"]}, "no such input file"),
                          ({"kind": "tfrecord"}, "this export (JSON format) takes"),
                          ({"compression": "GZIP"}, "--compression is for TFRecord files"),
                          ({"batch_size": 0}, "batch_size must be a whole number"),
                          ({"kind": "csv"}, "kind must be one of json, text, tfrecord")]:
        settings = {"input_paths": [given], **kwargs}
        with pytest.raises(instances.PredictError, match=re.escape(words)):
            local.run(export_dir, output_dir=tmp_path / "none", **settings)
        assert not (tmp_path / "none").exists()


def test_census_predict_output_dir(export_dir, tmp_path, capsys):
    """The command line: the summary on stdout, a progress bar only in a terminal (not in a
    notebook's `!` output); one sentence for a mistake. The bar counts the refused."""
    given = tmp_path / "people.jsonl"
    given.write_text("\n".join([GOOD, "{oops", GOOD]) + "\n")
    done = run_census("predict", "--model-dir", export_dir, "--json-instances", given,
                      "--output-dir", tmp_path / "out", "--batch-size", "2")
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"3 instances: 2 predicted, 1 refused, in [\d.]+ s \([\d,]+ "
                        rf"instances/s\) -> {re.escape(str(tmp_path / 'out'))}/"
                        rf"{FOLDER.pattern}\n", done.stdout), done.stdout
    assert "batch prediction" not in done.stderr
    local.run(export_dir, [given], tmp_path / "out", batch_size=2, progress=True)
    bar = capsys.readouterr().err
    assert "batch prediction: 3 instances [" in bar and "refused=1" in bar, bar
    with pytest.raises(SystemExit) as exit:
        cli.main(["predict", "--url", "http://127.0.0.1:1", "--json-instances", str(given),
                  "--output-dir", str(tmp_path / "x")])
    assert "it takes --model-dir, not --url" in str(exit.value.code)


def test_gs_in_and_out_on_a_cloud_storage_emulator(export_dir, census_files, tmp_path,
                                                   monkeypatch):
    """Instances read from gs://, the folder written to gs:// (objects whole, once the job
    ends), read back and scored from there."""
    given = tmp_path / "seed" / "course-bucket" / "batch" / "test.jsonl"
    given.parent.mkdir(parents=True)
    labelled = local.write_instances(census_files.test, given, "json")
    with fake_gcs_server(tmp_path / "seed", log_path=tmp_path / "gcs.log") as url:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        result = local.run(export_dir, ["gs://course-bucket/batch/test.jsonl"],
                           "gs://course-bucket/batch/predictions", batch_size=1024,
                           shard_rows=10_000)
        assert FOLDER.fullmatch(result.folder.rsplit("/", 1)[1])
        assert result.folder.startswith("gs://course-bucket/batch/predictions/")
        assert result.files == ("prediction.results-00000-of-00002",
                                "prediction.results-00001-of-00002",
                                "prediction.errors_stats-00000-of-00001")
        assert layout.files(result.folder) == [f"{result.folder}/{name}" for name in
                                               result.files[:2]]
        scores = layout.score(layout.read(result.folder), labelled)
        with pytest.raises(instances.PredictError, match="no such input file: gs://"):
            local.run(export_dir, ["gs://course-bucket/batch/nope.jsonl"], tmp_path / "o")
    local_run = local.run(export_dir, [given], tmp_path / "local", batch_size=1024)
    assert scores == layout.score(layout.read(local_run.folder), labelled)
    assert scores["rows"] == len(labelled)


def test_a_folder_is_read_and_scored_whatever_its_order_and_number_style(tmp_path):
    """Vertex AI keeps no order across files and may echo 25 as 25.0; its errors lines are
    (message, count) pairs. Equal instances with different labels score the same whichever
    label each takes."""
    people = [{"age": 25, "gender": " Male"}, {"age": 52, "gender": " Female"},
              {"age": 25, "gender": " Male"}]
    labelled = list(zip(people, [0, 1, 1]))
    lines = [{"instance": {"age": 52.0, "gender": " Female"},
              "prediction": {"class_ids": [1], "logits": [2.0]}},
             {"instance": people[0], "prediction": {"class_ids": [0], "logits": [-1.0]}},
             {"instance": people[0], "prediction": {"class_ids": [0], "logits": [-1.0]}},
             {"instance": {"age": 99}, "prediction": {"class_ids": [0], "logits": [0.0]}}]
    folder = tmp_path / "prediction-census-2026_01_01T00_00_00_000Z"
    folder.mkdir()
    for name, part in (("prediction.results-00001-of-00002", lines[:1]),
                       ("prediction.results-00000-of-00002", lines[1:])):
        (folder / name).write_text("".join(json.dumps(line) + "\n" for line in part))
    (folder / "prediction.errors_stats-00000-of-00001").write_text(
        "('Post request fails. Cannot get predictions.', 16)\n")
    read = list(layout.read(str(folder)))
    assert read == lines[1:] + lines[:1]  # shard order
    assert layout.score(read, labelled) == {"accuracy": 2 / 3, "auc": 0.75, "rows": 3,
                                            "unmatched": 1}
    assert list(layout.read(str(folder), layout.ERRORS)) == [
        {"error": {"message": "Post request fails. Cannot get predictions."}, "count": 16}]
    (folder / "prediction.results-00001-of-00002").write_text("[1]\n")
    with pytest.raises(ValueError, match="00001-of-00002 line 1: not a JSON object"):
        list(layout.read(str(folder)))
