"""The 2017 wide & deep census model: feature columns, the Estimator, the input functions.

Redone from GoogleCloudPlatform/cloudml-samples, census/estimator/trainer/model.py (commit
7b90d77, 2018-01-30, the TF 1.4 version the 2017 post links to), for TF 2.15's `tf.estimator`.
The data's facts (columns, defaults, label strings) come from `census.schema`; the feature
columns are the 2017 ones, vocabularies in the 2017 order, with the files' leading spaces
(" Private", " <=50K"). Where TF 2.15 differs from TF 1.4 a comment says so.
"""
import tensorflow as tf

from census.schema import CSV_COLUMNS, CSV_DEFAULTS, LABEL_COLUMN, LABELS

fc = tf.feature_column

# The raw features the model reads, each with its type: strings from a known list, strings
# hashed into 100 buckets (too many values to list), and numbers (float32).
INPUT_COLUMNS = [
    fc.categorical_column_with_vocabulary_list("gender", [" Female", " Male"]),
    fc.categorical_column_with_vocabulary_list(
        "race", [" Amer-Indian-Eskimo", " Asian-Pac-Islander", " Black", " Other", " White"]),
    fc.categorical_column_with_vocabulary_list(
        "education", [" Bachelors", " HS-grad", " 11th", " Masters", " 9th", " Some-college",
                      " Assoc-acdm", " Assoc-voc", " 7th-8th", " Doctorate", " Prof-school",
                      " 5th-6th", " 10th", " 1st-4th", " Preschool", " 12th"]),
    fc.categorical_column_with_vocabulary_list(
        "marital_status", [" Married-civ-spouse", " Divorced", " Married-spouse-absent",
                           " Never-married", " Separated", " Married-AF-spouse", " Widowed"]),
    fc.categorical_column_with_vocabulary_list(
        "relationship", [" Husband", " Not-in-family", " Wife", " Own-child", " Unmarried",
                         " Other-relative"]),
    fc.categorical_column_with_vocabulary_list(
        "workclass", [" Self-emp-not-inc", " Private", " State-gov", " Federal-gov",
                      " Local-gov", " ?", " Self-emp-inc", " Without-pay", " Never-worked"]),
    fc.categorical_column_with_hash_bucket("occupation", hash_bucket_size=100),
    fc.categorical_column_with_hash_bucket("native_country", hash_bucket_size=100),
    fc.numeric_column("age"),
    fc.numeric_column("education_num"),
    fc.numeric_column("capital_gain"),
    fc.numeric_column("capital_loss"),
    fc.numeric_column("hours_per_week"),
]

# Read from the file but fed to nothing: fnlwgt (a sampling weight).
UNUSED_COLUMNS = set(CSV_COLUMNS) - {col.name for col in INPUT_COLUMNS} - {LABEL_COLUMN}


def build_estimator(config, embedding_size=8, hidden_units=None):
    """A canned wide & deep classifier of income bracket (class 1: " >50K").

    The wide (linear) part sees each categorical column one-hot, bucketed age, and three
    hashed crosses; the deep part (a DNN of `hidden_units`, default [100, 70, 50, 25]) sees
    the small vocabularies one-hot, occupation and native country as `embedding_size`-wide
    embeddings, and the five numbers as they are (not normalised, as in 2017).
    config: a tf.estimator.RunConfig (model_dir: checkpoints, events, exports).
    """
    (gender, race, education, marital_status, relationship, workclass, occupation,
     native_country, age, education_num, capital_gain, capital_loss,
     hours_per_week) = INPUT_COLUMNS
    age_buckets = fc.bucketized_column(age, boundaries=[18, 25, 30, 35, 40, 45, 50, 55, 60, 65])

    wide_columns = [
        fc.crossed_column(["education", "occupation"], hash_bucket_size=int(1e4)),
        fc.crossed_column([age_buckets, race, "occupation"], hash_bucket_size=int(1e6)),
        fc.crossed_column(["native_country", "occupation"], hash_bucket_size=int(1e4)),
        gender, native_country, education, occupation, workclass, marital_status,
        relationship, age_buckets,
    ]
    deep_columns = [
        fc.indicator_column(workclass),
        fc.indicator_column(education),
        fc.indicator_column(marital_status),
        fc.indicator_column(gender),
        fc.indicator_column(relationship),
        fc.indicator_column(race),
        fc.embedding_column(native_country, dimension=embedding_size),
        fc.embedding_column(occupation, dimension=embedding_size),
        age, education_num, capital_gain, capital_loss, hours_per_week,
    ]
    return tf.estimator.DNNLinearCombinedClassifier(
        config=config,
        linear_feature_columns=wide_columns,
        dnn_feature_columns=deep_columns,
        dnn_hidden_units=hidden_units or [100, 70, 50, 25],
    )


