"""Vertex AI's prebuilt prediction image, rehearsed: does TensorFlow 2.15 serve our export?

The newest prebuilt TensorFlow prediction image, `tf2-cpu.2-15`, runs TF Serving 2.15 on the
export's `serving_default` signature; the course exports with TF 2.21 and tf-keras 2.21. A short
training run of the course's own code (`census.task`, `census.export`, in this venv) writes the
export in each format; TensorFlow 2.15.1 (`museum_venv`, a venv of its own) then loads it and
predicts on the people of `test.json`, two ways: `tf.saved_model.load` and its signature, and
TF 2.15's own `saved_model_cli run` (the SignatureDef in a session, as TF Serving runs it). Each
must give what TF 2.21 gives: the same output keys, dtypes and shapes, the same classes, the
probabilities within 1e-5.
"""
import base64
import json
import os
import time

import numpy as np
import pytest

from conftest import REPO, REPORT, run
from tf215_predict import described

TOLERANCE = 1e-5  # on probabilities: float32 arithmetic of two TensorFlow builds
QUIET = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")


@pytest.fixture(scope="module")
def people():
    """The course's two example people (test.json), as a JSON client sends them."""
    return [json.loads(line) for line in (REPO / "test.json").read_text().splitlines()]


@pytest.fixture(scope="module")
def course_exports(raw_dir, tmp_path_factory):
    """{format: version dir}: a short training run of the course's trainer (its JSON export,
    as `census train` writes it), and the trained model exported as CSV and EXAMPLE too."""
    import tensorflow as tf

    from census import data, export, model, task
    from census.config import TrainConfig
    start = time.monotonic()
    files = data.fetch(raw_dir, tmp_path_factory.mktemp("cache"), progress=False)
    job_dir = tmp_path_factory.mktemp("job")
    metrics = task.run(TrainConfig(job_dir=job_dir, train_files=files.train,
                                   eval_files=files.validation, train_steps=100,
                                   eval_every_steps=100, eval_steps=2, verbosity="ERROR"))
    trained = model.build_model()
    trained.load_weights(tf.train.latest_checkpoint(str(job_dir / "checkpoints"))).expect_partial()
    exports = {"JSON": metrics["exports"][-1]}
    for fmt in ("CSV", "EXAMPLE"):
        exports[fmt] = export.export_model(trained, str(job_dir / "export" / fmt), fmt)
    REPORT.append(f"prebuilt image: trained (100 steps) and exported in 3 formats with TF 2.21 "
                  f"in {time.monotonic() - start:.0f} s")
    return exports


def receiver_inputs(fmt, people):
    """{input name: [values]} of the export's signature for `people`, as JSON can carry them
    (an Example as TF Serving's {"b64": …})."""
    from census import instances, schema, signature
    if fmt == "JSON":
        return {c: [p[c] for p in people] for c in schema.INPUT_COLUMNS}
    if fmt == "CSV":
        return {signature.SINGLE_INPUT[fmt]: [csv_row(p) for p in people]}
    return {signature.SINGLE_INPUT[fmt]: [{"b64": base64.b64encode(
        instances.to_example(p)).decode()} for p in people]}


def csv_row(person, fnlwgt=100000):
    """A training file's row without the label: the 14 fields, fnlwgt (unused) included."""
    from census import schema, signature
    fields = dict(person, fnlwgt=fnlwgt)
    return ",".join(str(int(fields[c])) if c in schema.NUMERIC_COLUMNS + schema.UNUSED_COLUMNS
                    else fields[c] for c in signature.CSV_FIELDS)


def with_tf221(export_dir, fmt, people):
    """What the course's TensorFlow (2.21) gives: `census.predict` on the same instances."""
    from census import predict, signature
    name = signature.SINGLE_INPUT.get(fmt)
    items = receiver_inputs(fmt, people)[name] if name else people
    return {k: described(v) for k, v in predict.predict(export_dir, items).items()}


