"""The `census` command: one entry point for every job of the course.

    census data     [--data-dir DIR]                      fetch, verify, clean, describe
    census train    --job-dir JOB [trainer flags]         = python -m census.task
    census predict  --model-dir DIR --json-instances F    local prediction, as a table
    census predict  --url URL --json-instances F          the same, from a model server
    census serve    --model-base-path JOB/export/census   TF Serving / Vertex AI REST server
    census cluster  [--scale-tier T --workers N --ps N] -- TRAINER FLAGS   a local cluster
    census tune     --config F [--max-trials N --parallel-trials K] -- TRAINER FLAGS   a study
    census exercises make | check | grade FOLDER… [--smoke --jobs N]   classroom exercises
"""
import argparse
import json
import sys


def _data(argv):
    p = argparse.ArgumentParser(prog="census data", description="Fetch, verify, clean and "
                                "describe the Census Income data.", allow_abbrev=False)
    p.add_argument("--data-dir", help="local folder with adult.data and adult.test "
                   "(or adult.data.csv and adult.test.csv); else $CENSUS_DATA_DIR, else download")
    p.add_argument("--cache-dir", help="where downloads and cleaned files go "
                   "(default: $CENSUS_CACHE_DIR or ~/.cache/census)")
    args = p.parse_args(argv)
    from census import data
    try:
        print(data.describe(data.fetch(args.data_dir, args.cache_dir)))
    except data.DataError as e:
        sys.exit(f"census data: {e}")


def _predict(argv):
    p = argparse.ArgumentParser(prog="census predict", description="Predict with an exported "
                                "SavedModel, like `gcloud ml-engine local predict`.",
                                allow_abbrev=False)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model-dir", help="an export version directory, or the "
                        "export base directory (its newest version is used)")
    source.add_argument("--url", help="a model server instead (`census serve`, TF Serving): "
                        "http://127.0.0.1:8501, or a full …:predict URL")
    given = p.add_mutually_exclusive_group(required=True)
    given.add_argument("--json-instances", metavar="FILE", help="one JSON value per line: an "
                       "object with the 13 inputs (JSON exports), a CSV row string (CSV) or "
                       '{"b64": …} of a serialized tf.train.Example (EXAMPLE)')
    given.add_argument("--text-instances", metavar="FILE", help="one CSV row per line, the "
                       "training files' 14 fields without the label (CSV exports)")
    given.add_argument("--tfrecord-instances", metavar="FILE", help="a TFRecord file of "
                       "serialized tf.train.Example protos (EXAMPLE exports)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument("--signature", default="serving_default")
    args = p.parse_args(argv)
    from census import predict
    kind, path = next((k, v) for k, v in (("json", args.json_instances),
                                          ("text", args.text_instances),
                                          ("tfrecord", args.tfrecord_instances)) if v)
    try:
        items = predict.read_instances(path, kind)
        if args.url:
            from census import client
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


def _train(argv):
    from census import task
    task.main(argv)


def _cluster(argv):
    from census import cluster
    cluster.main(argv)


def _serve(argv):
    from census import serving
    serving.main(argv)


def _tune(argv):
    from census import tuning
    tuning.main(argv)


def _exercises(argv):
    from census import exercises
    exercises.main(argv, prog="census exercises")


COMMANDS = {"data": _data, "train": _train, "predict": _predict, "cluster": _cluster,
            "serve": _serve, "tune": _tune, "exercises": _exercises}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        sys.exit(0 if argv and argv[0] in ("-h", "--help") else 2)
    COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    main()
