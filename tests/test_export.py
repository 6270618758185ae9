import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from census import export, instances, predict, schema, signature

pytestmark = pytest.mark.slow  # a trained model, exported in every format

FLOATS = ("age", "capital_gain", "capital_loss", "education_num", "hours_per_week")
OUTPUTS = [("class_ids", "DT_INT64", "(-1, 1)"), ("classes", "DT_STRING", "(-1, 1)"),
           ("logistic", "DT_FLOAT", "(-1, 1)"), ("logits", "DT_FLOAT", "(-1, 1)"),
           ("probabilities", "DT_FLOAT", "(-1, 2)")]


def expected_listing():
    """The signature of the design doc (and of the 2017 post), tensor names left out."""
    lines = ["The given SavedModel SignatureDef contains the following input(s):"]
    for name in sorted(schema.INPUT_COLUMNS):
        dtype = "DT_FLOAT" if name in FLOATS else "DT_STRING"
        lines += [f"  inputs['{name}'] tensor_info:", f"      dtype: {dtype}",
                  "      shape: (-1)", "      name: NAME"]
    lines.append("The given SavedModel SignatureDef contains the following output(s):")
    for name, dtype, shape in OUTPUTS:
        lines += [f"  outputs['{name}'] tensor_info:", f"      dtype: {dtype}",
                  f"      shape: {shape}", "      name: NAME"]
    lines.append("Method name is: tensorflow/serving/predict")
    return "\n".join(lines)


def saved_model_cli(*args):
    cli = Path(sys.executable).with_name("saved_model_cli")
    done = subprocess.run([str(cli), *map(str, args)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize("key", export.SIGNATURE_KEYS)
def test_saved_model_cli_shows_the_2017_signature(export_dir, key):
    shown = saved_model_cli("show", "--dir", export_dir, "--tag_set", "serve",
                            "--signature_def", key)
    assert re.sub(r"name: \S+", "name: NAME", shown).strip() == expected_listing()


def test_saved_model_cli_run(export_dir):
    inputs = ";".join(f"{c}=[{1.0 if c in FLOATS else repr(' x')}]" for c in schema.INPUT_COLUMNS)
    shown = saved_model_cli("run", "--dir", export_dir, "--tag_set", "serve",
                            "--signature_def", "predict", "--input_exprs", inputs)
    assert "Result for output key probabilities" in shown and "classes" in shown


@pytest.fixture(scope="module")
def model(trained_model):
    return trained_model


def test_csv_and_example_exports_agree_with_json(model, census_files, tmp_path):
    lines = open(census_files.test).read().splitlines()[:5]
    rows = [line.rsplit(",", 1)[0] for line in lines]  # drop the label
    fields = [dict(zip(schema.CSV_COLUMNS, [f.strip() for f in line.split(",")])) for line in lines]
    people = [{c: float(f[c]) if c in FLOATS else f[c] for c in schema.INPUT_COLUMNS}
              for f in fields]

    def example(instance):
        feature = {c: tf.train.Feature(float_list=tf.train.FloatList(value=[v]))
                   if c in FLOATS else tf.train.Feature(bytes_list=tf.train.BytesList(
                       value=[v.encode()])) for c, v in instance.items()}
        return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()

    by_format = {}
    for fmt, receiver in [("JSON", lambda: instances.to_tensors("JSON", people)),
                          ("CSV", lambda: {"csv_row": tf.constant(rows)}),
                          ("EXAMPLE", lambda: {"examples": tf.constant(
                              [example(i) for i in people])})]:
        path = export.export_model(model, str(tmp_path / fmt), fmt)
        serve = tf.saved_model.load(path).signatures["serving_default"]
        assert sorted(serve.structured_input_signature[1]) == sorted(receiver())
        by_format[fmt] = serve(**receiver())["logits"].numpy()
    np.testing.assert_allclose(by_format["CSV"], by_format["JSON"], rtol=1e-5)
    np.testing.assert_allclose(by_format["EXAMPLE"], by_format["JSON"], rtol=1e-5)


def test_outputs_are_consistent(model, tmp_path):
    path = export.export_model(model, str(tmp_path), "JSON")
    out = predict.predict(path, predict.read_instances(Path(__file__).parents[1] / "test.json"))
    p = out["logistic"][:, 0]
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-out["logits"][:, 0])), rtol=1e-5)
    np.testing.assert_allclose(out["probabilities"], np.stack([1 - p, p], axis=1), rtol=1e-5)
    assert (out["class_ids"][:, 0] == (p > 0.5)).all()
    labels = [schema.LABELS[i].encode() for i in out["class_ids"][:, 0]]
    assert out["classes"][:, 0].tolist() == labels


def test_versions_are_numbered_and_a_failed_export_leaves_nothing(model, tmp_path, monkeypatch):
    base = tmp_path / "export" / "census"
    first = export.export_model(model, str(base))
    second = export.export_model(model, str(base))
    assert int(Path(second).name) > int(Path(first).name)
    assert export.list_versions(str(base)) == [first, second]

    def crash(self, path, options=None):
        Path(path).mkdir(parents=True)
        (Path(path) / "variables").mkdir()  # half written, then the process "dies"
        raise OSError("disk full")
    monkeypatch.setattr(export.keras.export.ExportArchive, "write_out", crash)
    with pytest.raises(OSError):
        export.export_model(model, str(base))
    assert export.list_versions(str(base)) == [first, second]
    assert sorted(p.name for p in base.iterdir()) == [Path(first).name, Path(second).name]


