"""The same trainer on Vertex AI: a CustomJob for any scale tier, as YAML, gcloud, or the SDK.

2017: `gcloud ml-engine jobs submit training JOB --scale-tier STANDARD_1 --module-name
trainer.task --package-path trainer/ -- --train-files gs://… …` (Cloud ML Engine, later
AI Platform Training, was shut down on 2025-01-31). Today a Vertex AI CustomJob lists worker
pools ([0] chief, [1] workers, [2] parameter servers, [3] evaluator), each with a machine type,
a replica count and what to run: here the course's own container image (`python -m
census.task` with the trainer flags). No prebuilt training image fits: the newest TensorFlow
one (TensorFlow 2.17, Python 3.10) reached its end of availability on 2026-07-11 (Google's
prebuilt training containers page), and none was built for TensorFlow 2.18 or later.

    image = image_uri("us-central1", "my-project")  # …-docker.pkg.dev/my-project/census/…
    job = job_spec(tiers.layout_for("STANDARD_1"), trainer_args(), image,
                   base_output_dir="gs://BUCKET/census/job1")
    write_yaml(job, "job.yaml"); print(gcloud_command(job, "us-central1", "job.yaml"))
    submit(job, project=None)   # without a project: prints what it would submit
    container_run_command(image, args, vertex_env.replica_environment(...))  # docker run, here

The image is built from the repository's Dockerfile (`docker build -t IMAGE .`).

Nothing here needs credentials except `submit` with a project.
"""
import shlex
import sys
from pathlib import Path

import yaml
from google.protobuf import descriptor as _descriptor, json_format

from census.distribute import tiers

POOLS = ("chief", "worker", "ps", "evaluator")  # Vertex's worker pool order
MACHINE_TYPES = {"chief": "n1-standard-4", "worker": "n1-standard-4", "ps": "n1-standard-4",
                 "evaluator": "n1-standard-4"}
# BASIC_GPU's accelerator. The 2017 tier had a K80, which Vertex AI lists as deprecated
# (end of support; MachineSpec reference): the job asks for a T4, which it still offers.
GPU_TYPE = "NVIDIA_TESLA_T4"
TRAINER_COMMAND = ("python", "-m", "census.task")  # what each replica of the image runs


def image_uri(region, project, repository="census", image="trainer", tag=None):
    """The Artifact Registry address of the course's training image:
    `REGION-docker.pkg.dev/PROJECT/REPOSITORY/IMAGE:TAG` (tag: this package's version)."""
    import importlib.metadata

    from census import DISTRIBUTION
    tag = tag or importlib.metadata.version(DISTRIBUTION)
    return f"{region}-docker.pkg.dev/{project}/{repository}/{image}:{tag}"


def tiers_table():
    """Each 2017 scale tier: its processes and the replica counts of Vertex's worker pools."""
    return [{"scale tier (2017)": name, "chief": t.chief, "workers": t.workers, "ps": t.ps,
             "gpus": t.gpus, "Vertex pools [chief, workers, ps, evaluator]": t.vertex_pools()}
            for name, t in tiers.TIERS.items()]


def gcs_mount(uri):
    """`gs://bucket/path` → `/gcs/bucket/path`: the same object through the Cloud Storage
    FUSE mount that Vertex AI training jobs have."""
    if not uri.startswith("gs://"):
        raise ValueError(f"not a gs:// URI: {uri}")
    return "/gcs/" + uri[len("gs://"):]


def trainer_args(job_dir=None, train_files=(), eval_files=(), train_steps=5000, mount=False,
                 **changes):
    """The 2017 trainer flags for a cloud job (`TrainConfig.to_args()`): its 5000 training
    steps by default; each evaluation reads the whole evaluation data once (`eval_steps`: that
    many batches instead; the 2017 job's `--eval-steps 100` meant 100 batches of 40 rows).
    Without `job_dir` there is no --job-dir: on Vertex AI the trainer writes where the job's
    AIP_* variables say (`census.distribute.vertex_env`), a trial's to its own folder.
    Without `train_files`/`eval_files` there are no data flags: on each machine the trainer
    fetches the census files (Google's public bucket, else UCI) and trains on the training
    split, evaluating on the validation split, as it does locally. With them (both), it reads
    those files: gs:// paths (`tf.io.gfile` reads them itself) or local ones. `mount`: the
    `/gcs/…` form of every gs:// path instead. `changes`: other TrainConfig fields. Raises
    ValueError (ConfigError for a value the trainer refuses)."""
    from census.config import TrainConfig
    if bool(train_files) != bool(eval_files):
        raise ValueError("give both train_files and eval_files, or neither")

    def path(p):
        return gcs_mount(p) if mount and p.startswith("gs://") else p
    return TrainConfig(job_dir=job_dir and path(job_dir),
                       train_files=[path(f) for f in train_files] or None,
                       eval_files=[path(f) for f in eval_files] or None,
                       train_steps=train_steps, **changes).to_args()


