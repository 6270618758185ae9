"""The trainer's command line as users give it: raw UCI files, bad files, bad flags."""
import json

import pytest

from census import cli, schema, task
from census.config import TrainConfig
from census.distribute import tf_config

pytestmark = pytest.mark.slow  # the trainer, run


def test_raw_uci_files_train_as_the_2017_users_passed_them(uci_dir, tmp_path, capsys):
    """UCI's files as downloaded (comment line, labels ending in '.', blank last lines) are
    cleaned as `census data` cleans them, said in one line each, and the job trains. So is a
    file as a spreadsheet or an editor saves it: a byte order mark, a header row, CRLF line
    ends (issue 19: the mark passed the file check, then failed inside model.fit)."""
    saved = tmp_path / "adult.data.csv"
    saved.write_bytes(b"\xef\xbb\xbf" + ",".join(schema.CSV_COLUMNS).encode() + b"\r\n" +
                      (uci_dir / "adult.data").read_bytes().replace(b"\n", b"\r\n"))
    cli.main(["train", "--train-files", str(saved), "--eval-files", str(uci_dir / "adult.test"),
              "--job-dir", str(tmp_path / "job"), "--train-steps", "40", "--eval-every-steps",
              "40", "--eval-steps", "5", "--verbosity", "ERROR"])  # in this process
    stdout, stderr = capsys.readouterr()
    assert (f"census train: {uci_dir / 'adult.test'} has 1 comment line, 1 blank line, "
            "16,281 labels ending in '.': reading a copy cleaned as `census data` cleans it"
            ) in stderr
    assert (f"census train: {saved} has 1 header row of column names, 1 byte order mark, "
            "32,563 CRLF line ends, 1 blank line: reading a copy") in stderr
    metrics = json.loads(stdout)
    assert metrics["global_step"] == 40 and metrics["exports"]


def bad_copy(uci_dir, tmp_path, change):
    lines = (uci_dir / "adult.data").read_bytes().splitlines(keepends=True)[:50]
    path = tmp_path / "train.csv"
    path.write_bytes(b"".join(change(lines)))
    return path


def replace_line(number, text):
    return lambda lines: lines[:number - 1] + [text] + lines[number:]


@pytest.mark.parametrize("change, words", [
    (replace_line(5, b"37, Private, 284582, Masters, 14, Married-civ-spouse\n"),
     "train.csv, line 5: 6 fields instead of 15"),
    (replace_line(7, b"forty-nine, Private, 160187, 9th, 5, Married-spouse-absent, "
                     b"Other-service, Not-in-family, Black, Female, 0, 0, 16, Jamaica, <=50K\n"),
     "train.csv, line 7: age is 'forty-nine', not a whole number"),
    (replace_line(9, b"31, Private, 45781, Masters, 14, Never-married, Prof-specialty, "
                     b"Not-in-family, White, Female, 14084, 0, 50, United-States, rich\n"),
     "train.csv, line 9: label 'rich' is neither of"),
    (replace_line(3, b"38, Private, 215646, HS-grad, 9, Divorced, \xff\xfe, Not-in-family, "
                     b"White, Male, 0, 0, 40, United-States, <=50K\n"),
     "train.csv, line 3: not UTF-8 text"),
    (lambda lines: [], "train.csv: no data rows"),
    (replace_line(13, b'32, Private, 205019, Assoc-acdm, 12, Never-married, Sa"les, '
                      b"Not-in-family, Black, Male, 0, 0, 50, United-States, <=50K\n"),
     "train.csv, line 13: Unquoted fields cannot have quotes/CRLFs inside (the trainer's "
     "tf.io.decode_csv refuses the row)"),
], ids=["fields", "number", "label", "encoding", "empty", "stray-quote"])
def test_a_file_the_trainer_cannot_read_is_refused_before_training(uci_dir, tmp_path, change,
                                                                   words):
    """`census train` and `python -m census.task` (this `main`): one sentence naming the file
    and line. A stray quote passed the check, then failed inside model.fit (issue 19)."""
    bad = bad_copy(uci_dir, tmp_path, change)
    job = tmp_path / "job"
    with pytest.raises(SystemExit) as exit:
        task.main(config=TrainConfig(job_dir=job, train_files=bad,
                                     eval_files=uci_dir / "adult.test", train_steps=10))
    message = str(exit.value.code)
    assert message.startswith("census train: ") and words in message, message
    assert "\n" not in message and not job.exists()  # refused before anything was written


def test_a_missing_file_is_one_sentence(uci_dir, tmp_path):
    with pytest.raises(SystemExit) as exit:
        task.main(config=TrainConfig(job_dir=tmp_path / "job", train_files=uci_dir / "adult.data",
                                     eval_files=tmp_path / "nope.csv"))
    assert str(exit.value.code) == (f"census train: {tmp_path / 'nope.csv'}: cannot be read "
                                    "(No such file or directory)")


# --- TF_CONFIG as the 2017 service and Vertex AI write it --------------------------------------

CMLE_2017 = {"cluster": {"master": ["127.0.0.1:2222"], "worker": ["127.0.0.1:2223"],
                         "ps": ["127.0.0.1:2224"]},
             "task": {"type": "master", "index": 0, "trial": "3"}, "environment": "cloud"}
