"""An export shaped like the 2017 census example's (Estimator, multi-tensor receiver): one
signature, `predict`, no `serving_default`, and seven outputs. `census predict`, its batch
job, `census serve` (TF Serving's and Vertex AI's routes) and the client answer from
`predict` when no signature is named, and pass the two extra outputs through."""
import json
import re

import httpx
import numpy as np
import pytest

from census import cli, predict, schema, signature
from census.batch import layout, local
from census.serving import process as serving_process
from conftest import REPO, run_census

TEST_JSON = REPO / "test.json"
INSTANCES = [json.loads(line) for line in TEST_JSON.read_text().splitlines() if line]
CLASSES = ["0", "1"]  # the 2017 export's classes: its class ids, as strings
SEVEN = [*signature.OUTPUT_KEYS, "all_class_ids", "all_classes"]  # the order they are shown


def save_2017_shaped(path):
    """A SavedModel with a single `predict` signature: the 13 inputs of shape (batch,)
    (float32 or string, `schema.INPUT_DTYPES`) → class_ids int64 (batch, 1), classes string
    (batch, 1), logistic and logits float32 (batch, 1), probabilities float32 (batch, 2),
    all_class_ids int32 (batch, 2), all_classes string (batch, 2). The classes are the class
    ids as strings, "0" and "1", as the 2017 Estimator (no label vocabulary) wrote them; the
    logit is a line in age, exact in binary floating point, so that the outputs follow the
    inputs. Like the 2017 graph, it refuses an empty batch."""
    import tensorflow as tf

    class Museum(tf.Module):
        def __init__(self):
            super().__init__()
            self.weight, self.bias = tf.Variable(0.125), tf.Variable(-4.0)

        @tf.function(input_signature=[{c: tf.TensorSpec([None], schema.INPUT_DTYPES[c], name=c)
                                       for c in schema.INPUT_COLUMNS}])
        def predict(self, features):
            # the 2017 graph's feature columns refuse an empty batch (SparseReshape), so does this
            tf.debugging.assert_positive(tf.size(features["age"]), message="an empty batch")
            logits = (self.weight * features["age"] + self.bias)[:, None]
            logistic = tf.sigmoid(logits)
            class_ids = tf.cast(logistic > 0.5, tf.int64)
            n = tf.shape(logits)[0]
            return {"class_ids": class_ids,
                    "classes": tf.strings.as_string(class_ids),
                    "logistic": logistic, "logits": logits,
                    "probabilities": tf.concat([1.0 - logistic, logistic], axis=1),
                    "all_class_ids": tf.tile(tf.constant([[0, 1]], tf.int32), [n, 1]),
                    "all_classes": tf.tile(tf.constant([CLASSES]), [n, 1])}

    module = Museum()
    tf.saved_model.save(module, str(path), signatures={"predict": module.predict})
    return path


@pytest.fixture(scope="module")
def museum(tmp_path_factory):
    """An export base directory (…/export/census) holding the 2017-shaped export as version 1."""
    base = tmp_path_factory.mktemp("museum") / "export" / "census"
    save_2017_shaped(base / "1")
    return base


def expected(instances):
    """What the export's line in age gives for `instances`: (logits, class ids)."""
    logits = [0.125 * i["age"] - 4.0 for i in instances]
    return logits, [int(x > 0) for x in logits]


def check_rows(rows, instances):
    logits, ids = expected(instances)
    assert [list(r) for r in rows] == [SEVEN] * len(instances)
    for row, logit, class_id in zip(rows, logits, ids, strict=True):
        assert row["class_ids"] == [class_id] and row["classes"] == [CLASSES[class_id]]
        np.testing.assert_allclose(row["logits"], [logit], rtol=1e-5)
        assert row["all_class_ids"] == [0, 1] and row["all_classes"] == CLASSES


