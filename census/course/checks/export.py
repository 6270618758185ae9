"""Checks for chapters 5 and 6: serving inputs, a callback that exports the best model, and
using an exported SavedModel."""
import functools
import math
import os
import tempfile

from census import quiet
from census.course.checks.core import CheckFailed, call, expect, passed
from census.schema import HIGH, LOW

__all__ = ["check_csv_features", "check_to_example", "check_best_exporter",
           "check_probability_over_50k", "check_input_exprs", "check_least_sure"]


@functools.lru_cache(maxsize=4)
def _signatures(export_dir):
    import tensorflow as tf
    return tf.saved_model.load(str(export_dir)).signatures


def _default_signature(export_dir):
    """The export's default signature function: `serving_default`, or `predict` for an export
    without it (the 2017 census export: `census.signature.choose`). CheckFailed, listing the
    signatures there are, for an export with neither."""
    from census import signature
    signatures = _signatures(str(export_dir))
    try:
        return signatures[signature.choose(None, signatures)]
    except signature.MissingSignature as error:
        raise CheckFailed(f"{error}", "the checks call the export's default signature",
                          "export with census.export (both serving_default and predict)"
                          ) from None


def _short(text, limit=160):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "…"


# --- chapter 5 ------------------------------------------------------------------------------

def check_csv_features(csv_features, rows):
    """csv_features(rows): a 1-D string tensor of CSV rows (no label) → the 13 model inputs,
    as the CSV export's receiver parses them, in TensorFlow ops (it runs inside the graph)."""
    import numpy as np
    import tensorflow as tf

    from census import export, schema
    rows_tensor = tf.constant(rows)
    with quiet.logs():
        got = call(csv_features, rows_tensor, what=f"csv_features(<{len(rows)} CSV rows>)")
    expect(isinstance(got, dict), f"csv_features returned {type(got).__name__}, not a dict",
           "the model takes its inputs by name",
           "return a dict: input column name → tensor of values, one per row")
    expect(schema.UNUSED_COLUMNS[0] not in got, "the features include fnlwgt",
           "the row carries a field the model does not use",
           "parse fnlwgt (it is in the row), then keep only schema.INPUT_COLUMNS")
    expect(schema.LABEL_COLUMN not in got, "the features include income_bracket",
           "a client's row has no label: it is what the client asks for",
           "name the 14 fields of schema.CSV_COLUMNS without income_bracket")
    expect(set(got) == set(schema.INPUT_COLUMNS),
           f"the keys are {sorted(got)[:4]}…, not the 13 input columns",
           "the keys are the model's input names",
           "return one entry per name in schema.INPUT_COLUMNS")
    want = export.RECEIVERS["CSV"]()[1](rows_tensor)
    for c in schema.INPUT_COLUMNS:
        try:
            value = tf.convert_to_tensor(got[c])
        except (TypeError, ValueError):
            raise CheckFailed(f"{c} is a {type(got[c]).__name__}, not a tensor",
                              "inside the graph, values are tensors",
                              "return the tensors tf.io.decode_csv gives, one per column") from None
        if c in schema.NUMERIC_COLUMNS:
            expect(value.dtype == tf.float32, f"{c} is {value.dtype.name}, not float32",
                   "decode_csv gives each field the type of its default value",
                   "give every numeric field a float default, [0.0], not [0] "
                   "(schema.CSV_DEFAULTS has them)")
        else:
            expect(value.dtype == tf.string, f"{c} is {value.dtype.name}, not a string",
                   "decode_csv gives each field the type of its default value",
                   "text fields need a string default: [\"\"]")
        expect(value.shape.as_list() == [len(rows)], f"{c} has shape {value.shape.as_list()} "
               f"for {len(rows)} rows", "one value per row: decode the whole batch at once",
               "tf.io.decode_csv(rows, record_defaults=...) gives one 1-D tensor per field")
        if c in schema.NUMERIC_COLUMNS:
            same = np.allclose(value.numpy(), want[c].numpy())
        else:
            same = (tf.strings.strip(value).numpy() == tf.strings.strip(want[c]).numpy()).all()
        expect(same, f"the values of {c} are not the row's {c} field (first row: "
               f"{value.numpy()[0]!r} instead of {want[c].numpy()[0]!r})",
               "decode_csv names nothing: the fields come in file order, fnlwgt (the third) "
               "included",
               "name the 14 fields of schema.CSV_COLUMNS without the label, zip them with "
               "decode_csv's tensors, then drop fnlwgt")
    try:
        tf.function(csv_features).get_concrete_function(tf.TensorSpec([None], tf.string))
    except Exception as error:
        raise CheckFailed(f"csv_features does not work inside a graph ({type(error).__name__}: "
                          f"{_short(error)})", "a serving function runs in the SavedModel's "
                          "graph, where there are no Python values to loop over",
                          "use TensorFlow ops only (tf.io.decode_csv), no .numpy() and "
                          "no Python loop over the rows") from error
    first = {c: want[c].numpy()[0] for c in ("age", "occupation")}
    passed(f"csv_features parses {len(rows)} rows into the 13 inputs, in a graph too "
           f"(first: age {first['age']:g}, {first['occupation'].decode().strip()})")