def saved_model_cli_args(fmt, people):
    """saved_model_cli's input flag for `people`: --input_exprs as chapter 6 writes it (JSON,
    CSV), --input_examples (feature lists, floats as floats) for EXAMPLE."""
    from census import schema
    if fmt == "JSON":
        return ["--input_exprs", ";".join(
            f"{c}=[{', '.join(repr(float(p[c])) for p in people)}]" if c in schema.NUMERIC_COLUMNS
            else f"{c}=[{', '.join(json.dumps(p[c]) for p in people)}]"
            for c in schema.INPUT_COLUMNS)]
    if fmt == "CSV":
        return ["--input_exprs", f"csv_row={json.dumps([csv_row(p) for p in people])}"]
    examples = [{c: [float(p[c]) if c in schema.NUMERIC_COLUMNS else p[c]]
                 for c in schema.INPUT_COLUMNS} for p in people]
    return ["--input_examples", f"examples={json.dumps(examples)}"]


def tf215(venv, *args, stdin=None):
    """Run tf215_predict.py with the TF 2.15 venv's python; its JSON answer."""
    done = run([venv / "bin" / "python", REPO / "rehearsals" / "tf215_predict.py", *args],
               input=stdin, env=QUIET, timeout=300)
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["tensorflow"] == "2.15.1"
    return answer["outputs"]


def assert_same(got, want, n):
    """TF 2.15's outputs `got` as TF 2.21's `want` for n instances: keys, dtypes, shapes (the
    2017 head's), classes and class ids equal; float outputs within TOLERANCE. Returns the
    largest |Δ probability|."""
    from census import signature
    assert sorted(got) == sorted(want) == sorted(signature.OUTPUT_KEYS)
    expected = {"class_ids": ("int64", [n, 1]), "classes": ("string", [n, 1]),
                "logistic": ("float32", [n, 1]), "logits": ("float32", [n, 1]),
                "probabilities": ("float32", [n, 2])}
    for key, (dtype, shape) in expected.items():
        assert (got[key]["dtype"], got[key]["shape"]) == (dtype, shape), key
        assert (want[key]["dtype"], want[key]["shape"]) == (dtype, shape), key
    assert got["classes"]["values"] == want["classes"]["values"]
    assert got["class_ids"]["values"] == want["class_ids"]["values"]
    for key in ("logistic", "probabilities"):
        np.testing.assert_allclose(got[key]["values"], want[key]["values"], rtol=0,
                                   atol=TOLERANCE, err_msg=key)
    np.testing.assert_allclose(got["logits"]["values"], want["logits"]["values"], rtol=1e-4,
                               atol=TOLERANCE, err_msg="logits")
    return float(np.max(np.abs(np.subtract(got["probabilities"]["values"],
                                           want["probabilities"]["values"]))))


@pytest.mark.parametrize("fmt", ["JSON", "CSV", "EXAMPLE"])
def test_tf215_loads_and_predicts(fmt, museum_venv, course_exports, people):
    """tf.saved_model.load in TF 2.15.1, `serving_default` on test.json's people."""
    start = time.monotonic()
    got = tf215(museum_venv, "load", course_exports[fmt],
                stdin=json.dumps(receiver_inputs(fmt, people)))
    delta = assert_same(got, with_tf221(course_exports[fmt], fmt, people), len(people))
    REPORT.append(f"prebuilt image: TF 2.15.1 tf.saved_model.load, {fmt} export: max |Δp| = "
                  f"{delta:.2e} ({time.monotonic() - start:.1f} s)")


@pytest.mark.parametrize("fmt", ["JSON", "CSV", "EXAMPLE"])
def test_tf215_saved_model_cli_run(fmt, museum_venv, course_exports, people, tmp_path):
    """TF 2.15.1's `saved_model_cli run --signature_def serving_default` on the same people."""
    start = time.monotonic()
    run([museum_venv / "bin" / "saved_model_cli", "run", "--dir", course_exports[fmt],
         "--tag_set", "serve", "--signature_def", "serving_default",
         *saved_model_cli_args(fmt, people), "--outdir", tmp_path], env=QUIET, timeout=300)
    got = tf215(museum_venv, "npy", tmp_path)
    delta = assert_same(got, with_tf221(course_exports[fmt], fmt, people), len(people))
    REPORT.append(f"prebuilt image: TF 2.15.1 saved_model_cli run, {fmt} export: max |Δp| = "
                  f"{delta:.2e} ({time.monotonic() - start:.1f} s)")
