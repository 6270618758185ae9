"""The study on Vertex AI: a HyperparameterTuningJob (chapter 8).

Vertex is the tuning service: the job holds the `studySpec` and a `trialJobSpec` — chapter 7's
CustomJob (`census.distribute.vertex.job_spec`), whose trainer flags name the metric to report
(`trial_args`). Vertex appends `--first-layer-size=…` and the others for each trial and reads
what `cloudml-hypertune` writes. Nothing here needs credentials except `submit` with a project.
"""
import shlex
import sys
from pathlib import Path

import yaml

from census.tuning.study import METRIC_FLAG, check_against_trainer


def study_spec(study):
    """The StudySpec as an `aiplatform_v1.StudySpec`."""
    from google.cloud import aiplatform_v1 as v1
    from google.protobuf import json_format
    pb = v1.StudySpec.pb()()
    json_format.ParseDict(study.spec, pb)
    return v1.StudySpec.wrap(pb)


def hp_job(study, trial_job, display_name="census-hptuning"):
    """A `google.cloud.aiplatform_v1.HyperparameterTuningJob`: the study, and `trial_job`
    (a CustomJob from `census.distribute.vertex.job_spec`, whose trainer flags should name the
    metric with `--hypertune-metric`; see `trial_args`) as the spec of every trial. Raises
    ConfigError if the study asks the trainer for what it does not report or take."""
    from google.cloud import aiplatform_v1 as v1
    check_against_trainer(study)
    return v1.HyperparameterTuningJob(
        display_name=display_name, study_spec=study_spec(study),
        max_trial_count=study.max_trials, parallel_trial_count=study.parallel_trials,
        max_failed_trial_count=study.max_failed_trials, trial_job_spec=trial_job.job_spec)


def trial_args(study, args):
    """Trainer flags for Vertex trials: `args` plus the flag that names the reported metric
    (Vertex appends `--param=value` for each parameter itself)."""
    return [*args, f"{METRIC_FLAG}={study.metric}"]


def job_dict(job):
    """The job as `gcloud ai hp-tuning-jobs create --config` reads it (no display name: a
    flag), 64-bit integers as numbers."""
    from census.distribute import vertex
    value = vertex.to_dict(job)
    value.pop("displayName", None)
    return value


def write_yaml(job, path):
    """The job as YAML for `gcloud ai hp-tuning-jobs create --config`, at `path`; returns the
    path."""
    Path(path).write_text(yaml.safe_dump(job_dict(job), sort_keys=False))
    return str(path)


def gcloud_command(job, region, config_path):
    """The gcloud command that creates the job from its YAML file."""
    return shlex.join(["gcloud", "ai", "hp-tuning-jobs", "create", f"--region={region}",
                       f"--display-name={job.display_name}", f"--config={config_path}",
                       f"--max-trial-count={job.max_trial_count}",
                       f"--parallel-trial-count={job.parallel_trial_count}"])


_SDK_SCALES = {"UNIT_LINEAR_SCALE": "linear", "UNIT_LOG_SCALE": "log",
               "UNIT_REVERSE_LOG_SCALE": "reverse_log", "SCALE_TYPE_UNSPECIFIED": "unspecified"}


def sdk_parameter_spec(study):
    """The study's parameters as the SDK's `hyperparameter_tuning` specs."""
    from google.cloud.aiplatform import hyperparameter_tuning as hpt
    specs = {}
    for p in study.parameters:
        scale = _SDK_SCALES[p.get("scaleType", "SCALE_TYPE_UNSPECIFIED")]
        if "doubleValueSpec" in p:
            v = p["doubleValueSpec"]
            specs[p["parameterId"]] = hpt.DoubleParameterSpec(v["minValue"], v["maxValue"], scale)
        elif "integerValueSpec" in p:
            v = p["integerValueSpec"]
            specs[p["parameterId"]] = hpt.IntegerParameterSpec(v["minValue"], v["maxValue"],
                                                               scale)
        elif "categoricalValueSpec" in p:
            specs[p["parameterId"]] = hpt.CategoricalParameterSpec(
                p["categoricalValueSpec"]["values"])
        else:
            specs[p["parameterId"]] = hpt.DiscreteParameterSpec(
                p["discreteValueSpec"]["values"], scale)
    return specs


def describe(job, region="us-central1", config_path="hptuning_job.yaml"):
    """What would be submitted: the job's YAML and the gcloud command."""
    return (f"# {config_path}\n{yaml.safe_dump(job_dict(job), sort_keys=False)}\n"
            f"{gcloud_command(job, region, config_path)}")


def submit(job, study, project=None, location="us-central1", staging_bucket=None,
           credentials=None, api_endpoint=None, api_transport=None, wait=False,
           config_path="hptuning_job.yaml", out=None):
    """Create the HyperparameterTuningJob through the google-cloud-aiplatform SDK; returns
    the SDK's job (`wait`: until it ends). Without a project: print what would be submitted
    and return None."""
    from census.distribute import vertex
    out = out or sys.stdout
    if not project:
        return vertex.dry_run(describe(job, location, config_path), out)
    from google.cloud import aiplatform
    custom = vertex.sdk_custom_job(f"{job.display_name}-trial", job.trial_job_spec, project,
                                  location, staging_bucket, credentials,
                                  api_endpoint=api_endpoint, api_transport=api_transport)
    hp = aiplatform.HyperparameterTuningJob(
        display_name=job.display_name, custom_job=custom,
        metric_spec={study.metric: study.goal.lower()},
        parameter_spec=sdk_parameter_spec(study), max_trial_count=job.max_trial_count,
        parallel_trial_count=job.parallel_trial_count,
        max_failed_trial_count=job.max_failed_trial_count, project=project, location=location,
        credentials=credentials)
    hp.run(sync=wait)
    if not wait:
        hp.wait_for_resource_creation()
    job_id = hp.resource_name.rsplit("/", 1)[-1]
    print(f"Submitted {hp.resource_name}\n"
          f"  describe: gcloud ai hp-tuning-jobs describe {job_id} --region={location}",
          file=out)
    if wait:
        print(f"{hp.resource_name}: {hp.state.name}", file=out)
    return hp
