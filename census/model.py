"""The wide & deep classifier, as one Keras model that takes raw values.

2017: `DNNLinearCombinedClassifier(linear_feature_columns=wide, dnn_feature_columns=deep)`.
Today: preprocessing layers inside the model (so serving takes the same raw values the CSV
holds), a linear "wide" part and a "deep" Dense stack, whose two logits are added.
"""
import tensorflow as tf
import tf_keras as keras

from census import schema

CROSS_BINS = 10_000  # hash buckets per crossed feature


def layer_sizes(first_layer_size=100, num_layers=4, scale_factor=0.7):
    """The 2017 rule: each hidden layer `scale_factor` times the previous one, at least 2."""
    return [max(2, int(first_layer_size * scale_factor**i)) for i in range(num_layers)]


def raw_inputs():
    """One named 1-D input per serving column."""
    return {c: keras.Input(shape=(), dtype=schema.INPUT_DTYPES[c], name=c)
            for c in schema.INPUT_COLUMNS}


def clip_numbers(inputs):
    """Each numeric input clipped to the training split's range (`schema.NUMERIC_RANGES`), NaN
    read as a typical value (the mean; 0 for money, most people's amount): the model's first
    step, in the graph of every export.

    `inputs` maps column names to float32 tensors of shape (batch,); returns the five numeric
    columns, same shapes and dtype, every value finite.

    Training data is unchanged by it; what it guards against is a client's odd float (a
    negative amount, NaN, infinity, 3e38), which would otherwise reach `log1p` and the dense
    layers and come out as NaN or infinity, whatever the weights. Values beyond the range a
    model was trained on carry no more information than its edge.
    """
    clipped = {}
    for c in schema.NUMERIC_COLUMNS:
        low, high = schema.NUMERIC_RANGES[c]
        typical = low if c in schema.LOG_COLUMNS else schema.NUMERIC_STATS[c][0]
        x = tf.where(tf.math.is_nan(inputs[c]), typical, inputs[c])
        clipped[c] = tf.clip_by_value(x, low, high)
    return clipped


def _indices(inputs):
    """Every categorical column and bucketed number → an integer index (its size alongside).

    Category values are stripped of spaces; an unknown value gets index 0, never an error.
    """
    indices, sizes = {}, {}
    for c, vocabulary in schema.VOCABULARIES.items():
        lookup = keras.layers.StringLookup(vocabulary=list(vocabulary), name=f"{c}_lookup")
        indices[c], sizes[c] = lookup(tf.strings.strip(inputs[c])), len(vocabulary) + 1
    for c, boundaries in schema.BUCKET_BOUNDARIES.items():
        bucketize = keras.layers.Discretization(bin_boundaries=list(boundaries),
                                                name=f"{c}_buckets")
        indices[f"{c}_buckets"] = bucketize(inputs[c])
        sizes[f"{c}_buckets"] = len(boundaries) + 1
    return indices, sizes


def _crosses(i):
    """The 2017 crossed features, hashed into CROSS_BINS buckets (HashedCrossing takes two)."""
    def cross(a, b, name):
        return keras.layers.HashedCrossing(CROSS_BINS, name=name)((a, b))
    age_x_race = cross(i["age_buckets"], i["race"], "age_x_race")
    return {
        "education_x_occupation": cross(i["education"], i["occupation"],
                                        "education_x_occupation"),
        "age_x_race_x_occupation": cross(age_x_race, i["occupation"], "age_x_race_x_occupation"),
        "country_x_occupation": cross(i["native_country"], i["occupation"],
                                      "country_x_occupation"),
    }


def _extra_crosses(i, pairs):
    """More crossed features, one per pair of index names (a categorical column or
    `age_buckets`), named `a_x_b`."""
    crosses = {}
    for a, b in pairs:
        unknown = [name for name in (a, b) if name not in i]
        if unknown:
            raise ValueError(f"cannot cross {unknown}: choose among {sorted(i)}")
        name = f"{a}_x_{b}"
        crosses[name] = keras.layers.HashedCrossing(CROSS_BINS, name=name)((i[a], i[b]))
    return crosses


def _wide_logit(indices, sizes, extra_crosses=()):
    """A linear model over one-hot features: one learned weight per value, summed.

    An Embedding of width 1 *is* that weight table, without building the one-hot vectors.
    """
    features = dict(indices, **_crosses(indices), **_extra_crosses(indices, extra_crosses))
    weights = [keras.layers.Embedding(sizes.get(name, CROSS_BINS), 1,
                                      embeddings_initializer="zeros", name=f"wide_{name}")(idx)
               for name, idx in features.items()]
    return keras.layers.Add(name="wide_logit")(weights)


def _deep_logit(inputs, indices, sizes, hidden_units, embedding_size, dropout):
    """Embeddings of the indices and normalised numbers → a Dense stack → one logit."""
    embedded = [keras.layers.Embedding(sizes[name], embedding_size, name=f"{name}_embedding")(idx)
                for name, idx in indices.items()]
    numbers = []
    for c in schema.NUMERIC_COLUMNS:
        x = tf.math.log1p(inputs[c]) if c in schema.LOG_COLUMNS else inputs[c]
        mean, variance = schema.NUMERIC_STATS[c]
        numbers.append(keras.layers.Normalization(mean=mean, variance=variance,
                                                  name=f"{c}_normalized")(x[:, None]))
    x = keras.layers.Concatenate(name="deep_inputs")(embedded + numbers)
    for n, units in enumerate(hidden_units):
        x = keras.layers.Dense(units, activation="relu", name=f"hidden_{n}")(x)
        x = keras.layers.Dropout(dropout, name=f"dropout_{n}")(x)
    return keras.layers.Dense(1, name="deep_logit")(x)


def build_model(first_layer_size=100, num_layers=4, scale_factor=0.7, embedding_size=8,
                learning_rate=0.001, dropout=0.35, decay_steps=None, extra_crosses=()):
    """A compiled wide & deep model: raw feature dict in, one logit out (> 0 means ' >50K').

    With `decay_steps` (the training length), the learning rate falls along a cosine curve
    to a tenth of its start: big steps early, fine ones at the end. `extra_crosses` adds
    crossed features to the wide part, e.g. `[("gender", "occupation")]`.
    """
    raw = raw_inputs()
    inputs = dict(raw, **clip_numbers(raw))
    indices, sizes = _indices(inputs)
    hidden = layer_sizes(first_layer_size, num_layers, scale_factor)
    logit = keras.layers.Add(name="logits")([
        _wide_logit(indices, sizes, extra_crosses),
        _deep_logit(inputs, indices, sizes, hidden, embedding_size, dropout)])
    model = keras.Model(raw, logit, name="wide_and_deep")
    rate = (keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps, alpha=0.1)
            if decay_steps else learning_rate)
    model.compile(
        optimizer=keras.optimizers.Adam(rate),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0),
                 keras.metrics.AUC(name="auc", from_logits=True)])
    return model
