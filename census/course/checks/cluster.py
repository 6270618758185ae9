"""Checks for chapter 7's exercises: TF_CONFIG, a real local cluster, a Vertex AI CustomJob."""
import json
import re
from pathlib import Path

from census import course
from census.course.checks.core import call, expect, passed
from census.distribute import tiers, vertex
from census.distribute.tf_config import strategy_kind

__all__ = ["check_tf_config", "check_run_small_cluster", "check_vertex_job"]

SMALL = tiers.Layout(chief=1, workers=1, ps=1)  # the smallest parameter-server cluster


def _describe(layout):
    parts = ["chief"] if layout.chief else []
    if layout.workers:
        parts.append(f"{layout.workers} worker{'s' if layout.workers > 1 else ''}")
    if layout.ps:
        parts.append(f"{layout.ps} ps")
    return " + ".join(parts)


def check_tf_config(tf_config, layout, ports):
    """tf_config(layout, ports, task_type, index) must give, for every task of `layout`, the
    TF_CONFIG string census.distribute.cluster gives that task."""
    want_cluster = layout.cluster(ports)
    tasks = layout.tasks()
    for kind, index in tasks:
        what = f"tf_config(layout, {list(ports)}, {kind!r}, {index})"
        got = call(tf_config, layout, list(ports), kind, index, what=what)
        expect(isinstance(got, str), f"{what} returned a {type(got).__name__}, not a string",
               "an environment variable holds text: the dict must become JSON text",
               "return json.dumps(config)")
        try:
            value = json.loads(got)
        except ValueError:
            value = None
        expect(isinstance(value, dict), f"{what} is not JSON: {got[:60]!r}",
               "Python's text for a dict is not JSON (JSON needs double quotes)",
               "use json.dumps(config), not str(config)")
        expect(set(value) >= {"cluster", "task"},
               f"{what} has the keys {sorted(value)}, not 'cluster' and 'task'",
               "TF_CONFIG says two things: the whole cluster, and which task this process is",
               'build {"cluster": {...}, "task": {"type": ..., "index": ...}}')
        spec, task = value["cluster"], value["task"]
        expect(isinstance(spec, dict), f"the cluster of {what} is a {type(spec).__name__}",
               "the cluster is keyed by task type",
               "map each task type to its list of 'host:port' addresses")
        expect(strategy_kind(spec) == layout.strategy,
               f"with the cluster keys {sorted(spec)}, the trainer would pick "
               f"{strategy_kind(spec)} instead of {layout.strategy}",
               "the trainer picks its strategy from the cluster's keys alone",
               "leave out the task types that have no task: a 'ps' key, even with an empty "
               "list, asks for a ParameterServerStrategy")
        addresses = [a for v in spec.values() if isinstance(v, list) for a in v]
        expect(all(isinstance(a, str) and re.fullmatch(r"localhost:\d+", a) for a in addresses),
               f"the addresses are {addresses[:3]}…, not 'localhost:PORT' strings",
               "each task is one address: a host and a port, as text",
               "f'localhost:{port}'")
        expect(spec == want_cluster, f"the cluster of {what} is {spec}",
               "ports[i] belongs to the i-th task of layout.tasks(): chief first, then "
               "workers, then ps",
               f"walk zip(layout.tasks(), ports) (or use layout.cluster(ports)): it should be "
               f"{want_cluster}")
        expect(isinstance(task, dict) and task.get("type") == kind,
               f"the task of {what} is {task}", "the task is the one the function is asked for",
               f'"task": {{"type": task_type, "index": index}} (here {kind!r})')
        expect(isinstance(task.get("index"), int) and not isinstance(task.get("index"), bool),
               f"the task index is {task.get('index')!r}, not a number",
               "an index is a number, in JSON too",
               "write the index as an int (json.dumps writes 0, not '0')")
        expect(task["index"] == index, f"the task of {what} has index {task['index']}",
               "the task is the one the function is asked for",
               f'"index": index (here {index})')
    passed(f"tf_config gives each of the {len(tasks)} tasks of {_describe(layout)} its role "
           f"({layout.strategy.replace('_', ' ')} strategy)")


def _roles(log_dir):
    return sorted(p.stem for p in Path(log_dir).glob("*.log"))


def _tail(path, lines=6):
    """The last lines of a task's log, TensorFlow's start-up chatter left out."""
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    kept = [line for line in text if line.strip() and not re.match(
        r"(\w\d{4} |WARNING: All log|To enable the following|INFO:tensorflow)", line)]
    return course.tidy(" | ".join(kept[-lines:]))[-600:]