def check_to_example(to_example, example_export, model, person):
    """to_example(person) → a serialized tf.train.Example that the EXAMPLE export accepts,
    giving the same prediction as the model on the person's columns."""
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    from census import instances, schema
    got = call(to_example, person, what="to_example(person)")
    expect(not isinstance(got, tf.train.Example), "to_example returned the Example itself",
           "the export takes serialized Examples: bytes, as they travel",
           "return example.SerializeToString()")
    expect(isinstance(got, bytes), f"to_example returned {type(got).__name__}, not bytes",
           "the export takes a tf.train.Example protocol buffer, serialized",
           "build a tf.train.Example and return example.SerializeToString()")
    try:
        example = tf.train.Example.FromString(got)
    except DecodeError:
        raise CheckFailed("these bytes are not a serialized tf.train.Example",
                          "serialize the Example protocol buffer itself",
                          "return tf.train.Example(features=...).SerializeToString()") from None
    features = example.features.feature
    missing = [c for c in schema.INPUT_COLUMNS if c not in features]
    expect(not missing, f"the Example has no feature {missing[0]!r}" if missing else "",
           "the export parses one feature per model input",
           "one feature per name in schema.INPUT_COLUMNS")
    for c in schema.INPUT_COLUMNS:
        kind = features[c].WhichOneof("kind")
        if c in schema.NUMERIC_COLUMNS:
            expect(kind == "float_list", f"{c} is stored as {kind}",
                   "the export parses numbers as float32 (tf.io.FixedLenFeature([], "
                   "tf.float32)), whole numbers like age too",
                   "tf.train.Feature(float_list=tf.train.FloatList(value=[person[c]]))")
            values = list(features[c].float_list.value)
            expect(len(values) == 1 and math.isclose(values[0], person[c], rel_tol=1e-6),
                   f"{c} holds {values}, not [{person[c]}]", "one value per feature: the person's",
                   f"FloatList(value=[person[{c!r}]])")
        else:
            expect(kind == "bytes_list", f"{c} is stored as {kind}",
                   "an Example stores text as bytes",
                   "BytesList(value=[text.encode()])")
            values = [v.decode(errors="replace").strip() for v in features[c].bytes_list.value]
            expect(values == [person[c].strip()], f"{c} holds {values}, not [{person[c]!r}]",
                   "one value per feature: the person's, encoded",
                   f"BytesList(value=[person[{c!r}].encode()])")
    extra = sorted(set(features) - set(schema.INPUT_COLUMNS))
    serve = _default_signature(example_export)
    try:
        outputs = serve(examples=tf.constant([got]))
    except Exception as error:
        raise CheckFailed(f"the EXAMPLE export rejects your Example ({type(error).__name__}: "
                          f"{_short(error)})", "the export parses a fixed set of features",
                          "give exactly the features of "
                          f"schema.INPUT_COLUMNS{f'; drop {extra}' if extra else ''}") from error
    p = float(outputs["logistic"][0, 0])
    want = float(tf.sigmoid(model(instances.to_tensors("JSON", [person]), training=False))[0, 0])
    expect(abs(p - want) < 1e-5, f"the export predicts {p:.4f}, the model {want:.4f}",
           "the Example must carry this person's values",
           "one feature per input column, each holding person[column]")
    passed(f"the EXAMPLE export reads your Example: P({HIGH}) = {p:.4f}, as the model says")


