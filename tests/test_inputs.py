import tensorflow as tf

from census import inputs, schema, signature


def test_one_batch_has_the_serving_columns_and_01_labels(census_files):
    features, labels = next(iter(inputs.input_fn(census_files.train, batch_size=32)))
    assert sorted(features) == sorted(schema.INPUT_COLUMNS)
    for column, tensor in features.items():
        assert tensor.shape == (32,) and tensor.dtype == schema.INPUT_DTYPES[column]
    assert labels.shape == (32,) and set(labels.numpy()) <= {0, 1}


def test_one_unshuffled_epoch_reads_every_row_in_order(census_files):
    dataset = inputs.input_fn(census_files.test, num_epochs=1, shuffle=False, batch_size=1000)
    ages, positives = [], 0
    for features, labels in dataset:
        ages.extend(features["age"].numpy())
        positives += int(labels.numpy().sum())
    assert len(ages) == 16281 and positives == 3846
    assert ages[:3] == [25, 38, 28]  # the first rows of adult.test


def test_repeats_and_shuffles(census_files):
    first = lambda: next(iter(inputs.input_fn(census_files.train, batch_size=64)))[0]["age"]
    batches = list(inputs.input_fn(census_files.test, num_epochs=2, batch_size=1000))
    assert sum(len(labels) for _, labels in batches) == 2 * 16281
    assert any(not tf.reduce_all(first() == first()) for _ in range(3))


def test_a_row_without_its_label_decodes_to_the_same_features():
    """The CSV export's clients send the training rows without the label: one parser."""
    line = ("39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, "
            "White, Male, 2174, 0, 40, United-States, >50K")
    features, labels = inputs.parse_csv(tf.constant([line]))
    client = inputs.decode_rows(tf.constant([line.rsplit(",", 1)[0]]), signature.CSV_FIELDS)
    assert list(client) == list(features) == list(schema.INPUT_COLUMNS)
    for column, tensor in client.items():
        assert tensor.dtype == schema.INPUT_DTYPES[column]
        assert tensor.numpy().tolist() == features[column].numpy().tolist()
    assert labels.numpy().tolist() == [1]


def test_label_parsing_tolerates_spaces_and_periods():
    labels = tf.constant([" <=50K", " >50K", ">50K.", " <=50K."])
    assert inputs.parse_label_column(labels).numpy().tolist() == [0, 1, 1, 0]


def test_reads_through_tf_gfile_filesystems(census_files):
    # gs:// goes through the same tf.io.gfile layer; its in-memory ram:// sibling runs here.
    with open(census_files.test) as f:
        head = "".join(next(f) for _ in range(50))
    tf.io.gfile.makedirs("ram://census")
    with tf.io.gfile.GFile("ram://census/eval.csv", "w") as f:
        f.write(head)
    batches = list(inputs.input_fn("ram://census/eval.csv", num_epochs=1, shuffle=False,
                                   batch_size=20))
    assert [len(labels) for _, labels in batches] == [20, 20, 10]