def check_run_small_cluster(run_small_cluster, files, job_dir, train_steps):
    """run_small_cluster(files, job_dir, train_steps) trains on a local chief + 1 worker + 1 ps
    cluster and returns the chief's exit status; the job dir must show it."""
    course.fresh_dir(job_dir)
    what = f"run_small_cluster(files, {course.rel(job_dir)!r}, {train_steps})"
    status = call(run_small_cluster, files, job_dir, train_steps, what=what)
    log_dir = Path(job_dir, "logs", "cluster")
    expect(log_dir.is_dir() and _roles(log_dir),
           f"no task logs in {course.rel(log_dir)}: no cluster ran with this job dir",
           "the launcher keeps each task's log in the job dir the trainer flags name",
           "call census.distribute.cluster.run(layout, trainer_flags) with '--job-dir', "
           "job_dir among the trainer flags")
    roles = _roles(log_dir)
    want = [f"{k}-{i}" for k, i in SMALL.tasks()]
    expect(roles != ["chief-0"], "only a chief ran: that is one process, not a cluster",
           "the layout decides which tasks start: census.distribute.tiers builds one",
           "use a layout with a worker and a parameter server: "
           "tiers.layout_for('CUSTOM', workers=1)")
    expect("ps-0" in roles, f"the tasks were {', '.join(roles)}: no parameter server",
           "the chapter's cluster keeps its variables on a parameter server",
           "tiers.layout_for('CUSTOM', workers=1) (not mirrored=True)")
    expect(sorted(roles) == sorted(want), f"the tasks were {', '.join(roles)}",
           "one chief, one worker, one parameter server: two cores carry no more",
           "tiers.layout_for('CUSTOM', workers=1) gives a chief, one worker and one ps")
    expect(isinstance(status, int) and not isinstance(status, bool),
           f"{what} returned {status!r}, not an exit status",
           "the caller wants to know whether the job succeeded",
           "return what cluster.run returns: the chief's exit status (0 when it succeeded)")
    expect(status != 124, "the cluster timed out", "read the chief's log "
           "(logs/cluster/chief-0.log): was it still training, or waiting for a task?",
           "give cluster.run a timeout of a few minutes (timeout=600), and few steps")
    expect(status == 0, f"the chief exited with status {status}; its log ends with: "
           f"{_tail(log_dir / 'chief-0.log')}",
           "read logs/cluster/chief-0.log: the last lines say why the chief stopped",
           "every trainer flag must be a real one (python -m census.task --help), each "
           "value a string")
    log = (log_dir / "chief-0.log").read_text(errors="replace")
    steps = [int(s) for s in re.findall(r'"global_step": (\d+)', log)]
    expect(steps, "the chief's log has no final metrics",
           "the course's trainer prints its metrics when it ends: is that the program the "
           "tasks ran?", "run the trainer module census.task (the default of cluster.run)")
    expect(steps[-1] == train_steps, f"the cluster trained {steps[-1]} steps, not {train_steps}",
           "the trainer trains its default number of steps unless a flag says otherwise",
           "pass '--train-steps', str(train_steps) (and '--eval-every-steps' the same) to the "
           "trainer")
    checkpoints = sorted(Path(job_dir, "checkpoints").glob("ckpt-*.index"))
    expect(checkpoints, "no checkpoint in the job dir",
           "the chief writes its checkpoints in the job dir the flags name",
           "pass '--job-dir', job_dir to the trainer: the chief writes "
           "<job_dir>/checkpoints/ckpt-NNNN")
    base = Path(job_dir, "export", "census")
    versions = sorted(p for p in base.glob("*") if p.name.isdigit()) if base.is_dir() else []
    expect(versions and (versions[-1] / "saved_model.pb").is_file(),
           f"no export in {course.rel(base)}", "the trainer exports at the end of training: "
           "read logs/cluster/chief-0.log to see why it did not",
           "keep the trainer's default export (no --export-format other than JSON)")
    metrics = Path(job_dir, "eval", "metrics.csv").read_text().splitlines()
    header, last = metrics[0].split(","), metrics[-1].split(",")
    accuracy = float(last[header.index("val_accuracy")])
    passed(f"chief + 1 worker + 1 ps trained {steps[-1]} steps (exit status 0): validation "
           f"accuracy {accuracy:.3f}, {len(checkpoints)} checkpoint(s), export "
           f"{versions[-1].name}")