def task_name(pool, index=0):
    """The name Vertex AI gives one replica in a custom job's logs (the log label
    `resource.labels.task_name`): `workerpool<N>-<index>`, N the pool's place in POOLS
    ("chief" 0, "worker" 1, "ps" 2, "evaluator" 3). Cloud ML Engine's were `master-replica-0`
    and the like. This form is the one public examples of log filters show; Google's
    reference pages do not spell it out."""
    return f"workerpool{POOLS.index(pool)}-{index}"


def stream_logs_command(job_id, region, task=None):
    """`gcloud ai custom-jobs stream-logs`: the log lines of every replica of the job, or only
    those of `task` (a `task_name`), as the 2017 `gcloud ml-engine jobs stream-logs
    --task-name` did."""
    return shlex.join(["gcloud", "ai", "custom-jobs", "stream-logs", str(job_id),
                       f"--region={region}", *([f"--task-name={task}"] if task else [])])


def log_filter(job_id, task=None):
    """The Cloud Logging filter for a custom job's lines, or one replica's (`task`, a
    `task_name`): what `stream-logs` asks Cloud Logging for. Paste it into the Logs Explorer,
    or give it to `gcloud logging read`."""
    lines = ['resource.type="ml_job"', f'resource.labels.job_id="{job_id}"']
    if task:
        lines.append(f'resource.labels.task_name="{task}"')
    return "\n".join(lines)


def container_run_command(image, args=(), environment=None, volumes=(), engine="docker",
                          network="none", options=()):
    """The command line (a list of str) that runs the course's `image` on this machine as
    Vertex AI runs one replica: `engine run --rm --network none`, each `-e NAME=VALUE` of
    `environment` (`vertex_env.replica_environment`), each `-v HOST:CONTAINER[:ro]` of
    `volumes`, then `options`, the image and the trainer's `args` (its ENTRYPOINT is `python
    -m census.task`). With no network the trainer reads the data and writes its outputs
    through the volumes; `network=None` leaves the flag out (a podman pod's containers share
    the pod's). `engine`: "docker" or "podman"."""
    command = [engine, "run", "--rm", *(["--network", network] if network else [])]
    for name, value in (environment or {}).items():
        command += ["-e", f"{name}={value}"]
    for volume in volumes:
        command += ["-v", str(volume)]
    return [*command, *options, image, *map(str, args)]


def job_spec(layout, args, image, machine_types=None, display_name="census",
             base_output_dir=None):
    """A `google.cloud.aiplatform_v1.CustomJob` running `layout` (a `tiers.Layout`): every
    replica runs the container `image` (an Artifact Registry URI, `image_uri`) as
    `python -m census.task ARGS`. `base_output_dir` (gs://…): where Vertex AI points the
    AIP_* directories (`<base>/model/`, `<base>/checkpoints/`, `<base>/logs/`)."""
    from google.cloud import aiplatform_v1 as v1
    machine_types = {**MACHINE_TYPES, **(machine_types or {})}
    pools = []
    for kind, count in zip(POOLS, layout.vertex_pools()):
        if not count:
            pools.append(v1.WorkerPoolSpec())  # an empty pool keeps the later pools' places
            continue
        machine = v1.MachineSpec(machine_type=machine_types[kind])
        if layout.gpus and kind in ("chief", "worker"):
            machine.accelerator_type = v1.AcceleratorType[GPU_TYPE]
            machine.accelerator_count = layout.gpus
        pools.append(v1.WorkerPoolSpec(
            machine_spec=machine, replica_count=count,  # boot disk: DiskSpec's default, 100 GB SSD
            container_spec=v1.ContainerSpec(image_uri=image, command=list(TRAINER_COMMAND),
                                            args=list(args))))
    spec = v1.CustomJobSpec(worker_pool_specs=pools)
    if base_output_dir:
        spec.base_output_directory = v1.GcsDestination(output_uri_prefix=base_output_dir)
    return v1.CustomJob(display_name=display_name, job_spec=spec)


_INT64 = {_descriptor.FieldDescriptor.TYPE_INT64, _descriptor.FieldDescriptor.TYPE_UINT64,
          _descriptor.FieldDescriptor.TYPE_SINT64, _descriptor.FieldDescriptor.TYPE_FIXED64,
          _descriptor.FieldDescriptor.TYPE_SFIXED64}


