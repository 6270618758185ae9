import argparse
import re

import pytest

from census import processes
from conftest import run_census


def test_help_lists_the_commands():
    done = run_census("--help")
    assert done.returncode == 0
    assert all(c in done.stdout for c in ("census data", "census train", "census predict"))
    assert run_census("frobnicate").returncode == 2


def test_census_data_describes_the_local_files(uci_dir, tmp_path):
    done = run_census("data", "--data-dir", uci_dir, "--cache-dir", tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    for split, rows in (("train", "29,305"), ("validation", "3,256"), ("test", "16,281")):
        assert re.search(rf"\b{split}:[^\n]*\b{rows} rows", done.stdout), done.stdout
        assert (tmp_path / f"{split}.csv").is_file()


def test_census_data_without_network_names_the_local_option(tmp_path):
    port = processes.free_port()  # nobody listens there
    env = {"CENSUS_DATA_DIR": "", "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}",
           "CENSUS_CACHE_DIR": str(tmp_path)}
    # Both remote sources point at a closed port on this machine.
    done = run_census("data", env=env | {"CENSUS_UCI_URL": f"http://127.0.0.1:{port}/a.zip"})
    assert done.returncode == 1
    assert "--data-dir" in done.stderr and "CENSUS_DATA_DIR" in done.stderr
    assert "Traceback" not in done.stderr


def test_train_flags_are_the_2017_ones_correctly_spelled():
    done = run_census("train", "--help")
    for flag in ("--train-files", "--eval-files", "--job-dir", "--train-steps", "--eval-steps",
                 "--train-batch-size", "--eval-batch-size", "--num-epochs", "--first-layer-size",
                 "--num-layers", "--scale-factor", "--embedding-size", "--learning-rate",
                 "--export-format", "--verbosity"):
        assert flag in done.stdout, flag
    bad = run_census("train", "--job-dir", "x", "--train-file", "a.csv")
    assert bad.returncode == 2 and "unrecognized arguments: --train-file" in bad.stderr


def numeric_flags():
    """(command, flag, its type) for every flag of every `census` command that takes a number:
    each must be checked when parsed (a `census.flags` type, never a bare int or float)."""
    from census import cli
    parsers = {}

    def walk(parser, name):
        parsers[name] = parser
        for action in parser._actions:
            if isinstance(action.choices, dict) and all(  # the subcommands
                    isinstance(p, argparse.ArgumentParser) for p in action.choices.values()):
                for sub, subparser in action.choices.items():
                    walk(subparser, f"{name} {sub}")
    walk(cli.parser(), "census")
    for command, parser in parsers.items():
        for action in parser._actions:
            if action.option_strings and action.type is not None and action.type is not str:
                yield command, action.option_strings[-1], action.type


def test_no_numeric_flag_takes_a_bare_int_or_float():
    found = list(numeric_flags())
    assert len(found) >= 25
    bare = [(c, f) for c, f, t in found if t in (int, float)]
    assert not bare


@pytest.mark.parametrize("command, flag, parse", list(numeric_flags()),
                         ids=[f"{c} {f}" for c, f, _ in numeric_flags()])
def test_every_numeric_flag_refuses_what_it_cannot_take(command, flag, parse):
    """Zero (where counts start at 1), negatives, NaN, infinity, words: one argparse line."""
    import argparse
    refused = 0
    for text in ("0", "-1", "nan", "inf", "ten", "1e9999", "70000"):
        try:
            parse(text)
        except argparse.ArgumentTypeError as error:
            refused += 1
            assert str(error).startswith("must be a ") and repr(text) in str(error)
    assert refused >= 4, (command, flag)


def test_a_zero_interval_is_refused_when_parsed_not_after_training():
    """The report: `--eval-every-steps 0` was a ZeroDivisionError; now argparse refuses it,
    and so do the Python specs."""
    from census import training
    done = run_census("train", "--job-dir", "x", "--eval-every-steps", "0")
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1] == (
        "census train: error: argument --eval-every-steps: must be a whole number of at least "
        "1, got '0'")
    with pytest.raises(ValueError, match=r"EvalSpec.every_steps must be a whole number of at "
                                         r"least 1, got 0"):
        training.EvalSpec(lambda: None, every_steps=0)
    with pytest.raises(ValueError, match=r"TrainSpec.max_steps"):
        training.TrainSpec(lambda: None, max_steps=-5)