WATCHED = (("val_loss", False), ("val_auc", True))  # (monitor, higher_is_better) the check tries


def _bests(values, higher_is_better):
    """The 1-based evaluations at which `values` beat every earlier one (the first always)."""
    out, best = [], None
    for number, value in enumerate(values, 1):
        if best is None or (value > best if higher_is_better else value < best):
            out.append(number)
            best = value
    return out


def _memorising_fit(callbacks, seen, train_file, validation_file, work, steps, every, rows):
    """Chapter 4's memorising run (no dropout, `rows` training rows, seed 0), evaluated on the
    validation split every `every` steps, with `callbacks` after a recorder that appends each
    evaluation's logs to the list `seen` (so a callback's export knows which evaluation it
    follows). Returns the trained model."""
    import tf_keras as keras

    from census import data, inputs, model

    class Record(keras.callbacks.Callback):  # first: an export knows which evaluation it is
        def on_epoch_end(self, epoch, logs=None):
            seen.append({k: float(v) for k, v in (logs or {}).items()})

    small = data.sample_rows(train_file, os.path.join(work, "train.csv"), rows, seed=0)
    keras.utils.set_random_seed(0)
    with quiet.logs():
        net = model.build_model(dropout=0.0)
        call(net.fit, inputs.input_fn([small], batch_size=128), steps_per_epoch=every,
             epochs=steps // every, verbose=0, callbacks=[Record(), *callbacks],
             validation_data=inputs.input_fn([validation_file], num_epochs=1, shuffle=False,
                                             batch_size=1000),
             what="model.fit with your callback", hint=[
                 ("KeyError", ("`logs` holds what this evaluation measured: print(sorted(logs)) "
                               "in on_epoch_end to see its keys",
                               "read logs[monitor], the name best_exporter was given")),
                 ("NoneType", ("Keras gives the model to a callback (set_model) before training: "
                               "reach it through the callback, not a variable of your own",
                               "self.model is the model being trained")),
             ])
    return net