def _int64s_to_ints(message_descriptor, value):
    """Proto3 JSON writes 64-bit integers as strings ("replicaCount": "4"); make them ints."""
    for field in message_descriptor.fields:
        if field.json_name not in value:
            continue
        items = value[field.json_name]
        repeated = (field.is_repeated if hasattr(field, "is_repeated")  # protobuf >= 6
                    else field.label == field.LABEL_REPEATED)  # protobuf 5 (Colab)
        if field.message_type is not None:
            if field.message_type.GetOptions().map_entry:
                continue  # string maps (labels, env) only
            for item in (items if repeated else [items]):
                if isinstance(item, dict):
                    _int64s_to_ints(field.message_type, item)
        elif field.type in _INT64:
            value[field.json_name] = [int(x) for x in items] if repeated else int(items)


def to_dict(message):
    """A proto-plus or protobuf message as the JSON-style dict the REST API and gcloud take
    (camelCase keys), with 64-bit integers as numbers."""
    pb = type(message).pb(message) if hasattr(type(message), "pb") else message
    value = json_format.MessageToDict(pb)
    _int64s_to_ints(pb.DESCRIPTOR, value)
    return value


def spec_dict(job):
    """The CustomJobSpec part of a CustomJob: what `gcloud ai custom-jobs create --config`
    reads (the display name and region are flags)."""
    return to_dict(job)["jobSpec"]


def write_yaml(job, path):
    """Write `job`'s spec as the YAML file for `gcloud ai custom-jobs create --config`."""
    Path(path).write_text(yaml.safe_dump(spec_dict(job), sort_keys=False))
    return str(path)


def gcloud_command(job, region, config_path):
    """The gcloud command that submits `job` from its YAML file."""
    return shlex.join(["gcloud", "ai", "custom-jobs", "create", f"--region={region}",
                       f"--display-name={job.display_name}", f"--config={config_path}"])


def describe(job, region="us-central1", config_path="job.yaml"):
    """What would be submitted: the spec's YAML and the gcloud command."""
    return (f"# {config_path}\n{yaml.safe_dump(spec_dict(job), sort_keys=False)}\n"
            f"{gcloud_command(job, region, config_path)}")


def dry_run(description, out):
    """What a submission without a project does: say so, show the job, return None."""
    print("No project given: not submitting. This is the job it would create:\n", file=out)
    print(description, file=out)


def sdk_custom_job(display_name, job_spec, project, location, staging_bucket=None,
                   credentials=None, **sdk_options):
    """The SDK's CustomJob for a `CustomJobSpec`, after `aiplatform.init` (the tests pass
    `api_endpoint`/`api_transport` to send its requests to a local recorder)."""
    from google.cloud import aiplatform
    aiplatform.init(project=project, location=location, staging_bucket=staging_bucket,
                    credentials=credentials, **sdk_options)
    return aiplatform.CustomJob(
        display_name=display_name, worker_pool_specs=list(job_spec.worker_pool_specs),
        base_output_dir=job_spec.base_output_directory.output_uri_prefix or None,
        project=project, location=location, credentials=credentials,
        staging_bucket=staging_bucket)


def submit(job, project=None, location="us-central1", staging_bucket=None, credentials=None,
           api_endpoint=None, api_transport=None, wait=False, config_path="job.yaml",
           out=None):
    """Create `job` on Vertex AI through the google-cloud-aiplatform SDK and return the SDK's
    `CustomJob` (`wait`: block until it ends). Without a project: print what would be
    submitted and return None. `credentials`: default (`gcloud auth application-default
    login`) when None; `api_endpoint`/`api_transport` point the SDK elsewhere (tests)."""
    out = out or sys.stdout
    if not project:
        return dry_run(describe(job, location, config_path), out)
    custom = sdk_custom_job(job.display_name, job.job_spec, project, location, staging_bucket,
                            credentials, api_endpoint=api_endpoint, api_transport=api_transport)
    custom.submit()
    job_id = custom.resource_name.rsplit("/", 1)[-1]
    print(f"Submitted {custom.resource_name}\n"
          f"  state:   gcloud ai custom-jobs describe {job_id} --region={location}\n"
          f"  logs:    {stream_logs_command(job_id, location)}\n"
          f"  one replica's logs: {stream_logs_command(job_id, location, task_name('chief'))}",
          file=out)
    if wait:
        custom.wait()
        print(f"{custom.resource_name}: {custom.state.name}", file=out)
    return custom