def test_unknown_export_format_is_refused(model):
    with pytest.raises(ValueError, match="JSON, CSV, EXAMPLE"):
        export.serving_archive(model, "XML")


# --- no NaN or infinity out of an export, whatever the floats in -------------------------------

EXTREMES = [float("nan"), float("inf"), -float("inf"), 3.4e38, -3.4e38, 1e30, -1e30, -100.0,
            -1.0, 0.0, 1e-30, 200.0]


def extreme_inputs(fmt):
    """One instance per extreme value, in every numeric field at once, in `fmt`'s receiver."""
    people = [{c: value if c in FLOATS else " Private" for c in schema.INPUT_COLUMNS}
              for value in EXTREMES]
    if fmt == "JSON":
        return {c: tf.constant([p[c] for p in people], schema.INPUT_DTYPES[c])
                for c in schema.INPUT_COLUMNS}
    if fmt == "CSV":
        return {signature.SINGLE_INPUT[fmt]: tf.constant([
            ", ".join(repr(p[c]) if c in FLOATS else "1" if c == "fnlwgt" else p[c]
                      for c in signature.CSV_FIELDS) for p in people])}
    examples = []
    for p in people:
        feature = {c: tf.train.Feature(float_list=tf.train.FloatList(value=[v])) if c in FLOATS
                   else tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()]))
                   for c, v in p.items()}
        examples.append(tf.train.Example(features=tf.train.Features(
            feature=feature)).SerializeToString())
    return {signature.SINGLE_INPUT[fmt]: tf.constant(examples)}


@pytest.mark.parametrize("weights", ["fresh", "trained"])
@pytest.mark.parametrize("fmt", signature.FORMATS)
def test_no_float_input_gives_nan_or_infinity(weights, fmt, model, tmp_path):
    """The model clips its numbers in the graph: an export answers finite numbers for NaN,
    ±infinity, ±3.4e38 or negative amounts, with fresh or trained weights."""
    from census import model as census_model
    keras_model = census_model.build_model() if weights == "fresh" else model
    path = export.export_model(keras_model, str(tmp_path), fmt)
    outputs = tf.saved_model.load(path).signatures["serving_default"](**extreme_inputs(fmt))
    for key in ("logistic", "logits", "probabilities"):
        values = outputs[key].numpy()
        assert values.shape[0] == len(EXTREMES) and np.isfinite(values).all(), (key, values)
    assert set(outputs["classes"].numpy()[:, 0]) <= {label.encode() for label in schema.LABELS}


MOUNTED = '''
import sys
from census import export, model
source, *cases = sys.argv[1:]
for base, case in zip(cases[::2], cases[1::2]):
    if case == "cut short":  # a SavedModel cut short, in a model dir that is a mount point
        print(export.FinalExporter(model_dir=f"{base}/model").at_end(model.build_model(), None, {}))
    else:
        print(export.publish(source, base, "model"))
'''
CASES = [("base", "publish"),  # AIP_MODEL_DIR=/out/model/ with a volume at /out
         ("model", "publish"),  # AIP_MODEL_DIR=/model/ with a volume at /model (exists, empty)
         ("model", "cut short")]


def test_an_export_lands_whole_on_a_mount_point(export_dir, tmp_path):
    """A container's volume or a Cloud Storage FUSE path is another file system than the
    folder around it (a rename across them fails: EXDEV): the export is staged on the
    target's own, or copied into the mount point with saved_model.pb last. Run in a mount
    namespace of its own, where each case's `volume` is bind-mounted at <base> or at
    <base>/model."""
    mounts, args = [], []
    for n, (mounted, case) in enumerate(CASES):
        base, volume = tmp_path / f"out{n}", tmp_path / f"volume{n}"
        (base / "model").mkdir(parents=True)
        volume.mkdir()
        if case == "cut short":
            (volume / "variables").mkdir()
            (volume / "variables" / "variables.index").write_text("half")
        point = base if mounted == "base" else base / "model"
        mounts.append(f'mount --bind "{volume}" "{point}"')
        args += [base, case]
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
         " && ".join(mounts) + ' && exec "$0" "$@"', sys.executable, "-c", MOUNTED, export_dir,
         *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = done.stdout.split()[-len(CASES):]
    for n, (mounted, case) in enumerate(CASES):
        base, volume = tmp_path / f"out{n}", tmp_path / f"volume{n}"
        assert printed[n] == str(base / "model")
        model_dir = volume / "model" if mounted == "base" else volume
        assert export.has_saved_model(str(model_dir)), (mounted, case)
        if case == "publish":
            assert sorted(p.name for p in model_dir.iterdir()) == sorted(
                p.name for p in export_dir.iterdir())
        assert "predict" in tf.saved_model.load(str(model_dir)).signatures
        assert not [p for p in volume.iterdir() if p.name.startswith(".")]  # nothing staged left
        assert list((base / "model").iterdir()) == []  # the mount point's own folder untouched