def test_the_default_is_serving_default_else_predict_and_a_missing_one_is_named():
    both, museum_only = {"serving_default", "predict"}, {"predict"}
    assert signature.choose(None, both) == signature.choose("", both) == "serving_default"
    assert signature.choose("predict", both) == "predict"
    assert signature.choose(None, museum_only) == "predict"
    assert signature.choose("serving_default", museum_only) == "predict"
    with pytest.raises(signature.MissingSignature) as missing:
        signature.choose("nonexistent", museum_only)
    assert str(missing.value) == "the export has no signature 'nonexistent' (it has: predict)"
    with pytest.raises(signature.MissingSignature, match=r"\(it has: classify, regress\)$"):
        signature.choose(None, {"regress", "classify"})
    assert signature.output_order(["zeta", "logits", "all_classes", "class_ids"]) == [
        "class_ids", "logits", "all_classes", "zeta"]


def test_census_predict_prints_all_seven_outputs(museum):
    done = run_census("predict", "--model-dir", museum / "1", "--json-instances", TEST_JSON)
    assert done.returncode == 0, done.stderr[-2000:]
    header, *rows = done.stdout.strip().splitlines()
    assert header.split() == [k.upper() for k in SEVEN]
    assert len(rows) == len(INSTANCES)
    for row, class_id in zip(rows, expected(INSTANCES)[1], strict=True):
        cells = [json.loads(cell) for cell in re.split(r"\s{2,}", row)]
        assert len(cells) == 7 and cells[:2] == [[class_id], [str(class_id)]]
        assert cells[5:] == [[0, 1], CLASSES]


def test_json_rows_and_the_default_named_explicitly(museum, capsys):
    for named in ([], ["--signature", "serving_default"], ["--signature", "predict"]):
        cli.main(["predict", "--model-dir", str(museum), "--json-instances", str(TEST_JSON),
                  "--format", "json", *named])
        check_rows([json.loads(line) for line in capsys.readouterr().out.splitlines()],
                   INSTANCES)


