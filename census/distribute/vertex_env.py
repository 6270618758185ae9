"""What Vertex AI tells each replica of a training job through its environment (chapter 7).

- `CLUSTER_SPEC`, on every replica: the job's worker pools (`workerpool0` … `workerpool3`:
  chief, workers, parameter servers, evaluator) and this replica's `task` (`type`, `index`,
  and in a tuning job the `trial` id).
- `TF_CONFIG`, only when the job has more than one replica: the same in TensorFlow's terms
  (`census.distribute.tf_config`).
- `CLOUD_ML_TRIAL_ID`: the trial id again, as `cloudml-hypertune` reads it.
- `AIP_MODEL_DIR`, `AIP_CHECKPOINT_DIR`, `AIP_TENSORBOARD_LOG_DIR`, when the job has a base
  output directory (the SDK gives one by default): `<base>/model/`, `<base>/checkpoints/`,
  `<base>/logs/`, and for a trial of a tuning job `<base>/<trial id>/model/` and so on.

Sources: Vertex AI's "Prepare training code" (code-requirements: environment variables,
CLUSTER_SPEC) and the `CustomJobSpec.baseOutputDirectory` reference. Locally, `census tune`
gives its trials the same trial id and the same folder rule (`trial_dir`).
"""
import dataclasses
import json
import os

from census.distribute.tf_config import TFConfigError, read_json_variable, read_tf_config

POOL_ROLES = ("chief", "worker", "ps", "evaluator")  # workerpool0 … workerpool3
AIP_DIRS = ("AIP_MODEL_DIR", "AIP_CHECKPOINT_DIR", "AIP_TENSORBOARD_LOG_DIR")


def read_cluster_spec(text=None):
    """CLUSTER_SPEC (the environment variable when `text` is None) in TensorFlow's terms:
    {"type": "chief" | "worker" | "ps" | "evaluator", "index": int, "trial": str or None}
    ({} without one). Raises TFConfigError naming what is wrong."""
    spec = read_json_variable("CLUSTER_SPEC", text)
    if spec is None:
        return {}
    task = spec.get("task") if isinstance(spec, dict) else None
    if not isinstance(task, dict):
        raise TFConfigError("CLUSTER_SPEC must be a JSON object with a `task`")
    pool = str(task.get("type", ""))
    names = [f"workerpool{i}" for i in range(len(POOL_ROLES))]
    if pool not in names:
        raise TFConfigError(f"CLUSTER_SPEC's task type {pool!r} is none of {', '.join(names)}")
    index = task.get("index", 0)
    if isinstance(index, bool) or not str(index).isdigit():
        raise TFConfigError(f"CLUSTER_SPEC's task index must be a whole number >= 0, "
                            f"not {index!r}")
    trial = task.get("trial")
    return {"type": POOL_ROLES[names.index(pool)], "index": int(index),
            "trial": str(trial) if trial not in (None, "") else None}


def trial_id(environ=None):
    """This replica's trial id in a tuning job (str), or None: from CLUSTER_SPEC, else
    TF_CONFIG, else CLOUD_ML_TRIAL_ID. Raises TFConfigError for a malformed spec."""
    environ = os.environ if environ is None else environ
    for read, name in ((read_cluster_spec, "CLUSTER_SPEC"), (read_tf_config, "TF_CONFIG")):
        trial = read(environ.get(name, "")).get("trial")
        if trial not in (None, ""):
            return str(trial)
    return environ.get("CLOUD_ML_TRIAL_ID") or None


