"""Checks for chapter 3's exercises: input functions that feed the model."""
import numpy as np

from census import schema
from census.course.checks.core import call, expect, passed
from census.schema import HIGH, LOW

__all__ = ["check_frame_input_fn", "check_balanced_input_fn"]


def _dataset(value, what):
    import tensorflow as tf
    expect(isinstance(value, tf.data.Dataset), f"{what} returned a {type(value).__name__}, "
           "not a tf.data.Dataset", "build a tf.data.Dataset and return it, batched",
           "return dataset.batch(batch_size)")
    spec = value.element_spec
    expect(isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], dict),
           "its elements are not (features, label) pairs",
           "Keras' fit reads each element as (inputs, targets): the features as a dict of "
           "columns, then the labels",
           "tf.data.Dataset.from_tensor_slices((dict_of_columns, labels))")
    return value


def _check_batch(features, label, batch_size):
    """The problems every input function can have, in one batch."""
    import tensorflow as tf
    keys = set(features)
    expect(schema.LABEL_COLUMN not in keys, "the label is among the features",
           "a model that sees the answer among its inputs learns nothing useful",
           f"take {schema.LABEL_COLUMN!r} out of the features (frame.pop or drop) and give it "
           "as the second element")
    expect(set(schema.INPUT_COLUMNS) <= keys,
           f"features miss {sorted(set(schema.INPUT_COLUMNS) - keys)}",
           "the model takes the 13 inputs a client sends",
           "one entry per column of schema.INPUT_COLUMNS")
    for column in schema.INPUT_COLUMNS:
        want = tf.float32 if column in schema.NUMERIC_COLUMNS else tf.string
        got = features[column].dtype
        expect(got == want, f"{column} is {got.name}, not {want.name}",
               "the model's inputs have fixed types (schema.INPUT_DTYPES): pandas reads "
               "whole numbers as int64",
               "cast the numeric columns before building the dataset: "
               "frame[c].to_numpy('float32')")
        expect(features[column].shape.rank == 1, f"{column} has shape {features[column].shape}",
               "each feature is a 1-D batch: one value per person",
               "slice a dict of 1-D arrays, one per column: {c: frame[c].to_numpy(…)}")
    expect(int(label.shape[0]) == batch_size, f"a batch has {int(label.shape[0])} rows, not "
           f"{batch_size}", "the batch size is an argument of your function: is it used?",
           "end with .batch(batch_size), after shuffling")
    expect(label.dtype != tf.string, "the labels are text",
           "the loss compares the model's output with a number",
           f"label = 1 for '{HIGH}', 0 for '{LOW}': (frame[label] == '{HIGH}').to_numpy('int32')")
    values = set(np.unique(label.numpy()).tolist())
    expect(values <= {0, 1}, f"the labels take the values {sorted(values)[:5]}",
           "a binary label is 0 or 1",
           f"label = 1 for '{HIGH}', 0 for '{LOW}'")


def check_frame_input_fn(frame_input_fn, frame):
    """frame_input_fn(frame, batch_size, shuffle): (features, label) batches, one epoch."""
    what = "frame_input_fn(frame, batch_size=32, shuffle=False)"
    data = _dataset(call(frame_input_fn, frame.copy(), batch_size=32, shuffle=False, what=what),
                    what)
    features, label = next(iter(data))
    _check_batch(features, label, 32)
    truth = (frame[schema.LABEL_COLUMN].to_numpy()[:32] == HIGH).astype(int)
    expect(not np.array_equal(label.numpy().ravel(), 1 - truth), "0 and 1 are swapped",
           "the model's positive class is the one a positive logit means",
           f"label = 1 for '{HIGH}'")
    expect(np.array_equal(label.numpy().ravel(), truth) and
           np.array_equal(features["age"].numpy(), frame["age"].to_numpy()[:32]),
           "with shuffle=False the first batch is not the first 32 rows",
           "in order means in the frame's order, each label next to its row",
           "shuffle only when shuffle is True, and slice features and labels together: "
           "from_tensor_slices((features, label))")
    rows = sum(int(y.shape[0]) for _, y in call(frame_input_fn, frame.copy(), batch_size=4096,
                                                 shuffle=False, what="frame_input_fn"))
    expect(rows == len(frame), f"one pass gives {rows:,} rows, not {len(frame):,}",
           "one epoch gives every row exactly once: the training loop decides how many "
           "passes to make",
           "no .repeat(), and keep the last, smaller batch (no drop_remainder)")
    shuffled, _ = next(iter(call(frame_input_fn, frame.copy(), batch_size=32, shuffle=True,
                                 what="frame_input_fn(frame, batch_size=32, shuffle=True)")))
    expect(not np.array_equal(shuffled["age"].numpy(), features["age"].numpy()),
           "shuffle=True gives the rows in file order",
           "tf.data shuffles rows through a buffer, before they are batched",
           "when shuffle is True, call .shuffle(len(frame)) before .batch: a buffer as long "
           "as the frame shuffles everything")
    passed(f"frame_input_fn feeds {len(frame):,} rows once, as (13 features, 0/1 label) batches")


def check_balanced_input_fn(balanced_input_fn, filenames, batches=40, batch_size=100):
    """balanced_input_fn(filenames, batch_size): an endless stream with as many >50K as <=50K."""
    what = f"balanced_input_fn(files, batch_size={batch_size})"
    data = _dataset(call(balanced_input_fn, filenames, batch_size=batch_size, what=what), what)
    labels, ages = [], []
    for features, label in data.take(batches):
        _check_batch(features, label, batch_size)
        labels.append(label.numpy().ravel())
        ages.append(features["age"].numpy())
    expect(len(labels) == batches, f"the stream ends after {len(labels)} batches",
           "a training stream does not end: the training loop decides when to stop",
           "read the files with num_epochs=None (inputs.input_fn repeats forever then)")
    share = float(np.concatenate(labels).mean())
    expect(share > 0.4, f"only {share:.0%} of the rows are {HIGH}",
           f"make two streams, one of {HIGH} rows and one of {LOW} rows, then draw from "
           "each equally often",
           "unbatch, filter the rows twice by label, then "
           "tf.data.Dataset.sample_from_datasets([high, low], weights=[0.5, 0.5])")
    expect(share < 0.6, f"{share:.0%} of the rows are {HIGH}",
           "draw from both streams equally often",
           "give both classes weight 0.5 in sample_from_datasets")
    expect(len(np.unique(np.concatenate(ages))) > 30 and
           not np.array_equal(ages[0], ages[1]), "the batches repeat the same few people",
           "each stream should run through the whole file, in a random order",
           "shuffle the rows and repeat them before filtering: inputs.input_fn(filenames, "
           "num_epochs=None, shuffle=True)")
    passed(f"balanced_input_fn: {share:.0%} of {batches * batch_size:,} rows are {HIGH} "
           "(the data has 24%)")
