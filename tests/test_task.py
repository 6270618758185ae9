"""The trainer's command line as users give it: raw UCI files, bad files, bad flags."""
import json

import pytest

from census import task
from conftest import run_census


def test_raw_uci_files_train_as_the_2017_users_passed_them(uci_dir, tmp_path):
    """UCI's files as downloaded (comment line, labels ending in '.', blank last lines) are
    cleaned as `census data` cleans them, said in one line each, and the job trains."""
    done = run_census("train", "--train-files", uci_dir / "adult.data", "--eval-files",
                      uci_dir / "adult.test", "--job-dir", tmp_path / "job", "--train-steps",
                      "40", "--eval-every-steps", "40", "--eval-steps", "5",
                      "--verbosity", "ERROR")
    assert done.returncode == 0, done.stderr[-3000:]
    assert (f"census train: {uci_dir / 'adult.test'} is in UCI's raw format (1 comment line, "
            "1 blank line, 16,281 labels ending in '.'): reading a copy cleaned as "
            "`census data` cleans it") in done.stderr
    assert f"{uci_dir / 'adult.data'} is in UCI's raw format (1 blank line)" in done.stderr
    metrics = json.loads(done.stdout)
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
], ids=["fields", "number", "label", "encoding", "empty"])
def test_a_file_the_trainer_cannot_read_is_refused_before_training(uci_dir, tmp_path, change,
                                                                   words):
    bad = bad_copy(uci_dir, tmp_path, change)
    job = tmp_path / "job"
    with pytest.raises(SystemExit) as exit:
        task.main(["--train-files", str(bad), "--eval-files", str(uci_dir / "adult.test"),
                   "--job-dir", str(job), "--train-steps", "10"])
    message = str(exit.value.code)
    assert message.startswith("census train: ") and words in message, message
    assert "\n" not in message and not job.exists()  # refused before anything was written


def test_a_missing_file_is_one_sentence(uci_dir, tmp_path):
    with pytest.raises(SystemExit) as exit:
        task.main(["--train-files", str(uci_dir / "adult.data"), "--eval-files",
                   str(tmp_path / "nope.csv"), "--job-dir", str(tmp_path / "job")])
    assert str(exit.value.code) == (f"census train: {tmp_path / 'nope.csv'}: cannot be read "
                                    "(No such file or directory)")