def check_best_exporter(best_exporter, train_file, validation_file, steps=300, every=50,
                        rows=1000):
    """best_exporter(export_dir, export_fn, monitor, higher_is_better) → a tf-keras Callback
    that, after each evaluation (`on_epoch_end`), calls export_fn(model, path) with a new
    numbered folder under export_dir when logs[monitor] beats every earlier evaluation: 2017's
    BestExporter as today's API writes it. Checked in one real `model.fit` whose later
    evaluations get worse by design (chapter 4's model without dropout on `rows` rows of
    `train_file`, evaluated on `validation_file` every `every` of `steps` steps), watched by
    two of your callbacks, on val_loss (lower is better) and val_auc (higher). The check's
    export_fn saves the weights (0.2 s, where an ExportArchive takes 2–3 s); the newest export
    of each, loaded back into a fresh model, must score the best evaluation's value."""
    import tf_keras as keras

    from census import inputs, model
    with tempfile.TemporaryDirectory(prefix="census-best-") as work:
        exports = {monitor: [] for monitor, _ in WATCHED}  # (evaluation, path, model given)
        seen, callbacks = [], []

        def export_fn(monitor):
            def save(given, path):
                exports[monitor].append((len(seen), str(path), given))
                if isinstance(given, keras.Model):
                    given.save_weights(os.path.join(str(path), "weights"))
            return save

        for monitor, higher in WATCHED:
            what = f"best_exporter(export_dir, export_fn, {monitor!r}, {higher})"
            callback = call(best_exporter, os.path.join(work, monitor), export_fn(monitor),
                            monitor, higher, what=what)
            if isinstance(callback, type):
                raise CheckFailed(f"{what} returned the class {callback.__name__}, not a "
                                  "callback", "fit takes callback objects: make one from your "
                                  "class", f"return {callback.__name__}() (an instance)")
            expect(isinstance(callback, keras.callbacks.Callback),
                   f"{what} returned a {type(callback).__name__}, not a tf-keras callback",
                   "a callback is an object of a subclass of keras.callbacks.Callback (keras "
                   "here is tf_keras), whose methods fit calls as it trains",
                   "define class BestExport(keras.callbacks.Callback) with an on_epoch_end "
                   "method inside best_exporter, and return BestExport()")
            callbacks.append(callback)
        net = _memorising_fit(callbacks, seen, train_file, validation_file, work, steps, every,
                              rows)
        table = {m: [round(s[m], 4) for s in seen] for m, _ in WATCHED}
        for monitor, higher in WATCHED:
            _check_exports(exports[monitor], seen, net, monitor, higher, work)
        reloaded = {}
        for monitor, _ in WATCHED:
            with quiet.logs():
                fresh = model.build_model(dropout=0.0)
                fresh.load_weights(os.path.join(exports[monitor][-1][1], "weights")
                                   ).expect_partial()  # (the optimizer's state: not needed)
                reloaded[monitor] = fresh.evaluate(
                    inputs.input_fn([validation_file], num_epochs=1, shuffle=False,
                                    batch_size=1000), verbose=0, return_dict=True)
    for monitor, higher in WATCHED:
        best = (max if higher else min)(s[monitor] for s in seen)
        got = reloaded[monitor][monitor[len("val_"):]]
        expect(math.isclose(got, best, abs_tol=1e-4),
               f"the newest export of the {monitor} callback scores {monitor} {got:.4f} when "
               f"loaded back; the best evaluation scored {best:.4f}",
               "export_fn saves the model it is given at the moment you call it",
               "call export_fn(self.model, path) in on_epoch_end, right when the evaluation "
               "beats the best so far")
    steps_at = {m: [e * every for e, _, _ in exports[m]] for m, _ in WATCHED}
    lines = [f"    {'step':<9}" + "".join(f"{(n + 1) * every:>8}" for n in range(len(seen)))]
    lines += [f"    {m:<9}" + "".join(f"{v:>8.4f}" for v in table[m]) for m, _ in WATCHED]
    passed(f"your callback exported at steps {steps_at['val_loss']} on val_loss and "
           f"{steps_at['val_auc']} on val_auc, the new bests of {len(seen)} evaluations:\n"
           + "\n".join(lines) + "\n  the newest export, loaded back, scores the best of the "
           f"run: val_loss {reloaded['val_loss']['loss']:.4f}, val_auc "
           f"{reloaded['val_auc']['auc']:.4f} (the last evaluation: "
           f"{seen[-1]['val_loss']:.4f}, {seen[-1]['val_auc']:.4f})")


