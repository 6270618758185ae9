import numpy as np
import pytest
import tensorflow as tf

from census import instances, model, schema

PERSON = {"age": 39.0, "workclass": "State-gov", "education": "Bachelors", "education_num": 13.0,
          "marital_status": "Never-married", "occupation": "Adm-clerical",
          "relationship": "Not-in-family", "race": "White", "gender": "Male",
          "capital_gain": 2174.0, "capital_loss": 0.0, "hours_per_week": 40.0,
          "native_country": "United-States"}


def batch(**changes):
    person = dict(PERSON, **changes)
    return instances.to_tensors("JSON", [person])


def test_layer_sizes_follow_the_2017_rule():
    assert model.layer_sizes() == [100, 70, 48, 34]
    assert model.layer_sizes(50, 6, 0.3) == [50, 15, 4, 2, 2, 2]


def test_hidden_layers_and_inputs():
    m = model.build_model(first_layer_size=60, num_layers=3, scale_factor=0.5)
    units = [m.get_layer(f"hidden_{i}").units for i in range(3)]
    assert units == [60, 30, 15]
    assert sorted(m.input_names) == sorted(schema.INPUT_COLUMNS)
    assert m.get_layer("wide_education_x_occupation").input_dim == model.CROSS_BINS


def test_unknown_categories_and_leading_spaces():
    m = model.build_model()
    plain = m(batch(), training=False).numpy()
    spaced = m(batch(workclass=" State-gov", race=" White"), training=False).numpy()
    unknown = m(batch(native_country="Atlantis", occupation=""), training=False).numpy()
    assert plain.shape == (1, 1) and np.allclose(plain, spaced)
    assert np.isfinite(unknown).all() and not np.allclose(plain, unknown)


def test_extra_crosses_add_a_wide_weight_table():
    m = model.build_model(extra_crosses=[("gender", "occupation")])
    assert m.get_layer("wide_gender_x_occupation").input_dim == model.CROSS_BINS
    assert m.count_params() == model.build_model().count_params() + model.CROSS_BINS
    with pytest.raises(ValueError, match="cannot cross \\['colour'\\]: choose among"):
        model.build_model(extra_crosses=[("gender", "colour")])


def test_numbers_are_clipped_to_the_training_range_and_nan_read_as_typical():
    batch_of = {c: tf.constant([float("nan"), -1e30, 1e30, 20.0]) for c in schema.NUMERIC_COLUMNS}
    clipped = {c: v.numpy() for c, v in model.clip_numbers(batch_of).items()}
    for c, (low, high) in schema.NUMERIC_RANGES.items():
        typical = low if c in schema.LOG_COLUMNS else schema.NUMERIC_STATS[c][0]
        np.testing.assert_allclose(clipped[c], [typical, low, high, min(max(20.0, low), high)])