def test_a_missing_signature_or_input_is_one_sentence_naming_what_there_is(museum, tmp_path,
                                                                           capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main(["predict", "--model-dir", str(museum), "--json-instances", str(TEST_JSON),
                  "--signature", "nonexistent"])
    assert exit.value.code == ("census predict: the export has no signature 'nonexistent' "
                               "(it has: predict)")
    person = dict(INSTANCES[0])
    del person["occupation"]
    given = tmp_path / "missing.json"
    given.write_text(json.dumps(person) + "\n")
    with pytest.raises(SystemExit) as exit:
        cli.main(["predict", "--model-dir", str(museum), "--json-instances", str(given)])
    assert exit.value.code == ("census predict: instance 1: missing field 'occupation' "
                               f"(inputs are: {', '.join(schema.INPUT_COLUMNS)})")
    assert capsys.readouterr().out == ""


def test_the_batch_job_writes_all_seven_outputs(museum, tmp_path):
    given = tmp_path / "people.jsonl"
    given.write_text("".join(json.dumps(i) + "\n" for i in INSTANCES * 3))
    for batch_size in (64, 1):  # the fast path (one call), and a batch per instance
        result = local.run(museum, [given], tmp_path / f"out{batch_size}", batch_size=batch_size)
        assert (result.rows, result.predicted, result.errors) == (6, 6, 0)
        results = list(layout.read(result.folder))
        assert [r["instance"] for r in results] == INSTANCES * 3
        check_rows([r["prediction"] for r in results], INSTANCES * 3)
    done = run_census("predict", "--model-dir", museum, "--json-instances", given,
                      "--output-dir", tmp_path / "cli")
    assert done.returncode == 0 and "6 instances: 6 predicted, 0 refused" in done.stdout, \
        done.stderr[-2000:]


def test_the_course_check_calls_predict(museum):
    from census.course.checks import export as checks
    outputs = checks._predict(museum, INSTANCES)
    assert sorted(outputs) == sorted(SEVEN)
    np.testing.assert_allclose(outputs["logits"][:, 0], expected(INSTANCES)[0], rtol=1e-5)


@pytest.fixture(scope="module")
def served(museum):
    with serving_process.BackgroundServer(museum, poll_seconds=0.2) as running, \
            httpx.Client(base_url=running.url, timeout=30) as http:
        yield running, http


def test_serve_answers_tf_serving_rows_and_columns_from_predict(served):
    _, http = served
    rows = http.post("/v1/models/census:predict", json={"instances": INSTANCES})
    assert rows.status_code == 200, rows.text
    check_rows(rows.json()["predictions"], INSTANCES)
    named = http.post("/v1/models/census/versions/1:predict",
                      json={"signature_name": "predict", "instances": INSTANCES})
    assert named.json() == rows.json()
    columns = http.post("/v1/models/census:predict", json={
        "inputs": {c: [i[c] for i in INSTANCES] for c in schema.INPUT_COLUMNS}})
    assert columns.status_code == 200, columns.text
    outputs = columns.json()["outputs"]
    assert list(outputs) == SEVEN
    assert outputs == {k: [r[k] for r in rows.json()["predictions"]] for k in SEVEN}
    classify = http.post("/v1/models/census:classify", json={"examples": INSTANCES})
    assert [[label for label, _ in r] for r in classify.json()["results"]] == \
        [CLASSES] * len(INSTANCES)  # the export's own labels


def test_serve_answers_vertex_ai_and_names_what_it_has(served):
    _, http = served
    vertex = http.post("/v1/endpoints/1/deployedModels/2:predict", json={"instances": INSTANCES})
    assert vertex.status_code == 200, vertex.text
    check_rows(vertex.json()["predictions"], INSTANCES)
    assert vertex.json()["deployedModelId"] == "2"
    missing = http.post("/v1/endpoints/1/deployedModels/2:predict", json={
        "instances": INSTANCES, "parameters": {"signature_name": "nonexistent"}})
    assert missing.status_code == 400 and missing.json() == {"error": (
        'Serving signature name: "nonexistent" not found in signature def (this version has: '
        'predict)')}
    gone = http.post("/v1/models/census:predict", json={"signature_name": "serving_defaultx",
                                                        "instances": INSTANCES})
    assert gone.status_code == 400 and gone.json()["error"].endswith("(this version has: predict)")
    meta = http.get("/v1/models/census/metadata").json()["metadata"]["signature_def"]
    assert list(meta["signature_def"]) == ["predict"]
    assert sorted(meta["signature_def"]["predict"]["outputs"]) == sorted(SEVEN)
    assert sorted(meta["signature_def"]["predict"]["inputs"]) == sorted(schema.INPUT_COLUMNS)


def test_the_client_prints_all_seven_outputs(served, capsys):
    running, _ = served
    cli.main(["predict", "--url", running.url, "--json-instances", str(TEST_JSON)])
    header, *rows = capsys.readouterr().out.strip().splitlines()
    assert header.split() == [k.upper() for k in SEVEN] and len(rows) == len(INSTANCES)
    outputs = predict.predict(str(museum_dir(running)), INSTANCES)
    assert rows == predict.format_table(outputs).splitlines()[1:]


def museum_dir(running):
    """The version directory a BackgroundServer serves."""
    return running.watcher.latest().path


def test_score_reads_the_test_split_through_predict(museum, census_files):
    """`predict.score` (the course's one look at the test split) on an export without
    serving_default: the accuracy of its line in age, counted here row by row."""
    import csv
    with open(census_files.test, newline="") as rows:
        pairs = [(float(r[0]), r[-1].strip().rstrip(".") == ">50K") for r in csv.reader(rows)]
    right = sum((0.125 * age - 4.0 > 0) == high for age, high in pairs)
    scores = predict.score(museum, [census_files.test])
    assert scores["rows"] == len(pairs) > 16000
    assert scores["accuracy"] == pytest.approx(right / len(pairs), abs=1e-6)
    assert 0.5 < scores["auc"] < 1
