"""Checks for chapter 2's exercises: the deep half in plain tf-keras, calling the model, a new
cross measured against the seed-to-seed noise."""
import numpy as np

from census import data, inputs, model, quiet
from census.course.checks.core import CheckFailed, call, expect, passed
from census.schema import HIGH, LOW

__all__ = ["check_deep_model", "check_predict_people", "check_compare_cross"]

SIZE_CASES = ((100, 4, 0.7), (50, 6, 0.3), (10, 3, 1.0))  # the 2017 default first


def _columns(people):
    from census import instances
    return instances.to_tensors("JSON", people)


def _layers(m):
    """Every layer of a model, nested models opened, in order."""
    out = []
    for layer in m.layers:
        out += _layers(layer) if hasattr(layer, "layers") else [layer]
    return out


def _people(validation_file, n=200):
    """n people of the validation split as serving clients send them: text values with the
    files' leading space, numbers as floats."""
    from census import data, schema
    frame = data.load_frame(validation_file).head(n)
    return [{c: float(v) if c in schema.NUMERIC_COLUMNS else f" {v}" for c, v in row.items()}
            for row in frame[list(schema.INPUT_COLUMNS)].to_dict("records")]


def _logits(m, people, what):
    with quiet.logs():
        out = call(lambda: m(_columns(people), training=False), what=what, hint=(
            ("rank", ("each input is a batch of single values, shape (batch,)",
                      "keras.Input(shape=(), dtype=schema.INPUT_DTYPES[column], name=column)")),
            ("expected", ("each input is a batch of single values, shape (batch,), of the "
                          "dtype schema.INPUT_DTYPES gives",
                          "keras.Input(shape=(), dtype=schema.INPUT_DTYPES[column], "
                          "name=column)")),
        ))
    return np.asarray(out)


def _sizes_check(m, first, layers, scale):
    import tf_keras as keras
    what = f"deep_model({first}, {layers}, {scale})"
    dense = [layer for layer in _layers(m) if isinstance(layer, keras.layers.Dense)]
    expect(dense, f"{what} has no Dense layer", "the deep half is a stack of Dense layers "
           "ending in one unit", "keras.layers.Dense(units, activation='relu') per hidden "
           "layer, then keras.layers.Dense(1)")
    last, hidden = dense[-1], dense[:-1]
    expect(last.units == 1, f"the last Dense layer of {what} has {last.units} units",
           "the model answers with one number per person: its logit",
           "end with keras.layers.Dense(1)")
    expect(last.activation is keras.activations.linear,
           f"the last layer applies {last.activation.__name__}",
           "the model returns a logit (any real number), not a probability: the loss and "
           "the metrics apply the sigmoid themselves",
           "no activation on the last layer: keras.layers.Dense(1)")
    want = model.layer_sizes(first, layers, scale)
    got = [layer.units for layer in hidden]
    expect(len(got) == layers, f"{what} has {len(got)} hidden layers ({got}) instead of "
           f"{layers}", "one hidden Dense layer per layer of num_layers, then the Dense(1)",
           "loop over range(num_layers)")
    shifted = [max(2, int(first * scale ** (i + 1))) for i in range(layers)]
    expect(got != shifted or got == want, f"the first hidden layer has {got[0]} units, not "
           f"{first}", "the first layer has exactly first_layer_size units: count the "
           "exponent of scale_factor from 0",
           "layer i has first_layer_size * scale_factor ** i units, for i = 0, 1, 2, …")
    expect(min(got) >= 2, f"a layer of {what} has {min(got)} unit(s)",
           "the 2017 rule never makes a layer smaller than 2 units",
           "take max(2, …) of each size")
    rounded = [max(2, round(first * scale ** i)) for i in range(layers)]
    expect(got != rounded or got == want, f"{got} is rounded, not truncated",
           "the 2017 rule drops the fraction: 100 * 0.7**2 = 48.99… gives 48",
           "int(first_layer_size * scale_factor ** i), not round()")
    expect(got == want, f"the hidden layers of {what} have {got} units, not {want}",
           "the 2017 rule: layer i has first_layer_size * scale_factor ** i units, "
           "truncated to a whole number, never fewer than 2",
           "max(2, int(first_layer_size * scale_factor ** i)) for i in range(num_layers)")
    relu = [layer.activation.__name__ for layer in hidden]
    expect(all(name == "relu" for name in relu), f"the hidden activations are {relu}",
           "without a nonlinearity between them, Dense layers add up to one linear map",
           "keras.layers.Dense(units, activation='relu')")
    return want