def parse_label_column(label_string_tensor):
    """Label strings (any shape, tf.string) -> class indices, int64, same shape: 0 for
    " <=50K", 1 for " >50K", -1 for anything else.

    TF 1.4's tf.contrib.lookup.index_table_from_tensor is gone; a static hash table does the
    same lookup."""
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(list(LABELS), tf.range(len(LABELS), dtype=tf.int64)),
        default_value=-1)
    return table.lookup(label_string_tensor)


# Below this line the 2017 file is generic: nothing here names a census column.

def parse_csv(rows_string_tensor):
    """CSV lines, tf.string of shape [n] -> {column: tensor of shape [n, 1]}, without
    UNUSED_COLUMNS (numbers float32, the rest tf.string, spaces kept)."""
    # One line per row of a rank-2 tensor, so that each column comes back as [n, 1].
    row_columns = tf.expand_dims(rows_string_tensor, -1)
    columns = tf.io.decode_csv(row_columns, record_defaults=CSV_DEFAULTS)
    features = dict(zip(CSV_COLUMNS, columns))
    for col in UNUSED_COLUMNS:
        features.pop(col)
    return features


def input_fn(filenames, num_epochs=None, shuffle=True, skip_header_lines=0, batch_size=200):
    """A tf.data.Dataset of (features, labels) batches read from CSV files.

    filenames: list of paths (local or gs://); num_epochs: passes over them (None: forever);
    shuffle: files in a random order, rows within a 10-batch buffer; skip_header_lines: lines
    to drop at the top of each file. Each batch: features {column: [batch_size, 1]}, labels
    int64 [batch_size, 1] (see parse_label_column).
    """
    filename_dataset = tf.data.Dataset.from_tensor_slices(filenames)
    if shuffle:
        filename_dataset = filename_dataset.shuffle(len(filenames))
    dataset = filename_dataset.flat_map(
        lambda filename: tf.data.TextLineDataset(filename).skip(skip_header_lines))
    dataset = dataset.map(parse_csv)
    if shuffle:
        dataset = dataset.shuffle(buffer_size=batch_size * 10)
    dataset = dataset.repeat(num_epochs)
    dataset = dataset.batch(batch_size)
    # TF 1.4 ended with `dataset.make_one_shot_iterator().get_next()` and returned tensors;
    # that method is gone, and an Estimator takes the dataset itself and iterates it.
    return dataset.map(lambda features: (features, parse_label_column(features.pop(LABEL_COLUMN))))


# Serving input functions: what the exported model takes. The Estimator calls them in a
# graph of its own, where TF 2.15 still has placeholders (tf.compat.v1).

def csv_serving_input_fn():
    """Input "csv_row": whole CSV lines, tf.string [None], all 15 fields, the label too (any
    value), as parse_csv reads every column of the file."""
    csv_row = tf.compat.v1.placeholder(shape=[None], dtype=tf.string)
    features = parse_csv(csv_row)
    features.pop(LABEL_COLUMN)
    return tf.estimator.export.ServingInputReceiver(features, {"csv_row": csv_row})


def example_serving_input_fn():
    """Input "example_proto": serialized tf.train.Example protos, tf.string [None]."""
    example_bytestring = tf.compat.v1.placeholder(shape=[None], dtype=tf.string)
    features = tf.io.parse_example(
        example_bytestring, fc.make_parse_example_spec(INPUT_COLUMNS))
    # The 2017 file named this `feature_scalars`, then returned `features`: a NameError at
    # export with --export-format EXAMPLE, until the sample fixed it in August 2018.
    return tf.estimator.export.ServingInputReceiver(features, {"example_proto": example_bytestring})


def json_serving_input_fn():
    """Inputs: one tensor per INPUT_COLUMNS column, shape [None], its own dtype (numbers
    float32, the rest tf.string); they are fed to the model as they are."""
    inputs = {}
    for feat in INPUT_COLUMNS:
        inputs[feat.name] = tf.compat.v1.placeholder(shape=[None], dtype=feat.dtype)
    return tf.estimator.export.ServingInputReceiver(inputs, inputs)


SERVING_FUNCTIONS = {
    "JSON": json_serving_input_fn,
    "EXAMPLE": example_serving_input_fn,
    "CSV": csv_serving_input_fn,
}