def replica_environment(cluster, role, index=0, trial=None, base_output_dir=None):
    """The variables Vertex AI sets on one replica of a custom job, as a dict of str: for a
    container run as Vertex runs it (the course's image rehearsal, chapter 7).

    `cluster`: every replica's "host:port" by role, {"chief": [...], "worker": [...], "ps":
    [...], "evaluator": [...]} (roles of POOL_ROLES; empty ones may be left out). `role`,
    `index`: this replica. `trial`: its trial id in a tuning job (str), or None.
    `base_output_dir`: the job's base output directory (gs://… or a folder), or None.

    CLUSTER_SPEC on every replica (its pools `workerpool0`… in POOL_ROLES order); TF_CONFIG
    only when the job has more than one replica, its cluster without the evaluator (which
    reads checkpoints and is no part of it); CLOUD_ML_TRIAL_ID in a trial; the AIP_*
    directories under `<base>/` (a trial's under `<base>/<trial>/`). Sources: "Prepare
    training code" (CLUSTER_SPEC, TF_CONFIG) and AI Platform's "TF_CONFIG and distributed
    training" (no evaluator in the cluster). Raises ValueError for a role not in POOL_ROLES."""
    if role not in POOL_ROLES:
        raise ValueError(f"role must be one of {', '.join(POOL_ROLES)}, not {role!r}")
    pools = {f"workerpool{POOL_ROLES.index(r)}": list(cluster[r]) for r in POOL_ROLES
             if cluster.get(r)}
    trial_field = {"trial": str(trial)} if trial else {}
    environ = {"CLUSTER_SPEC": json.dumps({
        "cluster": pools, "environment": "cloud",
        "task": {"type": f"workerpool{POOL_ROLES.index(role)}", "index": index, **trial_field}})}
    if sum(len(addresses) for addresses in pools.values()) > 1:
        environ["TF_CONFIG"] = json.dumps({
            "cluster": {r: list(a) for r, a in cluster.items() if a and r != "evaluator"},
            "environment": "cloud", "task": {"type": role, "index": index, **trial_field}})
    if trial:
        environ["CLOUD_ML_TRIAL_ID"] = str(trial)
    if base_output_dir:
        root = trial_dir(base_output_dir, trial) if trial else str(base_output_dir).rstrip("/")
        environ.update({name: f"{root}/{folder}/" for name, folder in zip(
            AIP_DIRS, ("model", "checkpoints", "logs"))})
    return environ


def trial_dir(job_dir, trial):
    """Where a trial writes when given `--job-dir`: `<job_dir>/<trial>/`, as Vertex AI's
    `AIP_*` directories are `<base>/<trial>/…`. The one rule of `census tune` and the trainer."""
    return f"{str(job_dir).rstrip('/')}/{trial}"


@dataclasses.dataclass(frozen=True)
class OutputDirs:
    """Where a run writes. `job_dir`: its memory (checkpoints/, backup/, eval/, the run record);
    `model_dir`: its final SavedModel, flat (None: versions under `<job_dir>/export/census/`);
    `tensorboard_dir`: its TensorBoard logs. `note`: what to tell the user, or ""."""
    job_dir: str
    model_dir: str = None
    tensorboard_dir: str = None
    note: str = ""


def output_dirs(job_dir=None, environ=None):
    """Where the trainer writes, as `--job-dir` (str or None) and Vertex AI's environment say.

    `--job-dir` given: everything under it (`<job_dir>/<trial>` in a tuning trial); an explicit
    flag beats the environment, and `note` says so when `AIP_*` directories were set too.
    Otherwise the `AIP_*` directories (they end in `<trial>/` already): checkpoints, the backup,
    evaluations and the run record under AIP_CHECKPOINT_DIR, the SavedModel flat in
    AIP_MODEL_DIR (what `aiplatform.Model.upload(artifact_uri=…)` takes), TensorBoard logs in
    AIP_TENSORBOARD_LOG_DIR (default `<AIP_CHECKPOINT_DIR>/logs`). Raises ConfigError when
    neither says where, TFConfigError for a malformed CLUSTER_SPEC or TF_CONFIG."""
    from census.config import ConfigError
    environ = os.environ if environ is None else environ
    aip = {name: environ[name] for name in AIP_DIRS if environ.get(name)}
    if job_dir:
        trial = trial_id(environ)
        if trial:
            job_dir = trial_dir(job_dir, trial)
        note = (f"--job-dir given: writing to {job_dir}, not to {' and '.join(aip)}"
                f" (on Vertex AI, leave --job-dir out)" if aip else "")
        if trial:
            note = f"trial {trial} of a tuning job: writing to {job_dir}" + (
                f"; {note}" if note else "")
        return OutputDirs(job_dir=job_dir, note=note)
    if not {"AIP_MODEL_DIR", "AIP_CHECKPOINT_DIR"} <= set(aip):
        missing = " and ".join(n for n in AIP_DIRS[:2] if n not in aip)
        raise ConfigError(f"give --job-dir: no job dir, and {missing} not set (Vertex AI sets "
                          "them for a job with a base output directory)")
    checkpoints = aip["AIP_CHECKPOINT_DIR"].rstrip("/")
    return OutputDirs(job_dir=checkpoints, model_dir=aip["AIP_MODEL_DIR"].rstrip("/"),
                      tensorboard_dir=aip.get("AIP_TENSORBOARD_LOG_DIR",
                                              f"{checkpoints}/logs").rstrip("/"))