def check_deep_model(deep_model, train_file, validation_file, steps, cases=SIZE_CASES):
    """deep_model(first_layer_size, num_layers, scale_factor) → a tf-keras Model from the 13
    raw inputs to one logit: embeddings of the categories (spaces stripped, unknown values
    allowed), the numbers scaled, hidden layers sized by the 2017 rule. Checked by calling it
    on raw rows, then by `steps` steps of training, after which it must beat the majority
    class on the validation split by 2 points of accuracy."""
    import tf_keras as keras

    from census import schema
    people = _people(validation_file)
    models = []
    for first, layers, scale in cases:
        what = f"deep_model({first}, {layers}, {scale})"
        with quiet.logs():
            m = call(deep_model, first, layers, scale, what=what)
        keras3 = type(m).__module__.split(".")[0] == "keras"
        expect(not keras3, f"{what} is a Keras 3 model (tf.keras), not a tf-keras one",
               "the course's models are tf-keras (Keras 2), for the reasons chapter 2 gives",
               "import tf_keras as keras, then build with keras.Input, keras.layers and "
               "keras.Model")
        expect(isinstance(m, keras.Model), f"{what} returned a {type(m).__name__}",
               "return the model itself: keras.Model(inputs, logit)")
        names = sorted(getattr(t, "name", "").split(":")[0] for t in m.inputs)
        extra = sorted(set(names) - set(schema.INPUT_COLUMNS))
        expect(not extra, f"the model takes {extra}, which a client does not send",
               "a client sends the 13 inputs of schema.INPUT_COLUMNS: no fnlwgt, no label",
               "one keras.Input per column of schema.INPUT_COLUMNS")
        expect(names == sorted(schema.INPUT_COLUMNS), f"the model's inputs are named {names}",
               "the model takes a dict with one named input per column of "
               "schema.INPUT_COLUMNS",
               "{c: keras.Input(shape=(), dtype=schema.INPUT_DTYPES[c], name=c) for c in "
               "schema.INPUT_COLUMNS}")
        sizes = _sizes_check(m, first, layers, scale)
        models.append((m, sizes))
    m, sizes = models[0]
    what = f"deep_model{cases[0]}"
    logits = _logits(m, people, what)
    expect(logits.shape == (len(people), 1), f"for {len(people)} people the model answers "
           f"shape {logits.shape}", "one logit per person: shape (batch, 1)",
           "concatenate the parts into one (batch, features) tensor before the Dense layers")
    expect(np.isfinite(logits).all(), "some logits are NaN or infinite",
           "look at the numbers the Dense layers receive: print them for a few people")
    layers = _layers(m)
    expect(any(isinstance(layer, keras.layers.Embedding) for layer in layers),
           "the model has no Embedding layer", "the deep half learns a short vector for each "
           "value of each category: that is an embedding",
           "keras.layers.StringLookup(vocabulary=…) then keras.layers.Embedding("
           "len(vocabulary) + 1, 8) for each column of schema.VOCABULARIES")
    for column in schema.VOCABULARIES:
        values = [v for v in schema.VOCABULARIES[column] if v != schema.MISSING][:2]
        pair = [dict(people[0], **{column: f" {v}"}) for v in values]
        spaced = _logits(m, pair, what)
        if abs(spaced[0, 0] - spaced[1, 0]) > 1e-7:
            continue
        bare = _logits(m, [dict(p, **{column: p[column].strip()}) for p in pair], what)
        expect(abs(bare[0, 0] - bare[1, 0]) <= 1e-7,
               f"the model answers the same for {column}={pair[0][column]!r} and "
               f"{pair[1][column]!r}, but not without the space in front",
               "print a value as the model receives it: the files and clients write "
               f"{pair[0][column]!r}, the vocabulary {values[0]!r}",
               "strip the text before looking it up: "
               "StringLookup(vocabulary=…)(tf.strings.strip(inputs[column]))")
        raise CheckFailed(f"the model answers the same whatever the {column}",
                          "every categorical column goes into the model, each through its "
                          "own lookup and embedding",
                          "one StringLookup + Embedding for each column of "
                          "schema.VOCABULARIES")
    strange = _logits(m, [dict(people[0], occupation=" Astronaut")], what)
    expect(np.isfinite(strange).all(), "an unknown occupation gives a NaN logit",
           "a value outside the vocabulary must still give an answer",
           "keep StringLookup's out-of-vocabulary index (num_oov_indices=1, the default)")
    for column, low, high in (("age", 25.0, 60.0), ("hours_per_week", 20.0, 60.0)):
        pair = _logits(m, [dict(people[0], **{column: low}), dict(people[0], **{column: high})],
                       what)
        expect(abs(pair[0, 0] - pair[1, 0]) > 1e-7,
               f"the model answers the same for {column} {low:g} and {high:g}",
               "the numbers go into the model too, next to the embeddings",
               "concatenate the scaled numeric columns with the embeddings")
    rich = _logits(m, [dict(p, capital_gain=99999.0) for p in people[:20]], what)
    expect(np.abs(rich).max() < 50, f"for a capital gain of 99,999 the untrained model "
           f"answers logits up to {np.abs(rich).max():,.0f}",
           "money runs from 0 to 99,999, ages from 17 to 90: bring the numbers to a "
           "common scale before the Dense layers",
           "tf.math.log1p of schema.LOG_COLUMNS first, then keras.layers.Normalization("
           "mean=…, variance=…) with schema.NUMERIC_STATS")
    expect(any(isinstance(layer, keras.layers.Normalization) for layer in layers),
           "the numbers reach the Dense layers unscaled",
           "Dense layers learn best from numbers centred on 0 with a spread of about 1",
           "keras.layers.Normalization(mean=mean, variance=variance) for each number, with "
           "schema.NUMERIC_STATS (after log1p for schema.LOG_COLUMNS)")
    with quiet.logs():
        m.compile(keras.optimizers.Adam(0.001), keras.losses.BinaryCrossentropy(from_logits=True),
                  metrics=[keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0),
                           keras.metrics.AUC(name="auc", from_logits=True)])
        m.fit(inputs.input_fn([train_file], batch_size=128), steps_per_epoch=steps, epochs=1,
              verbose=0)
        scores = m.evaluate(inputs.input_fn([validation_file], num_epochs=1, shuffle=False,
                                            batch_size=1000), verbose=0, return_dict=True)
    majority = float((data.load_frame(validation_file)[schema.LABEL_COLUMN] == LOW).mean())
    expect(scores["accuracy"] > majority + 0.02,
           f"after {steps} training steps the accuracy on the validation split is "
           f"{scores['accuracy']:.3f}: always answering '{LOW}' scores {majority:.3f}",
           "the model learns little: print what each part gives for a few people (the "
           "looked-up indices, the scaled numbers)",
           "compare your model with the deep half of census.model (deep_logit), part by part")
    passed(f"the deep half {sizes} from 13 raw inputs: after {steps} steps, accuracy "
           f"{scores['accuracy']:.3f} (always '{LOW}': {majority:.3f}), AUC (keras, 200 "
           f"thresholds) {scores['auc']:.3f} on the validation split; the 2017 rule holds for "
           f"{len(cases)} shapes")