def _check_exports(exports, seen, net, monitor, higher, work):
    """What one callback of check_best_exporter exported: at each new best of `monitor`, and
    only then, the trained model, each into a numbered folder of its own under its export_dir."""
    values = [s[monitor] for s in seen]
    shown = ", ".join(f"{v:.4f}" for v in values)
    want, got = _bests(values, higher), [e for e, _, _ in exports]
    what = f"the {monitor} callback"
    expect(got, f"{what} never called export_fn in {len(seen)} evaluations ({monitor}: {shown})",
           "fit calls a callback's on_epoch_end(epoch, logs) after each evaluation: that is "
           "where to decide",
           "in on_epoch_end: if logs[monitor] beats the best so far, call export_fn(self.model, "
           "path)")
    trained = [g for _, _, g in exports if g is not net]
    expect(not trained, f"{what} gave export_fn a {type(trained[0]).__name__ if trained else ''}, "
           "not the model being trained", "Keras hands the model being trained to each "
           "callback before training starts", "pass self.model to export_fn")
    if got != want:
        training = monitor[len("val_"):]
        every = list(range(1, len(seen) + 1))
        if got == every:
            problem, hints = "exported after every evaluation", (
                "an export should follow only an evaluation that beats every earlier one: "
                "remember the best value so far on the callback",
                "keep self.best; export only when logs[monitor] beats it, then update it")
        elif got == _bests(values, not higher):
            problem, hints = "exported when it got worse", (
                f"is a higher {monitor} better or worse? higher_is_better says",
                "compare with > when higher_is_better, with < otherwise")
        elif got == _bests([s[training] for s in seen], higher):
            problem, hints = f"followed the training batches' {training}", (
                f"logs hold two {training}s: the training batches' and the validation split's",
                f"read logs[monitor] ({monitor!r}), not logs[{training!r}]")
        elif got == want[1:]:
            problem, hints = "did not export after the first evaluation", (
                "the first evaluation has nothing to beat: it is the best so far",
                "start with no best (None) and export when there is none yet, or start from "
                "math.inf for a loss, -math.inf for a higher-is-better metric")
        else:
            problem, hints = "exported at the wrong evaluations", (
                "an export follows each evaluation that beats every earlier one, and no other",
                "keep the best value so far; in on_epoch_end, export and update it when "
                "logs[monitor] beats it")
        raise CheckFailed(f"{what} {problem}: at evaluations {got}, where {monitor} ({shown}) "
                          f"beat every earlier one at {want}", *hints)
    paths = [p for _, p, _ in exports]
    root = os.path.join(work, monitor)
    expect(all(os.path.dirname(os.path.normpath(p)) == root for p in paths),
           f"{what} exported to {[os.path.relpath(p, work) for p in paths]}, not to folders "
           "directly in export_dir",
           "each export is a folder of its own inside export_dir",
           "os.path.join(export_dir, name) with a new name each time")
    names = [os.path.basename(os.path.normpath(p)) for p in paths]
    expect(len(set(names)) == len(names), f"{what} exported twice into the same folder "
           f"({names})", "each export keeps a folder of its own: the newest beside the older "
           "ones", "name each folder after the training step: "
           "int(self.model.optimizer.iterations.numpy()), or the epoch")
    expect(all(n.isdigit() for n in names) and [int(n) for n in names] == sorted(map(int, names)),
           f"{what} named its folders {names}", "TF Serving and export.list_versions take "
           "whole-number folder names, the newest the highest",
           "str(int(self.model.optimizer.iterations.numpy())): the training step")


# --- chapter 6 ------------------------------------------------------------------------------

_SIGNATURE_HINTS = (  # (words in TensorFlow's error, (leading hint, the fix))
    ("expected to be a float tensor", (
        "a signature takes exactly the dtypes it declares (saved_model_cli show lists them): "
        "numbers are float32",
        "tf.constant([float(value)], tf.float32), not an int tensor")),
    ("double tensor", (
        "a signature takes exactly the dtypes it declares: numbers are float32, not float64",
        "tf.constant([...], tf.float32), or dtype=schema.INPUT_DTYPES[column]")),
    ("scalar", (
        "each input is a batch (shape (-1)), even for one person",
        "a list with one value: tf.constant([person['age']], tf.float32)")),
    ("missing a required argument", (
        "the signature takes all 13 inputs, by name",
        "signature(**{column: tensor for column in schema.INPUT_COLUMNS})")),
    ("unexpected keyword", (
        "the signature takes the 13 model inputs and nothing else",
        "pass only the columns of schema.INPUT_COLUMNS")),
    ("positional", (
        "a signature takes its inputs by name",
        "call it with keyword arguments: signature(age=..., ...)")),
)


def _call_model_code(fn, *args, what):
    """call(), with a precise hint when TensorFlow rejected the inputs to the signature."""
    with quiet.logs():
        return call(fn, *args, what=what, hint=_SIGNATURE_HINTS)


def _predict(export_dir, people):
    """census.predict.predict, with the loaded export kept between checks."""
    from census import instances, predict
    serve = _default_signature(predict.resolve_model_dir(str(export_dir)))
    return {k: v.numpy() for k, v in serve(**instances.to_tensors("JSON", people)).items()}


