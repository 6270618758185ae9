"""The trainer: parse the 2017 flags, then one `train_and_evaluate` call.

    python -m census.task --train-files train.csv --eval-files validation.csv --job-dir JOB

Run alone or as a task of a cluster: `TF_CONFIG` alone decides, the flags stay the same.
Without --train-files/--eval-files it trains on the census training split and evaluates on
its validation split (`census.data`); the test split is not read. The files given to
--eval-files are the validation data: every evaluation, the exporters' choice and a tuning
study's metric are measured on them.
"""
import argparse
import json
import os
import sys
import tempfile

from census import flags, quiet

REPORTED_METRICS = ("accuracy", "auc", "loss")  # what an evaluation gives, hence what to tune


def parser():
    """The trainer's command line (`python -m census.task`, as Vertex AI runs it)."""
    p = argparse.ArgumentParser(prog="census train", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                allow_abbrev=False)  # --train-file must not pass for --train-files
    add_arguments(p)
    return p


def add_arguments(p):
    """The 2017 trainer's flags, correctly spelled, and the course's few more."""
    p.add_argument("--train-files", nargs="+", help="training CSV files, local or gs:// "
                   "(default: the census training split, fetched and cleaned)")
    p.add_argument("--eval-files", nargs="+", help="validation CSV files, evaluated during "
                   "training (default: the census validation split)")
    p.add_argument("--job-dir", required=True, help="where checkpoints, logs and exports go")
    p.add_argument("--train-steps", type=flags.whole(1), default=2500,
                   help="training steps (batches)")
    p.add_argument("--eval-steps", type=flags.whole(1), default=None,
                   help="batches per evaluation (default: the whole eval set)")
    p.add_argument("--eval-every-steps", type=flags.whole(1), default=500,
                   help="evaluate this often")
    p.add_argument("--train-batch-size", type=flags.whole(1), default=128)
    p.add_argument("--eval-batch-size", type=flags.whole(1), default=1000)
    p.add_argument("--num-epochs", type=flags.whole(1), default=None,
                   help="passes over the training data (default: as many as the steps need)")
    p.add_argument("--first-layer-size", type=flags.whole(1), default=100)
    p.add_argument("--num-layers", type=flags.whole(1), default=4)
    p.add_argument("--scale-factor", type=flags.number(above=0, most=1), default=0.7,
                   help="each hidden layer this times the one before")
    p.add_argument("--embedding-size", type=flags.whole(1), default=8)
    p.add_argument("--learning-rate", type=flags.number(above=0), default=0.001,
                   help="at the start; it decays along a cosine to a tenth by the last step")
    p.add_argument("--export-format", choices=("JSON", "CSV", "EXAMPLE"), default="JSON")
    p.add_argument("--data-dir", help="local folder with adult.data and adult.test, used "
                   "when --train-files/--eval-files are not given")
    p.add_argument("--verbosity", choices=("DEBUG", "INFO", "WARN", "ERROR"), default="INFO")
    p.add_argument("--hypertune-metric", choices=REPORTED_METRICS,
                   help="report this final eval metric (e.g. accuracy) "
                   "for hyperparameter tuning through cloudml-hypertune, as Vertex AI reads it")


def split_job_dir(trainer_args):
    """(the --job-dir of a trainer command line, or None; its other flags): for launchers that
    give each task or trial a folder of its own."""
    job_dir, rest, args = None, [], list(trainer_args)
    while args:
        arg = args.pop(0)
        if arg == "--job-dir" and args:
            job_dir = args.pop(0)
        elif arg.startswith("--job-dir="):
            job_dir = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return job_dir, rest


def run(args):
    """Train and export as the parsed flags say; returns the final metrics."""
    import tensorflow as tf

    from census import data
    from census.distribute import tf_config

    tf.get_logger().setLevel(args.verbosity)
    trial = tf_config.read_tf_config().get("trial")
    if trial:  # a tuning job's trial (2017's Cloud ML Engine, Vertex AI): its own folder,
        args.job_dir = os.path.join(args.job_dir, str(trial))  # as the 2017 trainer did
        print(f"census train: trial {trial} of a tuning job: writing to {args.job_dir}",
              file=sys.stderr, flush=True)
    train_files, eval_files = args.train_files, args.eval_files
    if not (train_files and eval_files):
        files = data.fetch(args.data_dir)
        train_files = train_files or [files.train]
        eval_files = eval_files or [files.validation]
    with tempfile.TemporaryDirectory(prefix="census-inputs-") as cleaned:
        # Every file is read and checked before the first step (raw UCI files are cleaned):
        # a bad row stops the job now, not at the first evaluation minutes later.
        train_files, notes = data.check_training_files(train_files, f"{cleaned}/train")
        eval_files, eval_notes = data.check_training_files(eval_files, f"{cleaned}/eval")
        for note in notes + eval_notes:
            print(f"census train: {note}", file=sys.stderr, flush=True)
        return _train(args, train_files, eval_files)


def _train(args, train_files, eval_files):
    from census import export, inputs, model, training
    from census.distribute import tf_config
    train_spec = training.TrainSpec(
        lambda: inputs.input_fn(train_files, num_epochs=args.num_epochs,
                                batch_size=args.train_batch_size),
        max_steps=args.train_steps)
    eval_spec = training.EvalSpec(
        lambda: inputs.input_fn(eval_files, num_epochs=None if args.eval_steps else 1,
                                shuffle=False, batch_size=args.eval_batch_size),
        steps=args.eval_steps, every_steps=args.eval_every_steps,
        exporters=[export.FinalExporter("census", args.export_format)])

    def build():
        return model.build_model(args.first_layer_size, args.num_layers, args.scale_factor,
                                 args.embedding_size, args.learning_rate,
                                 decay_steps=args.train_steps)
    metrics = training.train_and_evaluate(build, train_spec, eval_spec, args.job_dir,
                                          verbose=2 if args.verbosity != "ERROR" else 0)
    if args.hypertune_metric and tf_config.is_chief():
        import hypertune  # writes JSON lines to $CLOUD_ML_HP_METRIC_FILE
        hypertune.HyperTune().report_hyperparameter_tuning_metric(
            args.hypertune_metric, metrics[args.hypertune_metric], metrics["global_step"])
    return metrics


def main(argv=None, args=None):
    """`census train` (or `python -m census.task`): train, print the final metrics as JSON."""
    args = args or parser().parse_args(argv)
    quiet.import_tensorflow()
    from census import data
    from census.distribute import tf_config
    try:
        metrics = run(args)
    except (data.DataError, tf_config.TFConfigError) as e:
        sys.exit(f"census train: {e}")
    print(json.dumps(metrics, indent=2))
    return metrics


if __name__ == "__main__":
    main()
