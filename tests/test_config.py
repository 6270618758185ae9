"""The trainer's typed configuration and the serving options: the 2017 defaults, every check
once, the command line derived from them, and config → args → config."""
import dataclasses
import math

import pytest

from census import flags, task
from census.config import TUNABLE, ConfigError, TrainConfig, as_config, split_job_dir
from census.serving import cli as serving_cli
from census.tuning import study as tuning_study

# `census train --help`'s defaults, as the course has always had them (README, Quality).
DEFAULTS = {"train_steps": 2500, "eval_every_steps": 500, "train_batch_size": 128,
                 "eval_batch_size": 1000, "first_layer_size": 100, "num_layers": 4,
                 "scale_factor": 0.7, "embedding_size": 8, "learning_rate": 0.001,
                 "export_format": "JSON", "verbosity": "INFO", "eval_steps": None,
                 "num_epochs": None}


def test_the_trainers_defaults():
    config = TrainConfig(job_dir="j")
    assert {k: getattr(config, k) for k in DEFAULTS} == DEFAULTS
    assert TrainConfig.from_args(["--job-dir", "j"]) == config


ROUND_TRIPS = [
    TrainConfig(job_dir="j"),
    TrainConfig(job_dir="gs://b/census/job 1", train_files="gs://b/train.csv",
                eval_files=["v1.csv", "v2.csv"], train_steps=5000, eval_steps=100,
                scale_factor=0.1 + 0.2, learning_rate=1e-4, export_format="EXAMPLE",
                hypertune_metric="auc", verbosity="ERROR", num_epochs=3, data_dir="raw"),
    TrainConfig(job_dir="j", learning_rate=2, scale_factor=1),
]


@pytest.mark.parametrize("config", ROUND_TRIPS)
def test_config_to_args_to_config(config):
    args = config.to_args()
    assert all(isinstance(a, str) for a in args)
    assert TrainConfig.from_args(args) == config
    assert flags.from_namespace(TrainConfig, task.parser().parse_args(args)) == config


def test_values_take_their_fields_types():
    config = TrainConfig(job_dir=__import__("pathlib").Path("jobs") / "a", train_files="t.csv",
                         learning_rate=1, scale_factor="0.5", train_steps="10")
    assert (config.job_dir, config.train_files) == ("jobs/a", ("t.csv",))
    assert config.learning_rate == 1.0 and isinstance(config.learning_rate, float)
    assert (config.scale_factor, config.train_steps) == (0.5, 10)


@pytest.mark.parametrize("changes, words", [
    ({"train_steps": 0}, "train_steps must be a whole number of at least 1, got 0"),
    ({"train_steps": 2.5}, "train_steps must be a whole number of at least 1, got 2.5"),
    ({"train_steps": True}, "train_steps must be a whole number of at least 1, got True"),
    ({"eval_every_steps": -1}, "eval_every_steps must be a whole number of at least 1"),
    ({"learning_rate": math.nan}, "learning_rate must be a number greater than 0, got nan"),
    ({"learning_rate": math.inf}, "learning_rate must be a number greater than 0, got inf"),
    ({"scale_factor": 1.5}, "scale_factor must be a number greater than 0 and at most 1"),
    ({"export_format": "json"}, "export_format must be one of JSON, CSV, EXAMPLE, got 'json'"),
    ({"hypertune_metric": "precision"}, "hypertune_metric must be one of accuracy, auc, loss"),
    ({"job_dir": ""}, "job_dir must be a non-empty str"),
    ({"train_files": []}, "train_files needs at least one path"),
    ({"train_files": [3]}, "train_files must be a non-empty str (or a path), got 3"),
    ({"train_batch_size": None}, "train_batch_size must be given (default 128), not None"),
])
def test_a_bad_value_is_refused_naming_its_field(changes, words):
    with pytest.raises(ConfigError) as error:
        TrainConfig(**{"job_dir": "j", **changes})
    assert str(error.value).startswith(words), error.value
    with pytest.raises(ConfigError):  # replace checks as the constructor does
        TrainConfig(job_dir="j").replace(**changes)


def test_a_config_is_immutable_and_replace_makes_a_checked_copy():
    config = TrainConfig(job_dir="j")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.job_dir = "k"
    assert config.replace(job_dir="j/3").job_dir == "j/3" and config.job_dir == "j"
    with pytest.raises(TypeError):
        config.replace(train_step=1)


@pytest.mark.parametrize("argv, words", [
    (["--job-dir"], "argument --job-dir: expected one argument"),
    (["--job-dir", "j", "--train-steps", "0"],
     "argument --train-steps: must be a whole number of at least 1, got '0'"),
    (["--job-dir", "j", "--train-file", "a.csv"], "unrecognized arguments: --train-file a.csv"),
    (["--job-dir", "j", "--export-format", "json"], "argument --export-format: invalid choice"),
])
def test_a_command_line_is_refused_in_argparse_words_without_exiting(argv, words):
    with pytest.raises(ConfigError) as error:
        TrainConfig.from_args(argv)
    assert str(error.value).startswith(words), error.value