def _probability(export_dir, person):
    return float(_predict(export_dir, [person])["logistic"][0, 0])


def check_probability_over_50k(probability_over_50k, export_dir, person):
    """probability_over_50k(export_dir, person) → P(>50K) as a float, from the export."""
    import numpy as np
    got = _call_model_code(probability_over_50k, export_dir, person,
                           what="probability_over_50k(export_dir, person)")
    outputs = _predict(export_dir, [person])
    want, logit = float(outputs["logistic"][0, 0]), float(outputs["logits"][0, 0])
    if hasattr(got, "numpy"):
        got = got.numpy()
    size = np.size(got) if isinstance(got, (np.ndarray, list, tuple)) else None
    expect(size is None, f"the answer is an array of {size} value(s), not a number",
           "the outputs are batches (one row per person): take this person's one value",
           "return one plain number: float(outputs['logistic'][0, 0])")
    expect(isinstance(got, (float, np.floating)) and not isinstance(got, bool),
           f"the answer is a {type(got).__name__}, not a number",
           "a plain Python float, not a tensor", "return float(outputs['logistic'][0, 0])")
    got = float(got)
    expect(abs(got - (1 - want)) > 1e-5 or abs(want - 0.5) < 1e-5,
           f"{got:.4f} is P({LOW}), the other class",
           "the outputs hold both classes' probabilities: which column is which class?",
           f"probabilities[:, 0] is class 0 ({LOW}): take logistic, or probabilities[:, 1]")
    expect(abs(got - logit) > 1e-5, f"{got:.4f} is the logit, before the sigmoid",
           "a probability is between 0 and 1: print the signature's outputs and pick the one "
           "that is", "take the 'logistic' output")
    expect(abs(got - want) < 1e-5, f"{got:.4f} instead of {want:.4f}",
           "the export answers for the values it is given: this person's, all 13",
           "call signatures['serving_default'] with this person's 13 values and read "
           "outputs['logistic'][0, 0]")
    passed(f"P({HIGH}) = {got:.4f} for this {person['age']}-year-old "
           f"{person['occupation'].strip()}, as `census predict` says")