def check_predict_people(predict_people, people):
    """predict_people(m, people): P(>50K) per person, from a model and a list of dicts."""
    import tensorflow as tf
    with quiet.logs():
        m = model.build_model()
        logits = m(_columns(people), training=False).numpy().ravel()
        want = tf.sigmoid(logits).numpy()
        got = call(predict_people, m, people, what="predict_people(model, people)",
                   hint=("the model takes one dict for the whole batch: column name → a 1-D "
                         "tensor with one value per person",
                         "{c: tf.constant([p[c] for p in people], dtype=schema.INPUT_DTYPES[c]) "
                         "for c in schema.INPUT_COLUMNS}"))
    got = np.asarray(got, dtype=float)
    expect(got.size == len(people), f"{got.size} values for {len(people)} people",
           "one probability per person: put all the people in one batch",
           "call the model once on the dict of columns, then flatten: .numpy().ravel()")
    got = got.ravel()
    expect(got.min() >= 0 and got.max() <= 1 and not np.allclose(got, logits, atol=1e-5),
           "these are the model's logits, not probabilities",
           "the model returns logits: any real number; a probability needs one more step",
           f"apply tf.sigmoid to the logits to get P({HIGH})")
    expect(not np.allclose(got, 1 - want, atol=1e-5) or np.allclose(got, want, atol=1e-5),
           f"these are the probabilities of {LOW}",
           f"a positive logit means {HIGH}: which class does sigmoid(logit) belong to?",
           f"sigmoid(logit) is P({HIGH}): do not take 1 - p")
    expect(np.allclose(got, want, atol=1e-5), "the probabilities differ from the model's",
           "the model has Dropout: it must run in inference mode",
           "call the model once, with training=False, on all the people")
    passed(f"predict_people gives {len(people)} probabilities (an untrained model: around "
           f"{np.median(want):.2f})")