VERTEX = {"cluster": {"chief": ["cmle-training-workerpool0-0:2222"],
                      "worker": ["cmle-training-workerpool1-0:2222",
                                 "cmle-training-workerpool1-1:2222"],
                      "ps": ["cmle-training-workerpool2-0:2222"],
                      "evaluator": ["cmle-training-workerpool3-0:2222"]},
          "task": {"type": "worker", "index": 1, "trial": "7"}, "environment": "cloud",
          "job": {"worker_pool_specs": []}}


@pytest.mark.parametrize("config, expected", [
    (CMLE_2017, {"cluster": {"chief": ["127.0.0.1:2222"], "worker": ["127.0.0.1:2223"],
                             "ps": ["127.0.0.1:2224"]},
                 "type": "chief", "index": 0, "trial": "3"}),
    (VERTEX, {"cluster": {k: v for k, v in VERTEX["cluster"].items() if k != "evaluator"},
              "type": "worker", "index": 1, "trial": "7"}),
    ({**VERTEX, "task": {"type": "evaluator", "index": 0}},
     {"cluster": {k: v for k, v in VERTEX["cluster"].items() if k != "evaluator"},
      "type": "evaluator", "index": 0, "trial": None}),
    ({"cluster": {"master": ["localhost:1"]}, "task": {"type": "master", "index": 0},
      "environment": "cloud"},
     {"cluster": {"chief": ["localhost:1"]}, "type": "chief", "index": 0, "trial": None}),
    # TensorFlow reads the index with int() (TFConfigClusterResolver): "1" is worker 1
    ({**VERTEX, "task": {"type": "worker", "index": "1"}},
     {"cluster": {k: v for k, v in VERTEX["cluster"].items() if k != "evaluator"},
      "type": "worker", "index": 1, "trial": None}),
])
def test_every_tf_config_the_services_write_is_read(config, expected):
    read = tf_config.read_tf_config(json.dumps(config))
    assert read == expected
    tensorflow_form = json.loads(tf_config.tf_config_for_tensorflow(read))
    assert "master" not in tensorflow_form["cluster"] and "evaluator" not in tensorflow_form[
        "cluster"]


@pytest.mark.parametrize("text, words", [
    ('{"cluster": {"chief": ["a:1"]}', "TF_CONFIG is not valid JSON"),
    ('[1, 2]', "TF_CONFIG must be a JSON object"),
    ('{"cluster": {"boss": ["a:1"]}, "task": {"type": "boss", "index": 0}}',
     "TF_CONFIG's cluster has a task type 'boss'"),
    ('{"cluster": {"chief": ["a:1"], "worker": ["b:1"]}, "task": {"type": "worker", "index": 2}}',
     "TF_CONFIG's task worker 2 is not in its cluster (1 worker task(s))"),
    ('{"cluster": {"chief": "a:1"}, "task": {"type": "chief", "index": 0}}',
     "TF_CONFIG's cluster['chief'] must be a list of 'host:port' strings"),
    ('{"cluster": {"chief": ["a:1"], "worker": ["b:1"]}, "task": {"type": "worker", '
     '"index": "first"}}',
     "TF_CONFIG's task index must be a whole number >= 0 (0 or \"0\"), not 'first'"),
    ('{"cluster": {"chief": ["a:1"]}, "task": {"type": "chief", "index": -1}}',
     "TF_CONFIG's task index must be a whole number >= 0 (0 or \"0\"), not -1"),
    ('{"cluster": {"master": ["a:1"], "chief": ["b:1"]}, "task": {"type": "chief"}}',
     "TF_CONFIG's cluster has more than one chief"),
])
def test_a_malformed_tf_config_is_one_sentence(text, words, tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", text)
    with pytest.raises(SystemExit) as exit:
        task.main(config=TrainConfig(job_dir=tmp_path / "job", train_steps=1))
    assert str(exit.value.code).startswith(f"census train: {words}"), exit.value.code
    assert not (tmp_path / "job").exists()


def test_the_2017_master_only_tf_config_trains_in_the_trials_folder(census_files, tmp_path,
                                                                    monkeypatch, capsys):
    """The report: a master-only TF_CONFIG (2017's BASIC tier, here of a tuning trial) was
    TF's `Disallowed task type` traceback. A cluster of one task trains alone."""
    config = {"cluster": {"master": ["127.0.0.1:1"]},
              "task": {"type": "master", "index": 0, "trial": "2"}, "environment": "cloud"}
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))  # the trainer runs in this process
    monkeypatch.setenv("CLOUD_ML_HP_METRIC_FILE", str(tmp_path / "metrics"))
    cli.main(["train", "--train-files", census_files.train, "--eval-files",
              census_files.validation, "--job-dir", str(tmp_path / "job"), "--train-steps",
              "20", "--eval-every-steps", "20", "--eval-steps", "2", "--verbosity", "ERROR",
              "--hypertune-metric", "accuracy"])
    stdout, stderr = capsys.readouterr()
    metrics = json.loads(stdout)
    assert metrics["exports"][0].startswith(str(tmp_path / "job" / "2" / "export" / "census"))
    assert "trial 2 of a tuning job" in stderr
    assert json.loads((tmp_path / "metrics").read_text())["accuracy"]


def test_a_byte_order_mark_and_windows_line_ends_are_read(uci_dir, tmp_path):
    """Files saved by some editors: a UTF-8 byte order mark, CRLF line ends."""
    from census import data
    lines = (uci_dir / "adult.data").read_text().splitlines()[:30]
    path = tmp_path / "train.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")
    report = data.clean(path, tmp_path / "clean.csv")
    assert report.rows == 30
    assert (tmp_path / "clean.csv").read_text().splitlines() == lines
