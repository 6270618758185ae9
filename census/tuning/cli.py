"""`census tune`: a hyperparameter study on this machine (chapter 8)."""
import json
import os
import sys
from pathlib import Path

from census import flags


def add_command(subparsers):
    """Add `census tune` to the `census` command's subparsers."""
    p = subparsers.add_parser(
        "tune", allow_abbrev=False, help="a hyperparameter study on this machine (chapter 8)",
        description="Run a hyperparameter study locally (Optuna), each trial the trainer in a "
                    "subprocess. Rerun the same command to resume.",
        usage="census tune --config FILE [--max-trials N] [--parallel-trials K] "
              "[--trial-timeout S] -- --job-dir JOB [trainer flags]")
    p.add_argument("--config", required=True, help="hptuning_config.yaml (trainingInput."
                   "hyperparameters) or a Vertex studySpec YAML")
    p.add_argument("--max-trials", type=flags.whole(1), help="default: the config's maxTrials")
    p.add_argument("--parallel-trials", type=flags.whole(1),
                   help="default: the config's maxParallelTrials")
    p.add_argument("--trial-timeout", type=flags.number(above=0),
                   help="seconds; a slower trial is FAILED")
    p.add_argument("--module", default="census.task", help="the trainer module")
    p.add_argument("--seed", type=flags.whole(0), help="the sampler's seed")
    p.add_argument("trainer_args", nargs="*", metavar="-- TRAINER FLAGS",
                   help="the flags of `census train`, after `--` (--job-dir: the study's folder)")
    p.set_defaults(run=run)


def run(args):
    """Run the study; print its table and best trial; exit 1 if no trial succeeded."""
    from census.tuning import local, study  # (TensorFlow only once a trial has an export)
    try:
        config = study.read_config(args.config)
        table = local.tune(config, args.trainer_args, args.max_trials, args.parallel_trials,
                           [sys.executable, "-m", args.module], args.trial_timeout, args.seed)
    except (study.ConfigError, OSError) as e:
        sys.exit(f"census tune: {e}")
    except KeyboardInterrupt:
        sys.exit(130)
    import pandas as pd
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.drop(columns=["reason"] if not table["reason"].any() else []).to_string(
            index=False))
    job_dir = local.job_dir_and_flags(args.trainer_args)[0]
    best = Path(job_dir, local.BEST)
    if best.is_file():
        info = json.loads(best.read_text())
        print(f"best: trial {info['trial']} {config.metric}={info['value']:.4f} "
              f"{info['params']}; export {info['export']}")
    print(f"results: {os.path.join(job_dir, local.RESULTS)}")
    if not (table["state"] == "SUCCEEDED").any():
        sys.exit("census tune: no trial succeeded (each trial's reason is above; its full log is "
                 f"{os.path.join(job_dir, '<trial>', 'trainer.log')})")
    return table