def check_input_exprs(input_exprs, export_dir, person):
    """input_exprs(person) → the --input_exprs string of `saved_model_cli run` for the person,
    read with saved_model_cli's own parser and run through the export's `predict` signature."""
    import numpy as np
    import tensorflow as tf
    from tensorflow.python.tools import saved_model_cli

    from census import schema
    got = call(input_exprs, person, what="input_exprs(person)")
    expect(isinstance(got, str), f"input_exprs returned {type(got).__name__}, not a string",
           "the shell passes one string to --input_exprs",
           "return one string: 'age=[25.0];workclass=[\" Private\"];…'")
    expect("'" not in got, "the string contains single quotes: in the shell, the first one "
           "ends the '…' around --input_exprs", "quote the text values another way",
           "write the text values in double quotes, e.g. f'{name}=[\"{value}\"]' "
           "(json.dumps writes double quotes too)")
    try:
        feeds = saved_model_cli.preprocess_input_exprs_arg_string(got)
    except RuntimeError as error:
        hints = (("saved_model_cli splits the inputs at one character: read "
                  "`saved_model_cli run --help`", "separate the inputs with ';', not ','")
                 if ";" not in got else
                 ("each input is name=<Python literal>",
                  "text in quotes, inside a list: workclass=[\" Private\"]"))
        raise CheckFailed(f"saved_model_cli cannot read it: {_short(error)}", *hints) from None
    keys = sorted(feeds)
    expect(not any(k != k.strip() for k in keys), f"input names with spaces: {keys[:3]}…",
           "the names must match the signature's exactly",
           "no spaces around '=' or ';': 'age=[25.0];workclass=…'")
    missing = [c for c in schema.INPUT_COLUMNS if c not in feeds]
    extra = [k for k in keys if k not in schema.INPUT_COLUMNS]
    expect(not missing, f"no input {missing[0]!r}" if missing else "",
           "the signature needs all 13 inputs",
           "one name=value per column of schema.INPUT_COLUMNS, joined with ';'")
    expect(not extra, f"{extra[0]!r} is not an input of the signature" if extra else "",
           "the signature takes the 13 model inputs and nothing else",
           "give only the columns of schema.INPUT_COLUMNS")
    arrays = {}
    for c in schema.INPUT_COLUMNS:
        shape = np.shape(feeds[c])
        expect(shape == (1,), f"{c} has shape {shape}, but the signature takes a batch: "
               "shape (-1)", "a batch of one person is a list of one value",
               f"put the value in a list: {c}=[...]")
        if c in schema.NUMERIC_COLUMNS:
            try:  # what feeding the CLI's session does
                arrays[c] = np.asarray(feeds[c], dtype=np.float32)
            except (TypeError, ValueError):
                raise CheckFailed(f"{c}={feeds[c]!r} is not a number",
                                  "numbers go unquoted",
                                  f"write numbers as numbers: {c}=[{float(person[c])!r}]") from None
        else:
            expect(isinstance(feeds[c][0], str), f"{c}={feeds[c]!r} is not text",
                   "a text value is a Python string literal",
                   f"write text in double quotes: {c}=[\"{person[c]}\"]")
            arrays[c] = np.asarray(feeds[c], dtype=object)
    outputs = _signatures(export_dir)["predict"](
        **{c: tf.constant(arrays[c], dtype=schema.INPUT_DTYPES[c]) for c in arrays})
    got_p, want = float(outputs["logistic"][0, 0]), _probability(export_dir, person)
    expect(abs(got_p - want) < 1e-5, f"the export predicts {got_p:.4f} for these inputs, "
           f"{want:.4f} for the person", "the values must be the person's",
           "use the person's own values, each under its name")
    passed(f"saved_model_cli reads {len(arrays)} inputs; the export answers "
           f"P({HIGH}) = {got_p:.4f}, as for the person")


def check_least_sure(least_sure, export_dir, people):
    """least_sure(export_dir, people) → the person whose P(>50K) is nearest 0.5."""
    import numpy as np
    got = _call_model_code(least_sure, export_dir, people, what="least_sure(export_dir, people)")
    p = _predict(export_dir, people)["logistic"][:, 0]
    doubt = np.abs(p - 0.5)
    expect(not isinstance(got, (int, np.integer)), f"the answer is a number ({got})",
           "the caller wants the person, not where they are in the list",
           "return the person (the dict from people), not their position: people[i]")
    expect(isinstance(got, dict), f"the answer is a {type(got).__name__}, not a person",
           "a person is one of the dicts of people", "return people[i]")
    expect(any(got is q or got == q for q in people), "the answer is not one of the people",
           "return the person as given", "return one of the dicts of people, unchanged")
    index = next(i for i, q in enumerate(people) if got is q or got == q)
    expect(index != int(np.argmax(doubt)) or doubt.min() == doubt.max(),
           f"the model is surest about that person (P({HIGH}) = {p[index]:.3f})",
           "least sure means nearest an even bet",
           "take the smallest |p - 0.5|, not the largest")
    expect(index != int(np.argmin(p)) or index == int(np.argmin(doubt)),
           f"that person has the lowest P({HIGH}) ({p[index]:.3f}), not the one nearest 0.5",
           "a low probability is a confident 'no': measure the distance from an even bet",
           "compare |p - 0.5|")
    expect(doubt[index] <= doubt.min() + 1e-6, f"P({HIGH}) = {p[index]:.3f} for that person; "
           f"{p[int(np.argmin(doubt))]:.3f} is nearer 0.5",
           "ask the export about everyone, then compare each probability with 0.5",
           f"take P({HIGH}) (the 'logistic' output) for all people, then the smallest |p - 0.5|")
    passed(f"of {len(people)} people, the model is least sure about a {got['age']}-year-old "
           f"{got['occupation'].strip()}: P({HIGH}) = {p[index]:.3f}")
