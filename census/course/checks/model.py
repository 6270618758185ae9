"""Checks for chapter 2's exercises: the layer-size rule, calling the model, a new cross."""
import numpy as np

from census import inputs, model
from census import quiet
from census.course.checks.core import call, expect, passed
from census.schema import HIGH, LOW

__all__ = ["check_hidden_units", "check_predict_people", "check_compare_cross"]

LAYER_CASES = ((100, 4, 0.7), (50, 6, 0.3), (10, 3, 1.0), (128, 1, 0.5))


def check_hidden_units(hidden_units):
    """hidden_units(first_layer_size, num_layers, scale_factor) follows the 2017 rule."""
    for first, layers, scale in LAYER_CASES:
        got = call(hidden_units, first, layers, scale,
                   what=f"hidden_units({first}, {layers}, {scale})")
        want = model.layer_sizes(first, layers, scale)
        expect(isinstance(got, (list, tuple)), f"the answer is a {type(got).__name__}",
               "return a list with one number per hidden layer")
        expect(len(got) == layers, f"hidden_units({first}, {layers}, {scale}) has {len(got)} "
               f"layers instead of {layers}", "one number per layer: loop over range(num_layers)")
        expect(all(isinstance(n, (int, np.integer)) for n in got), f"{list(got)} are not whole "
               "numbers", "a layer has a whole number of units: convert with int()")
        shifted = [max(2, int(first * scale ** (i + 1))) for i in range(layers)]
        expect(list(got) != shifted or list(got) == want, f"the first layer has {got[0]} units, not "
               f"{first}", "the first layer has exactly first_layer_size units: multiply by "
               "scale_factor ** i for i = 0, 1, 2, …")
        expect(min(got) >= 2, f"a layer has {min(got)} units",
               "no layer is smaller than 2 units: take max(2, …)")
        rounded = [max(2, round(first * scale ** i)) for i in range(layers)]
        expect(list(got) != rounded or list(got) == want, f"{list(got)} is rounded, not truncated",
               "the rule truncates with int(): 100 * 0.7**2 = 48.99… gives 48")
        expect(list(got) == want, f"hidden_units({first}, {layers}, {scale}) is {list(got)}, "
               f"not {want}", "layer i has max(2, int(first_layer_size * scale_factor ** i)) units")
    passed(f"hidden_units follows the 2017 rule: {model.layer_sizes()} for the defaults")


def _columns(people):
    from census import instances
    return instances.to_tensors("JSON", people)


def check_predict_people(predict_people, people):
    """predict_people(m, people): P(>50K) per person, from a model and a list of dicts."""
    import tensorflow as tf
    with quiet.logs():
        m = model.build_model()
        logits = m(_columns(people), training=False).numpy().ravel()
        want = tf.sigmoid(logits).numpy()
        got = call(predict_people, m, people, what="predict_people(model, people)",
                   hint="the model takes a dict: column name → a 1-D tensor with one value per "
                   "person, numbers as float32 (tf.constant(values, dtype='float32')), text "
                   "as strings")
    got = np.asarray(got, dtype=float)
    expect(got.size == len(people), f"{got.size} values for {len(people)} people",
           "one probability per person: batch all the people into one call")
    got = got.ravel()
    expect(got.min() >= 0 and got.max() <= 1 and not np.allclose(got, logits, atol=1e-5),
           "these are the model's logits, not probabilities",
           f"the model returns logits: apply tf.sigmoid to get P({HIGH})")
    expect(not np.allclose(got, 1 - want, atol=1e-5) or np.allclose(got, want, atol=1e-5),
           f"these are the probabilities of {LOW}", f"sigmoid(logit) is P({HIGH}): do not take 1 - p")
    expect(np.allclose(got, want, atol=1e-5), "the probabilities differ from the model's",
           "call the model once, with training=False (no dropout), on all the people")
    passed(f"predict_people gives {len(people)} probabilities (an untrained model: around "
           f"{np.median(want):.2f})")


def check_compare_cross(compare_cross, pair, train_file, eval_file, steps):
    """compare_cross(pair, train_file, eval_file, steps) → {"without": m0, "with": m1}, both
    trained `steps` steps; the check evaluates them on the eval split."""
    import tf_keras as keras
    a, b = pair
    with quiet.logs():
        got = call(compare_cross, pair, train_file, eval_file, steps,
                   what="compare_cross(pair, …)")
    expect(isinstance(got, dict) and set(got) == {"without", "with"},
           f"the answer is {type(got).__name__} {sorted(got) if isinstance(got, dict) else ''}",
           "return a dict with two trained models: {'without': …, 'with': …}")
    for key, m in got.items():
        expect(isinstance(m, keras.Model), f"got[{key!r}] is a {type(m).__name__}",
               "return the Keras models themselves (model.build_model() builds one)")
    names = {key: {layer.name for layer in m.layers} for key, m in got.items()}
    expect(f"wide_{a}_x_{b}" in names["with"], f"the 'with' model has no {a} × {b} cross",
           f"build it with model.build_model(extra_crosses=[({a!r}, {b!r})])")
    expect(f"wide_{a}_x_{b}" not in names["without"], "the 'without' model has the cross too",
           "build the baseline with model.build_model() and no extra_crosses")
    for key, m in got.items():
        done = int(m.optimizer.iterations.numpy())
        expect(done == steps, f"the {key!r} model was trained {done} steps, not {steps}",
               "train each model for exactly `steps` steps: fit(…, steps_per_epoch=steps, "
               "epochs=1) on inputs.input_fn([train_file])")
    data = inputs.input_fn([eval_file], num_epochs=1, shuffle=False, batch_size=2000)
    with quiet.logs():
        auc = {key: m.evaluate(data, verbose=0, return_dict=True)["auc"] for key, m in got.items()}
    passed(f"{a} × {b}: AUC {auc['with']:.4f} with the cross, {auc['without']:.4f} without, "
           f"after {steps} steps each (one run each: differences under ~0.003 are noise)")
