"""census.instances without a model: whatever passes the checks, the export's own ops read
(issue 19); the readers' files (byte order marks, other encodings, compressed TFRecords)."""
import gzip
import json

import pytest
import tensorflow as tf

from census import export, instances, predict
from conftest import REPO
from test_inputs import EDGE_ROWS, ROW, serving_parse_accepts

PERSON = json.loads((REPO / "test.json").read_text().splitlines()[0])


@pytest.mark.parametrize("row", EDGE_ROWS, ids=range(len(EDGE_ROWS)))
def test_a_csv_instance_that_passes_the_checks_is_read_by_the_receiver(row):
    try:
        instances.to_tensors("CSV", [ROW, row])
        passed = True
    except instances.PredictError as e:
        assert str(e).startswith("instance 2: ") and "\n" not in str(e), str(e)
        passed = False
    assert serving_parse_accepts(row) or not passed


def test_json_strings_tensorflow_cannot_take_are_refused():
    """JSON's "\\ud800" reads as a lone surrogate: tf.constant cannot encode it (a 500 before)."""
    bad = json.loads(json.dumps({**PERSON, "race": "\ud800"}))
    with pytest.raises(instances.PredictError, match="instance 2: field 'race' not Unicode"):
        instances.to_tensors("JSON", [PERSON, bad])
    with pytest.raises(instances.PredictError, match="instance 2: not Unicode text"):
        instances.to_tensors("CSV", [ROW, ROW.replace("White", "\ud800")])


def test_an_example_that_passes_the_checks_is_read_by_the_receiver():
    """The EXAMPLE export's own op, tf.io.parse_example, reads whatever check_example
    passes; what it refuses is named by instance."""
    good = instances.to_example(instances.check_fields(1, PERSON))
    assert instances.to_tensors("EXAMPLE", [good, good])["examples"].shape == (2,)
    with pytest.raises(tf.errors.InvalidArgumentError):
        export.example_receiver()[1](tf.constant([b"\x00"]))
    with pytest.raises(instances.PredictError) as error:
        instances.check_examples([good, good, b"\x00"])
    assert str(error.value).startswith("instance 3: tf.io.parse_example refuses it (")
    assert "{{" not in str(error.value)


def test_instance_files_with_a_byte_order_mark_or_crlf_are_read(tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_bytes(b"\xef\xbb\xbf" + f"{ROW}\r\n{ROW}\r\n".encode())
    assert predict.read_instances(rows, "text") == [ROW, ROW]
    objects = tmp_path / "people.json"
    objects.write_bytes(b"\xef\xbb\xbf" + json.dumps(PERSON).encode() + b"\r\n")
    assert predict.read_instances(objects) == [PERSON]


def test_a_file_that_is_not_utf8_is_one_sentence(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_bytes(ROW.encode() + b"\n" + ROW.encode("utf-16"))
    with pytest.raises(instances.PredictError, match=r"rows.csv line 2: not UTF-8 text"):
        predict.read_instances(path, "text")


def test_a_compressed_tfrecord_file_hints_at_compression(tmp_path):
    record = instances.to_example(instances.check_fields(1, PERSON))
    plain, zipped = tmp_path / "people.tfrecord", tmp_path / "people.tfrecord.gz"
    with tf.io.TFRecordWriter(str(plain)) as writer:
        writer.write(record)
    zipped.write_bytes(gzip.compress(plain.read_bytes()))
    with pytest.raises(instances.PredictError) as error:
        predict.read_instances(zipped, "tfrecord")
    message = str(error.value)
    assert message.startswith(f"{zipped}: not a readable TFRecord file (")
    assert "--compression GZIP or ZLIB" in message and "{{" not in message
    assert predict.read_instances(zipped, "tfrecord", "GZIP") == [record]
    with pytest.raises(instances.PredictError, match="read as GZIP-compressed"):
        predict.read_instances(plain, "tfrecord", "GZIP")
    with pytest.raises(instances.PredictError, match="--compression is for TFRecord files"):
        predict.read_instances(plain, "text", "GZIP")
    with pytest.raises(instances.PredictError, match=f"{tmp_path}: not a readable TFRecord "
                       "file .*Is a directory\\)$"):
        predict.read_instances(tmp_path, "tfrecord")
