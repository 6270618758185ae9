"""The 2017 trainer's entry point: flags, then one `tf.estimator.train_and_evaluate`.

Redone from GoogleCloudPlatform/cloudml-samples, census/estimator/trainer/task.py (commit
7b90d77, 2018-01-30): the same flags, defaults and specs, for TF 2.15. Run it as

    python -m census.museum.task --train-files train.csv --eval-files validation.csv \\
        --job-dir JOB_DIR --train-steps 1000

Checkpoints and events go to JOB_DIR, the SavedModel to JOB_DIR/export/census/<timestamp>.
The evaluation is on --eval-files (the course passes the validation split), 100 batches of
40 rows by default, from a dataset that repeats: more rows than validation.csv holds. The
test split is never read here; `estimator_from(args)` gives the trained model back for that.
"""
import argparse
import os

import tensorflow as tf

from census.museum import model


def estimator_from(args):
    """The DNNLinearCombinedClassifier the flags describe, its checkpoints in args.job_dir
    (restored from there if any): hidden layers first_layer_size * scale_factor**i, i <
    num_layers, at least 2 units each ([100, 70, 49, 34] by default)."""
    run_config = tf.estimator.RunConfig()
    run_config = run_config.replace(model_dir=args.job_dir)
    return model.build_estimator(
        embedding_size=args.embedding_size,
        hidden_units=[max(2, int(args.first_layer_size * args.scale_factor**i))
                      for i in range(args.num_layers)],
        config=run_config,
    )


def run_experiment(args):
    """Train on args.train_files, evaluate on args.eval_files, export once at the end."""
    train_input = lambda: model.input_fn(  # noqa: E731 (the 2017 code's lambdas)
        args.train_files, num_epochs=args.num_epochs, batch_size=args.train_batch_size)
    # No shuffling for evaluation.
    eval_input = lambda: model.input_fn(  # noqa: E731
        args.eval_files, batch_size=args.eval_batch_size, shuffle=False)

    train_spec = tf.estimator.TrainSpec(train_input, max_steps=args.train_steps)
    exporter = tf.estimator.FinalExporter("census", model.SERVING_FUNCTIONS[args.export_format])
    eval_spec = tf.estimator.EvalSpec(
        eval_input, steps=args.eval_steps, exporters=[exporter], name="census-eval")

    estimator = estimator_from(args)
    print(f"model dir {estimator.config.model_dir}")
    tf.estimator.train_and_evaluate(estimator, train_spec, eval_spec)


def parse_args(argv=None):
    """The 2017 flags (argv: list of str; None: sys.argv[1:]) -> argparse.Namespace."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--train-files", nargs="+", required=True,
                        help="local or GCS paths of the training CSV files")
    parser.add_argument("--num-epochs", type=int,
                        help="passes over the training data at most (default: no limit; "
                             "training then stops at --train-steps)")
    parser.add_argument("--train-batch-size", type=int, default=40, help="rows per train step")
    parser.add_argument("--eval-batch-size", type=int, default=40, help="rows per eval step")
    parser.add_argument("--eval-files", nargs="+", required=True,
                        help="local or GCS paths of the evaluation CSV files")
    parser.add_argument("--embedding-size", type=int, default=8,
                        help="embedding width of occupation and native_country")
    parser.add_argument("--first-layer-size", type=int, default=100,
                        help="units of the DNN's first hidden layer")
    parser.add_argument("--num-layers", type=int, default=4, help="hidden layers of the DNN")
    parser.add_argument("--scale-factor", type=float, default=0.7,
                        help="each hidden layer's size over the previous one's")
    parser.add_argument("--job-dir", required=True,
                        help="local or GCS directory for checkpoints and the export")
    parser.add_argument("--verbosity", choices=["DEBUG", "ERROR", "FATAL", "INFO", "WARN"],
                        default="INFO")
    parser.add_argument("--train-steps", type=int,
                        help="train steps in all (needed unless --num-epochs is given)")
    parser.add_argument("--eval-steps", type=int, default=100,
                        help="batches per evaluation")
    parser.add_argument("--export-format", choices=["JSON", "CSV", "EXAMPLE"], default="JSON",
                        help="what the exported SavedModel takes as input")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    # Python logging, then TF's C++ logging: the 2017 formula (INFO 20 -> 2: errors only), with
    # // for its /, which gave "2.0". It counts only for what TF's C++ side logs from here on.
    tf.compat.v1.logging.set_verbosity(args.verbosity)
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = str(getattr(tf.compat.v1.logging, args.verbosity) // 10)
    # TF 1.4's code wrapped the flags in tf.contrib.training.HParams, gone with tf.contrib.
    run_experiment(args)