def check_vertex_job(vertex_job, tier, bucket):
    """vertex_job(tier, bucket): the CustomJob for the 2017 tier plus an evaluator, on the
    public data, job dir and package under the bucket, parameter servers on n1-highmem-2."""
    what = f"vertex_job({tier!r}, {bucket!r})"
    job = call(vertex_job, tier, bucket, what=what)
    expect(hasattr(job, "job_spec") and hasattr(type(job), "pb"),
           f"{what} returned a {type(job).__name__}, not a CustomJob",
           "Vertex AI takes a CustomJob message (google.cloud.aiplatform_v1)",
           "return what census.distribute.vertex.job_spec returns")
    spec = vertex.spec_dict(job)
    pools = spec.get("workerPoolSpecs", [])
    layout = tiers.layout_for(tier, evaluator=1)
    want_counts = layout.vertex_pools()
    counts = [p.get("replicaCount", 0) for p in pools]
    expect(len(counts) != len(tiers.TIERS[tier].vertex_pools()) or counts == want_counts,
           f"the pools hold {counts} replicas: no evaluator",
           "the 2017 tier had no evaluator pool: the layout needs one more task",
           "tiers.layout_for(tier, evaluator=1)")
    expect(counts == want_counts, f"the pools hold {counts} replicas, not {want_counts} "
           "([chief, workers, ps, evaluator])",
           "the pools come from the tier's layout: the one the function is given",
           f"build the layout with tiers.layout_for({tier!r}, evaluator=1) and give it to "
           "vertex.job_spec")
    job_dir = f"{bucket}/census/jobs/{tier.lower()}"
    package = f"{bucket}/census/census_course-0.1.0.tar.gz"
    machines = {kind: p.get("machineSpec", {}).get("machineType")
                for kind, p in zip(vertex.POOLS, pools) if p.get("replicaCount")}
    want_machines = {kind: ("n1-highmem-2" if kind == "ps" else vertex.MACHINE_TYPES[kind])
                     for kind in machines}
    expect("ps" not in machines or machines["ps"] == "n1-highmem-2",
           f"the parameter servers run on {machines.get('ps')}",
           "vertex.job_spec takes a machine type per pool: read its docstring",
           "machine_types={'ps': 'n1-highmem-2'}")
    expect(machines == want_machines, f"the machine types are {machines}",
           "only the parameter servers change machine; the other pools keep their default",
           "change only the parameter servers' machine: machine_types={'ps': 'n1-highmem-2'}")
    for kind, pool in zip(vertex.POOLS, pools):
        if not pool.get("replicaCount"):
            continue
        package_spec = pool.get("pythonPackageSpec", {})
        expect(package_spec, f"the {kind} pool runs a container, not the python package",
               "each pool installs the trainer's package on a prebuilt image",
               "give package_uris=[package] to vertex.job_spec")
        expect(package_spec.get("packageUris") == [package],
               f"the {kind} pool installs {package_spec.get('packageUris')}",
               "the package lives in the bucket, under census/",
               f"package_uris=['{package}']")
        expect(package_spec.get("pythonModule") == vertex.MODULE,
               f"the {kind} pool runs {package_spec.get('pythonModule')}",
               "every pool runs the same trainer module",
               "keep the trainer module census.task (vertex.job_spec sets it)")
        args = package_spec.get("args", [])
        expect("--job-dir" in args and args[args.index("--job-dir") + 1:][:1] == [job_dir],
               f"the {kind} pool's --job-dir is "
               f"{args[args.index('--job-dir') + 1] if '--job-dir' in args[:-1] else None}",
               "the job dir is a folder of the bucket, named after the tier",
               f"build the trainer flags with vertex.trainer_args('{job_dir}')")
        expect(args == vertex.trainer_args(job_dir),
               f"the {kind} pool's trainer flags are {' '.join(args)[:200]}",
               "the trainer flags are the course's cloud flags, unchanged",
               "use vertex.trainer_args(job_dir) as they are: no data flags (the trainer "
               "fetches the data itself), the cloud job dir, the 2017 step count")
    expect(spec.get("baseOutputDirectory", {}).get("outputUriPrefix") == job_dir,
           f"the base output directory is "
           f"{spec.get('baseOutputDirectory', {}).get('outputUriPrefix')}",
           "Vertex AI tells the trainer where to write through the job's base output "
           "directory: the job dir", f"pass base_output_dir='{job_dir}' to vertex.job_spec")
    ps = ", the ps on n1-highmem-2" if "ps" in machines else ""
    passed(f"{tier} + evaluator on Vertex AI: pools {counts} ({sum(counts)} machines{ps}), "
           f"job dir {job_dir}")
