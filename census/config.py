"""The trainer's configuration: the 2017 trainer's flags, typed, checked, with defaults.

    config = TrainConfig(job_dir="jobs/census", train_steps=1000)
    task.run(config)                                   # in this process
    [sys.executable, "-m", "census.task", *config.to_args()]   # a process we start

`census train --help` is derived from the fields below (`census.flags`): the flags keep the
2017 trainer's spelling and meaning (cloudml-samples' census `trainer/task.py`), with the
course's defaults (the training length and batch were chosen on the validation split: README,
Quality) and its few more flags (--data-dir, --hypertune-metric). Every value is checked when
the config is built; a bad one raises `census.flags.ConfigError` naming the field.
"""
import dataclasses
import json

from census import flags, signature
from census.flags import ConfigError, number, option, whole

__all__ = ["ConfigError", "REPORTED_METRICS", "RESUMABLE", "RUN_RECORD", "TUNABLE",
           "TrainConfig", "as_config", "changes", "check_rerun", "record", "recorded",
           "split_job_dir"]

REPORTED_METRICS = ("accuracy", "auc", "loss")  # what an evaluation gives, hence what to tune


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """What `census train` (`python -m census.task`) does. Paths are str (local or gs://);
    `train_files`/`eval_files` tuples of them (a single path is taken as one)."""
    job_dir: str = option(None, help="where checkpoints, logs and exports go (default on "
                          "Vertex AI: the job's AIP_CHECKPOINT_DIR, AIP_MODEL_DIR and "
                          "AIP_TENSORBOARD_LOG_DIR)")
    train_files: tuple = option(None, many=True, help="training CSV files, local or gs:// "
                                "(default: the census training split, fetched and cleaned)")
    eval_files: tuple = option(None, many=True, help="validation CSV files, evaluated during "
                               "training (default: the census validation split)")
    train_steps: int = option(2500, whole(1), "training steps (batches)")
    eval_steps: int = option(None, whole(1), "batches per evaluation (default: the whole "
                             "eval set)")
    eval_every_steps: int = option(500, whole(1), "evaluate this often")
    train_batch_size: int = option(128, whole(1))
    eval_batch_size: int = option(1000, whole(1))
    num_epochs: int = option(None, whole(1), "passes over the training data (default: as "
                             "many as the steps need)")
    first_layer_size: int = option(100, whole(1))
    num_layers: int = option(4, whole(1))
    scale_factor: float = option(0.7, number(above=0, most=1),
                                 "each hidden layer this times the one before")
    embedding_size: int = option(8, whole(1))
    learning_rate: float = option(0.001, number(above=0), "at the start; it decays along a "
                                  "cosine to a tenth by the last step")
    export_format: str = option("JSON", choices=signature.FORMATS)
    data_dir: str = option(None, help="local folder with adult.data and adult.test, used "
                           "when --train-files/--eval-files are not given")
    verbosity: str = option("INFO", choices=("DEBUG", "INFO", "WARN", "ERROR"))
    hypertune_metric: str = option(None, choices=REPORTED_METRICS,
                                   help="report this final eval metric (e.g. accuracy) for "
                                   "hyperparameter tuning through cloudml-hypertune, as "
                                   "Vertex AI reads it")

    def __post_init__(self):
        flags.check(self)

    def replace(self, **changes):
        """A copy with `changes` (field names), checked. Raises ConfigError (TypeError for a
        name that is no field)."""
        return dataclasses.replace(self, **changes)

    def to_args(self):
        """The trainer's command line for this config (list of str): what a cluster task, a
        tuning trial or a Vertex AI job runs with."""
        return flags.to_args(self)

    @classmethod
    def from_args(cls, argv):
        """The config a trainer command line `argv` (list of str) gives. Raises
        ConfigError in argparse's words."""
        return flags.parse(cls, argv)


