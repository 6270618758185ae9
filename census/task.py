"""The trainer: parse the 2017 flags, then one `train_and_evaluate` call.

    python -m census.task --train-files train.csv --eval-files validation.csv --job-dir JOB

Run alone or as a task of a cluster: `TF_CONFIG` alone decides, the flags stay the same.
On Vertex AI, leave --job-dir out: the trainer writes where the job's `AIP_*` variables say
(`census.distribute.vertex_env`); a tuning trial writes to its own folder either way.
The same command again resumes the job dir's run; other flags are refused (`census.config`:
`RESUMABLE`, `check_rerun`).
Without --train-files/--eval-files it trains on the census training split and evaluates on
its validation split (`census.data`); the test split is not read. The files given to
--eval-files are the validation data: every evaluation, the exporters' choice and a tuning
study's metric are measured on them.
"""
import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile

from census import flags, processes, quiet
from census.config import ConfigError, TrainConfig, check_rerun, record


def parser():
    """The trainer's command line (`python -m census.task`, as Vertex AI runs it)."""
    p = argparse.ArgumentParser(prog="census train", description=__doc__.splitlines()[0],
                                formatter_class=flags.HelpFormatter,
                                allow_abbrev=False)  # --train-file must not pass for --train-files
    add_arguments(p)
    return p


def add_arguments(p):
    """The 2017 trainer's flags, correctly spelled, and the course's few more: the fields of
    `census.config.TrainConfig`."""
    flags.add_arguments(p, TrainConfig)


def run(config):
    """Train and export as `config` (a TrainConfig) says; returns the final metrics (dict:
    accuracy, auc, loss, global_step …). A job dir holding a run with the same flags (but for
    `config.RESUMABLE`) resumes it, from its last evaluation. Raises census.data.DataError
    for bad data files, TFConfigError for a bad $TF_CONFIG or $CLUSTER_SPEC, ConfigError for
    a job dir that holds another run (`config.check_rerun`) or no job dir at all."""
    import tensorflow as tf

    from census import data, export
    from census.distribute import strategy as distribution, tf_config, vertex_env

    tf.get_logger().setLevel(config.verbosity)
    # Where to write: --job-dir (in a tuning trial, <job dir>/<trial>), else Vertex AI's AIP_*
    # directories. The job dir is the run's memory: checkpoints, backup, evaluations, record.
    dirs = vertex_env.output_dirs(config.job_dir)
    if dirs.note:
        print(f"census train: {dirs.note}", file=sys.stderr, flush=True)
    config = config.replace(job_dir=dirs.job_dir)
    chief = tf_config.is_chief()  # it keeps the job dir's record of the run
    if chief:
        check_rerun(config)
        if dirs.model_dir:
            try:
                export.check_model_dir(dirs.model_dir)
            except FileExistsError as e:
                raise ConfigError(f"AIP_MODEL_DIR: {e}") from None
    # The files to read, found and cleaned the same way on every replica that reads data, in
    # plain Python, before the strategy: a parameter-server worker serves from then on, and
    # runs the input functions the chief sends it, with the chief's paths. On Vertex AI it is
    # another machine: each replica fetches the data into its own cache, and cleans raw files
    # into a folder named by the job, both the same paths as the chief's. (An evaluator reads
    # only its own: a folder of its own.)
    role, _, cluster = tf_config.cluster_role()
    key = f"{config.job_dir} {role == 'evaluator'}".encode()
    inputs_dir = os.path.join(tempfile.gettempdir(),
                              f"census-inputs-{hashlib.sha256(key).hexdigest()[:12]}")
    if role != "ps":
        train_files, eval_files = config.train_files, config.eval_files
        if not (train_files and eval_files):
            files = data.fetch(config.data_dir)
            train_files = train_files or [files.train]
            eval_files = eval_files or [files.validation]
        train_files, notes, train_origins = data.clean_training_files(train_files,
                                                                      f"{inputs_dir}/train")
        eval_files, eval_notes, eval_origins = data.clean_training_files(eval_files,
                                                                         f"{inputs_dir}/eval")
    # The strategy before any TensorFlow op (the check below runs tf.io.decode_csv):
    # MultiWorkerMirrored must configure TensorFlow at program start. Parameter-server workers
    # and ps tasks serve the chief from here on, and never return.
    strategy = None if role == "evaluator" else distribution.strategy_from_tf_config()
    try:
        with processes.exit_on_termination():
            # Every row is checked before the first step: a bad one stops the job now, not
            # at the first evaluation minutes later.
            for readable, (path, lines) in zip(train_files + eval_files,
                                               train_origins + eval_origins):
                data.check_decodes(path, readable, lines)
            for note in notes + eval_notes:
                print(f"census train: {note}", file=sys.stderr, flush=True)
            if chief:
                record(config)
            return _train(config, train_files, eval_files, strategy, dirs)
    finally:
        if not cluster:  # alone: its copies go (a cluster's replicas may still read them)
            shutil.rmtree(inputs_dir, ignore_errors=True)


def _train(config, train_files, eval_files, strategy, dirs):
    from census import export, inputs, model, training
    from census.distribute import tf_config
    train_spec = training.TrainSpec(
        lambda: inputs.input_fn(train_files, num_epochs=config.num_epochs,
                                batch_size=config.train_batch_size),
        max_steps=config.train_steps)
    eval_spec = training.EvalSpec(
        lambda: inputs.input_fn(eval_files, num_epochs=None if config.eval_steps else 1,
                                shuffle=False, batch_size=config.eval_batch_size),
        steps=config.eval_steps, every_steps=config.eval_every_steps,
        # Only the chief's SavedModel goes to AIP_MODEL_DIR; the others' copies are private.
        exporters=[export.FinalExporter("census", config.export_format,
                                        model_dir=dirs.model_dir if tf_config.is_chief()
                                        else None)])

    def build():
        return model.build_model(config.first_layer_size, config.num_layers,
                                 config.scale_factor, config.embedding_size,
                                 config.learning_rate, decay_steps=config.train_steps)
    metrics = training.train_and_evaluate(build, train_spec, eval_spec, config.job_dir,
                                          verbose=2 if config.verbosity != "ERROR" else 0,
                                          strategy=strategy,
                                          tensorboard_dir=dirs.tensorboard_dir)
    if config.hypertune_metric and tf_config.is_chief():
        import hypertune  # writes JSON lines to $CLOUD_ML_HP_METRIC_FILE
        hypertune.HyperTune().report_hyperparameter_tuning_metric(
            config.hypertune_metric, metrics[config.hypertune_metric], metrics["global_step"])
    return metrics


def main(argv=None, config=None):
    """`census train` (or `python -m census.task`): train as `config` says (else as the
    command line `argv` says, default sys.argv[1:]), print the final metrics as JSON."""
    if config is None:
        config = flags.from_namespace(TrainConfig, parser().parse_args(argv))
    quiet.import_tensorflow()
    from census import data
    from census.distribute import tf_config
    try:
        metrics = run(config)
    except (data.DataError, tf_config.TFConfigError, ConfigError) as e:
        sys.exit(f"census train: {e}")
    print(json.dumps(metrics, indent=2))
    return metrics


if __name__ == "__main__":
    main()
