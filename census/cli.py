"""The `census` command: one argparse tree, every job of the course a subcommand.

    census data                                           fetch, verify, clean, describe
    census train --job-dir JOB [trainer flags]            train and export (= python -m census.task)
    census predict --model-dir DIR --json-instances F     local prediction, as a table
    census predict … --output-dir OUT                     a local batch prediction job
    census cluster [options] -- TRAINER FLAGS             a local cluster (chapter 7)
    census tune --config F [options] -- TRAINER FLAGS     a hyperparameter study (chapter 8)
    census serve --model-base-path JOB/export/census      TF Serving's REST API (chapter 9)
    census course run | outputs | sync | map | lab        the chapters
    census exercises make | check | grade                 the classroom exercises

The learner's commands are defined here; each subpackage adds its own (`add_command`).
Every subparser refuses abbreviations (`allow_abbrev=False`): `--train-file` is an error,
not `--train-files`.
"""
import argparse
import json
import sys

from census import flags, quiet, task
from census.config import TrainConfig


def parser():
    """The `census` command's parser: the learner's commands, then each subpackage's."""
    from census.course import cli as course_cli
    from census.distribute import cli as cluster_cli
    from census.serving import cli as serving_cli
    from census.tuning import cli as tuning_cli
    p = argparse.ArgumentParser(prog="census", allow_abbrev=False,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n")[1])
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("data", allow_abbrev=False, help="fetch, verify, clean and describe the "
                       "Census Income data (chapter 1)",
                       description="Fetch, verify, clean and describe the Census Income data.")
    d.add_argument("--data-dir", help="local folder with adult.data and adult.test "
                   "(or adult.data.csv and adult.test.csv); else $CENSUS_DATA_DIR, else download")
    d.add_argument("--cache-dir", help="where downloads and cleaned files go "
                   "(default: $CENSUS_CACHE_DIR or ~/.cache/census)")
    d.set_defaults(run=run_data)

    t = sub.add_parser("train", allow_abbrev=False, help="train and export (chapter 4)",
                       description=task.__doc__.splitlines()[0],
                       formatter_class=flags.HelpFormatter)
    task.add_arguments(t)
    t.set_defaults(run=lambda args: task.main(config=flags.from_namespace(TrainConfig, args)))

    p_ = sub.add_parser("predict", allow_abbrev=False, help="predict with an export, locally or "
                        "through a server (chapter 6)", description="Predict with an exported "
                        "SavedModel, like `gcloud ml-engine local predict`.")
    source = p_.add_mutually_exclusive_group(required=True)
    source.add_argument("--model-dir", help="an export version directory, or the "
                        "export base directory (its newest version is used)")
    source.add_argument("--url", help="a model server instead (`census serve`, TF Serving, a "
                        "Vertex AI endpoint): its address, http://127.0.0.1:8501, a model URL, "
                        "…/v1/models/census[/versions/N][:predict], or an endpoint's, "
                        "…/endpoints/E[/deployedModels/D]:predict (each in its own dialect)")
    given = p_.add_mutually_exclusive_group(required=True)
    given.add_argument("--json-instances", metavar="FILE", help="one JSON value per line: an "
                       "object with the 13 inputs (JSON exports), a CSV row string (CSV) or "
                       '{"b64": …} of a serialized tf.train.Example (EXAMPLE)')
    given.add_argument("--text-instances", metavar="FILE", help="one CSV row per line, the "
                       "training files' 14 fields without the label (CSV exports)")
    given.add_argument("--tfrecord-instances", metavar="FILE", help="a TFRecord file of "
                       "serialized tf.train.Example protos (EXAMPLE exports)")
    p_.add_argument("--compression", choices=("GZIP", "ZLIB"), help="how the file of "
                    "--tfrecord-instances is compressed (default: not compressed)")
    p_.add_argument("--format", choices=("table", "json"), default="table")
    p_.add_argument("--signature", default="serving_default", help="the signature to call "
                    "(default serving_default; predict for an export without it, as the 2017 "
                    "census export)")
    batch = p_.add_argument_group("a batch job (chapter 10)", "With --output-dir, the "
                                  "instances stream through the export (files of any size, "
                                  "local or gs://) into a new folder of Vertex AI's batch "
                                  "prediction layout; refused instances go to its errors files.")
    batch.add_argument("--output-dir", help="where the job's folder prediction-MODEL-TIME goes "
                       "(a folder or gs://BUCKET/…)")
    batch.add_argument("--batch-size", type=flags.whole(1), default=64,
                       help="instances per call of the signature (default 64)")
    batch.add_argument("--model-name", default="census", help="MODEL in the folder's name "
                       "(default census)")
    p_.set_defaults(run=run_predict)

    cluster_cli.add_command(sub)
    tuning_cli.add_command(sub)
    serving_cli.add_command(sub)
    course_cli.add_commands(sub)
    return p


def run_data(args):
    """`census data`: fetch, verify, clean and describe; exit 1 with the reason if it cannot."""
    from census import data
    try:
        print(data.describe(data.fetch(args.data_dir, args.cache_dir)))
    except data.DataError as e:
        sys.exit(f"census data: {e}")


def run_predict(args):
    """`census predict`: read the instances, predict locally or through a server, print the table
    (or JSON lines); exit 1 with one sentence for a bad input."""
    from census import predict
    kind, path = next((k, v) for k, v in (("json", args.json_instances),
                                          ("text", args.text_instances),
                                          ("tfrecord", args.tfrecord_instances)) if v)
    if not args.url or kind == "tfrecord":  # a server's client reads JSON and CSV without TF
        quiet.import_tensorflow()
    if args.output_dir:
        return run_batch(args, kind, path)
    try:
        items = predict.read_instances(path, kind, args.compression or "")
        if args.url:
            from census.serving import client
            outputs = client.predict_url(args.url, client.as_json(items, kind),
                                         signature=args.signature)
        else:
            outputs = predict.predict(args.model_dir, items, args.signature, kind)
    except (predict.PredictError, OSError) as e:
        sys.exit(f"census predict: {e}")
    if args.format == "json":
        for row in predict.rows(outputs):
            print(json.dumps(row))
    else:
        print(predict.format_table(outputs))


def run_batch(args, kind, path):
    """`census predict --output-dir`: the local batch job, with a progress bar in a terminal;
    its summary on stdout; exit 1 with one sentence for a bad setting."""
    from census.batch import local
    if args.url:
        sys.exit("census predict: --output-dir runs the export here; it takes --model-dir, "
                 "not --url")
    try:
        print(local.run(args.model_dir, [path], args.output_dir, kind, args.compression or "",
                        args.batch_size, args.model_name, signature=args.signature,
                        progress=None))
    except (local.PredictError, OSError) as e:
        sys.exit(f"census predict: {e}")


def main(argv=None):
    """Run the `census` command line `argv` (default: sys.argv[1:])."""
    args = parser().parse_args(argv)
    args.run(args)  # (the console script's exit status: 0, unless it exits otherwise)


if __name__ == "__main__":
    main()