RUN_RECORD = "run_config.json"  # in the job dir: the flags of the run it holds
RESUMABLE = ("job_dir", "data_dir", "verbosity", "hypertune_metric")
"""The fields a rerun may change and still resume the job dir's run: where it is, where the
census files are found, how much it logs, what it reports. Every other field defines the run:
the data, the model, the learning-rate schedule (it decays over `train_steps`, so unlike the
2017 Estimator's max_steps, more steps are a new run), the evaluation schedule, the export."""


def recorded(job_dir):
    """The TrainConfig recorded in `job_dir` (local or gs://) by `record`, or None."""
    import tensorflow as tf
    path = f"{str(job_dir).rstrip('/')}/{RUN_RECORD}"
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return TrainConfig(**json.load(f))


def check_rerun(config):
    """Refuse a run into a job dir that holds another run's state. A job dir without
    checkpoints is free (nothing was trained there yet); one whose record (`record`) has equal
    flags, but for `RESUMABLE`, is resumed. Raises ConfigError, one sentence naming each flag
    that differs."""
    import tensorflow as tf
    if not tf.io.gfile.exists(f"{config.job_dir.rstrip('/')}/checkpoints"):
        return
    before = recorded(config.job_dir)
    if before is None:
        raise ConfigError(f"{config.job_dir} holds checkpoints of a run whose flags were not "
                          f"recorded ({RUN_RECORD}): give another --job-dir")
    changed = changes(before, config)
    if changed:
        raise ConfigError(f"{config.job_dir} holds a run with other flags ({'; '.join(changed)})"
                          ": rerun with its flags to resume it, or give another --job-dir")


def changes(before, now, keep=RESUMABLE):
    """How TrainConfig `now` differs from `before` but for the fields `keep`: a list of
    "--train-steps was 200, now 400" (str), in field order."""
    return [f"{flags.flag(f)} was {_shown(getattr(before, f.name))}, now "
            f"{_shown(getattr(now, f.name))}" for f in dataclasses.fields(now)
            if f.name not in keep and getattr(before, f.name) != getattr(now, f.name)]


def _shown(value):
    if value is None:
        return "not given"
    return " ".join(value) if isinstance(value, tuple) else str(value)


def record(config):
    """Record `config` in its job dir (`RUN_RECORD`, JSON), written whole or not at all: a
    rerun reads it back (`check_rerun`)."""
    import tensorflow as tf
    path = f"{config.job_dir.rstrip('/')}/{RUN_RECORD}"
    tf.io.gfile.makedirs(config.job_dir)
    with tf.io.gfile.GFile(path + ".tmp", "w") as f:
        f.write(json.dumps(dataclasses.asdict(config), indent=2) + "\n")
    tf.io.gfile.rename(path + ".tmp", path, overwrite=True)


def as_config(trainer):
    """`trainer` as a TrainConfig: itself, or the config its command line (list of str, as
    launchers take it after `--`) gives. Raises ConfigError saying where the flags were."""
    if isinstance(trainer, TrainConfig):
        return trainer
    try:
        return TrainConfig.from_args(trainer)
    except ConfigError as e:
        raise ConfigError(f"the trainer flags after `--`: {e}") from None


def split_job_dir(trainer):
    """(job dir or None, the other flags): `trainer` is a TrainConfig, or the command line
    (list of str) of a trainer — the course's or another module's — as launchers take it
    after `--`. For launchers that give each task or trial a folder of its own."""
    args = trainer.to_args() if isinstance(trainer, TrainConfig) else list(trainer)
    job_dir, rest = None, []
    while args:
        arg = args.pop(0)
        if arg == "--job-dir" and args:
            job_dir = args.pop(0)
        elif arg.startswith("--job-dir="):
            job_dir = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return job_dir, rest


TUNABLE = tuple(f.name for f in dataclasses.fields(TrainConfig)
                if f.name not in ("job_dir", "train_files", "eval_files", "data_dir",
                                  "hypertune_metric", "verbosity"))
"""The fields a hyperparameter study may set (its parameterId is the flag's name, as in
2017: `first-layer-size`)."""