def check_compare_cross(compare_cross, pair, train_file, validation_file, steps, seeds=(0, 1, 2)):
    """compare_cross(pair, train_file, steps, seeds) → {"without": [models], "with": [models]}:
    for each seed, a plain model and one with the extra cross `pair`, each trained `steps`
    steps from `keras.utils.set_random_seed(seed)`. The check scores every model on the
    validation split (exact AUC, `census.metrics.roc_auc`) and prints each variant's mean,
    standard deviation and range over the seeds, and whether the difference of the means
    exceeds twice its standard error (what the seed-to-seed spread alone could make)."""
    import tf_keras as keras

    from census.metrics import roc_auc
    a, b, seeds = *pair, list(seeds)
    with quiet.logs():
        got = call(compare_cross, pair, train_file, steps, seeds,
                   what="compare_cross(pair, train_file, steps, seeds)")
    expect(isinstance(got, dict) and set(got) == {"without", "with"},
           f"the answer is {type(got).__name__} {sorted(got) if isinstance(got, dict) else ''}",
           "return the trained models, keyed by whether they have the cross",
           "return {'without': [one plain model per seed], 'with': [one crossed model per "
           "seed]}")
    for key, ms in got.items():
        listed = isinstance(ms, (list, tuple))
        expect(listed and len(ms) == len(seeds),
               f"got[{key!r}] is {f'{len(ms)} model(s)' if listed else type(ms).__name__}, "
               f"not a list of {len(seeds)} models (one per seed)",
               "one run per seed for each variant: a single run says nothing of the noise",
               "for seed in seeds: set the seed, build, train, and append the model to that "
               "variant's list")
        for m in ms:
            expect(isinstance(m, keras.Model), f"got[{key!r}] holds a {type(m).__name__}",
                   "return the Keras models themselves, not their scores",
                   "model.build_model(…) builds one; append it after fit")
    for key, ms in got.items():
        crossed = [f"wide_{a}_x_{b}" in {layer.name for layer in m.layers} for m in ms]
        if key == "with":
            expect(all(crossed), f"a 'with' model has no {a} × {b} cross",
                   "build_model takes extra crosses for the wide part: read its docstring "
                   "(help(model.build_model))", f"model.build_model(extra_crosses=[({a!r}, "
                   f"{b!r})])")
        else:
            expect(not any(crossed), "a 'without' model has the cross too",
                   "the baseline is the model as chapter 2 builds it",
                   "build the baseline with model.build_model() and no extra_crosses")
    for key, ms in got.items():
        for m in ms:
            done = int(m.optimizer.iterations.numpy())
            expect(done == steps, f"a {key!r} model was trained {done} steps, not {steps}",
                   "a fair comparison trains every model the same number of steps: how does "
                   "fit count steps on an endless dataset?",
                   "fit(inputs.input_fn([train_file], batch_size=128), steps_per_epoch=steps, "
                   "epochs=1) for each model")
    data = inputs.input_fn([validation_file], num_epochs=1, shuffle=False, batch_size=2000)
    labels = np.concatenate([y.numpy().ravel() for _, y in data])
    with quiet.logs():
        scores = {key: [m.predict(data, verbose=0).ravel() for m in ms] for key, ms in got.items()}
    for key, runs in scores.items():
        same = [i for i in range(1, len(runs)) if np.allclose(runs[i], runs[0])]
        expect(not same, f"the {key!r} models of seeds {seeds[0]} and "
               f"{seeds[same[0]] if same else ''} answer exactly alike: one run, repeated",
               "each seed should start a run of its own: other initial weights, another order "
               "of the batches", "call keras.utils.set_random_seed(seed) with each seed of "
               "`seeds` before building its model")
    auc = {key: np.array([roc_auc(labels, s) for s in runs]) for key, runs in scores.items()}
    passed(_seed_report(auc, pair, steps, len(seeds)))


def _seed_report(auc, pair, steps, n):
    """The lines check_compare_cross prints: each variant's AUCs over n seeds, and whether the
    difference of the means stands out of the seed-to-seed noise. `auc`: {key: array (n,)}."""
    lines = [f"{pair[0]} × {pair[1]}: validation AUC (exact) over {n} seed(s), {steps} steps each"]
    for key, label in (("without", "without the cross"), ("with", "with the cross")):
        v = auc[key]
        spread = f" ± {v.std(ddof=1):.4f} (sd)" if n > 1 else ""
        lines.append(f"    {label:<18} {v.mean():.4f}{spread}   min–max "
                     f"{v.min():.4f}–{v.max():.4f}")
    diff = auc["with"].mean() - auc["without"].mean()
    if n < 2:
        lines.append(f"  difference {diff:+.4f}: one seed gives no measure of the noise")
        return "\n".join(lines)
    se = float(np.sqrt((auc["with"].var(ddof=1) + auc["without"].var(ddof=1)) / n))
    verdict = ("more than twice its standard error: larger than the seed-to-seed spread"
               if abs(diff) > 2 * se else "within twice its standard error: the seed-to-seed "
               "spread alone could make it (more seeds or steps would tell)")
    lines.append(f"  difference {diff:+.4f}, standard error {se:.4f} (from the seeds' spread): "
                 f"{verdict}")
    return "\n".join(lines)
