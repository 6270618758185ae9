"""The wide & deep classifier, as one Keras model that takes raw values (chapter 2).

2017: `DNNLinearCombinedClassifier(linear_feature_columns=wide, dnn_feature_columns=deep)`,
after Cheng et al., "Wide & Deep Learning for Recommender Systems" (DLRS 2016,
arXiv:1606.07792). Today: preprocessing layers inside the model (so that serving takes the
raw values a CSV row holds), a linear "wide" part over one-hot and crossed features and a
"deep" Dense stack over embeddings and normalised numbers, whose two logits are added.

Every tensor here is a batch: shape (batch,) for a column, (batch, 1) for a logit.
"""
import tensorflow as tf
import tf_keras as keras

from census import schema

CROSS_BINS = 10_000  # hash buckets per crossed feature


def layer_sizes(first_layer_size=100, num_layers=4, scale_factor=0.7):
    """The 2017 rule for the hidden layers: each `scale_factor` times the one before, at
    least 2 units: `[max(2, int(first_layer_size * scale_factor**i)) for i in …]`. Returns
    `num_layers` ints."""
    return [max(2, int(first_layer_size * scale_factor**i)) for i in range(num_layers)]


def raw_inputs():
    """The model's inputs: one named Keras input of shape (batch,) per serving column,
    float32 for numbers, string for categories (`schema.INPUT_DTYPES`)."""
    return {c: keras.Input(shape=(), dtype=schema.INPUT_DTYPES[c], name=c)
            for c in schema.INPUT_COLUMNS}


def clip_numbers(inputs):
    """Each numeric input clipped to the training split's range (`schema.NUMERIC_RANGES`), NaN
    read as a typical value (the mean; 0 for money, most people's amount): the model's first
    step, in the graph of every export.

    `inputs` maps column names to float32 tensors of shape (batch,); returns the five numeric
    columns, same shapes and dtype, every value finite. Training data is unchanged by it;
    what it guards against is a client's odd float (a negative amount, NaN, infinity, 3e38),
    which would otherwise reach `log1p` and the dense layers and come out as NaN or
    infinity, whatever the weights. A value beyond the range a model was trained on carries
    no more information than the range's edge.
    """
    clipped = {}
    for c in schema.NUMERIC_COLUMNS:
        low, high = schema.NUMERIC_RANGES[c]
        typical = low if c in schema.LOG_COLUMNS else schema.NUMERIC_STATS[c][0]
        x = tf.where(tf.math.is_nan(inputs[c]), typical, inputs[c])
        clipped[c] = tf.clip_by_value(x, low, high)
    return clipped


def feature_indices(inputs):
    """Every categorical column, and every bucketed number, as an integer index.

    `inputs`: {column: tensor (batch,)}. Returns ({name: int64 tensor (batch,)}, {name: number
    of indices}); names are the categorical columns and `<number>_buckets`. Categories are
    stripped of spaces (StringLookup; an unknown value gets index 0, never an error), numbers
    cut at `schema.BUCKET_BOUNDARIES` (Discretization).
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


def crossed_features(indices, extra=()):
    """The 2017 crossed features, and `extra` ones, hashed into CROSS_BINS buckets.

    `indices`: what `feature_indices` returns. The 2017 crosses are education × occupation,
    age bucket × race × occupation (HashedCrossing takes two inputs: it is chained) and
    country × occupation; `extra` adds one per pair of index names, e.g.
    `[("gender", "occupation")]`, named `gender_x_occupation`. Returns {name: int64 tensor
    (batch,)}. Raises ValueError naming a column that cannot be crossed.
    """
    def cross(a, b, name):
        return keras.layers.HashedCrossing(CROSS_BINS, name=name)((a, b))
    i = indices
    age_x_race = cross(i["age_buckets"], i["race"], "age_x_race")
    crosses = {
        "education_x_occupation": cross(i["education"], i["occupation"],
                                        "education_x_occupation"),
        "age_x_race_x_occupation": cross(age_x_race, i["occupation"], "age_x_race_x_occupation"),
        "country_x_occupation": cross(i["native_country"], i["occupation"],
                                      "country_x_occupation"),
    }
    for a, b in extra:
        unknown = [name for name in (a, b) if name not in i]
        if unknown:
            raise ValueError(f"cannot cross {unknown}: choose among {sorted(i)}")
        crosses[f"{a}_x_{b}"] = cross(i[a], i[b], f"{a}_x_{b}")
    return crosses


def wide_logit(indices, sizes, extra_crosses=()):
    """The wide part: a linear model over one-hot features, one learned weight per value of
    every index and cross, summed into a logit of shape (batch, 1).

    An Embedding of width 1 *is* that weight table, without building the one-hot vectors.
    """
    features = dict(indices, **crossed_features(indices, extra_crosses))
    weights = [keras.layers.Embedding(sizes.get(name, CROSS_BINS), 1,
                                      embeddings_initializer="zeros", name=f"wide_{name}")(idx)
               for name, idx in features.items()]
    return keras.layers.Add(name="wide_logit")(weights)


def deep_logit(inputs, indices, sizes, hidden_units, embedding_size=8, dropout=0.35):
    """The deep part: embeddings (`embedding_size` numbers each) of every index, and the
    numbers normalised (log1p of money first, `schema.NUMERIC_STATS`), through Dense layers of
    `hidden_units` (ReLU, each followed by Dropout of rate `dropout`) to a logit (batch, 1)."""
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
    """The compiled wide & deep model (chapter 2).

    In: a dict of the 13 raw columns (`raw_inputs`: float32 or string, each (batch,)); out:
    one logit per person, float32 (batch, 1), > 0 meaning `schema.HIGH`. Adam at
    `learning_rate`; with `decay_steps` (the training length, in steps) the rate falls along
    a cosine to a tenth of its start. Binary cross-entropy on the logit; metrics `accuracy`
    (threshold 0) and `auc` (keras, 200 thresholds: approximate; `census.metrics.roc_auc` is
    exact). `extra_crosses`: more crossed features for the wide part, e.g.
    `[("gender", "occupation")]`. Raises ValueError for a cross of unknown columns.
    """
    raw = raw_inputs()
    inputs = dict(raw, **clip_numbers(raw))
    indices, sizes = feature_indices(inputs)
    hidden = layer_sizes(first_layer_size, num_layers, scale_factor)
    logit = keras.layers.Add(name="logits")([
        wide_logit(indices, sizes, extra_crosses),
        deep_logit(inputs, indices, sizes, hidden, embedding_size, dropout)])
    model = keras.Model(raw, logit, name="wide_and_deep")
    rate = (keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps, alpha=0.1)
            if decay_steps else learning_rate)
    model.compile(
        optimizer=keras.optimizers.Adam(rate),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0),
                 keras.metrics.AUC(name="auc", from_logits=True)])
    return model