def test_the_command_line_is_derived_from_the_fields():
    parser = task.parser()
    dests = {a.dest for a in parser._actions if a.option_strings and a.dest != "help"}
    assert dests == {f.name for f in dataclasses.fields(TrainConfig)}
    for field in dataclasses.fields(TrainConfig):
        if field.default is not dataclasses.MISSING:
            assert parser.get_default(field.name) == field.default, field.name


def test_help_says_each_default_once_and_none_for_a_flag_without_one():
    """The report: six flags of `census train --help` read '(default: …) (default: None)'."""
    import re

    from census import cli
    train = next(a for a in cli.parser()._actions if a.dest == "command").choices["train"]
    for parser in (task.parser(), train):
        blocks = {b.split()[0]: " ".join(b.split()) for b in
                  re.split(r"\n  (?=--)", parser.format_help()) if b.startswith("--")}
        for field in dataclasses.fields(TrainConfig):
            said = blocks[flags.flag(field)]
            assert said.count("(default") <= 1 and "(default: None)" not in said, said
            if field.default not in (None, dataclasses.MISSING):
                assert f"(default: {field.default})" in said, said


def test_a_launchers_trainer_flags_become_a_config_or_one_sentence():
    config = TrainConfig(job_dir="j", train_steps=20)
    assert as_config(config) is config and as_config(config.to_args()) == config
    with pytest.raises(ConfigError, match="^the trainer flags after `--`: unrecognized"):
        as_config(["--job-dir", "j", "--train-step", "20"])


def test_split_job_dir_of_a_config_and_of_a_command_line():
    config = TrainConfig(job_dir="study", train_steps=20)
    assert split_job_dir(config) == ("study", ["--train-steps", "20"])
    assert split_job_dir(["--x=1", "--job-dir=a", "--n", "2"]) == ("a", ["--x=1", "--n", "2"])
    assert split_job_dir(["--n", "2"]) == (None, ["--n", "2"])


def test_a_study_is_checked_with_the_configs_own_checks():
    assert set(TUNABLE) >= {"learning_rate", "train_batch_size", "first_layer_size"}
    assert "job_dir" not in TUNABLE and "hypertune_metric" not in TUNABLE
    assert tuning_study.trainer_error({"first-layer-size": 120, "scale-factor": 0.5}) is None
    assert tuning_study.trainer_error({"train-batch-size": 64.0}) == (
        "--train-batch-size must be a whole number of at least 1, got 64.0")
    assert tuning_study.trainer_error({"job-dir": "x"}) == \
        "'job-dir' is not a trainer flag that can be tuned"
    assert tuning_study.trainer_error({"first_layer_size": 1}) == \
        "'first_layer_size' is not a trainer flag that can be tuned"


def test_serving_options_are_checked_and_derived_the_same_way():
    config = serving_cli.options("models", poll_seconds=0.2, port=8600, stop_with_parent=True)
    assert flags.parse(serving_cli.ServeConfig, flags.to_args(config)) == config
    assert flags.to_args(config) == ["--model-base-path", "models", "--port", "8600",
                                     "--poll-seconds", "0.2", "--stop-with-parent"]
    for bad, words in [({"port": 0}, "port must be a whole number from 1 to 65535, got 0"),
                       ({"keep_versions": 0}, "keep_versions must be a whole number"),
                       ({"http": "h2"}, "http must be one of auto, h11, httptools"),
                       ({"stop_with_parent": "yes"}, "stop_with_parent must be True or False")]:
        with pytest.raises(ConfigError, match=words):
            serving_cli.options("models", **bad)
    with pytest.raises(TypeError):
        serving_cli.options("models", poll_secs=1)


def test_a_rerun_resumes_with_the_same_flags_and_is_refused_with_others(tmp_path):
    """The report: `census train` into a used --job-dir silently overwrote its run. The run's
    flags are recorded; a rerun resumes with the same ones and is refused with others, in one
    sentence naming each flag that differs."""
    from census.config import RUN_RECORD, check_rerun, record, recorded
    config = TrainConfig(job_dir=str(tmp_path / "job"), train_steps=300, eval_steps=5)
    check_rerun(config)  # an empty (here: missing) job dir is free
    record(config)
    assert recorded(config.job_dir) == config
    assert sorted(p.name for p in (tmp_path / "job").iterdir()) == [RUN_RECORD]  # written whole
    check_rerun(config.replace(train_steps=600))  # nothing trained yet: still free
    (tmp_path / "job" / "checkpoints").mkdir()
    check_rerun(config.replace(verbosity="ERROR", data_dir="elsewhere"))  # the same run
    with pytest.raises(ConfigError) as error:
        check_rerun(config.replace(train_steps=600, eval_steps=None,
                                   train_files=("a.csv", "b.csv")))
    assert str(error.value) == (
        f"{config.job_dir} holds a run with other flags (--train-files was not given, now a.csv "
        "b.csv; --train-steps was 300, now 600; --eval-steps was 5, now not given): rerun with "
        "its flags to resume it, or give another --job-dir")
    (tmp_path / "old" / "checkpoints").mkdir(parents=True)  # a run whose flags nobody knows
    with pytest.raises(ConfigError, match="holds checkpoints of a run whose flags were not "
                       "recorded"):
        check_rerun(config.replace(job_dir=str(tmp_path / "old")))
