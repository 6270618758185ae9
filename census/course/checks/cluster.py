"""Checks for chapter 7's exercises: TF_CONFIG, a replica's role as Vertex AI tells it, and
the worker pools of a Vertex AI CustomJob, sent by the real SDK."""
import json
import re

from census import quiet
from census.course.checks.core import call, expect, passed
from census.distribute import tiers
from census.distribute.tf_config import read_tf_config, strategy_kind
from census.distribute.vertex_env import POOL_ROLES, read_cluster_spec, trial_id

__all__ = ["check_tf_config", "check_replica_role", "check_worker_pool_specs"]


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


def vertex_environ(layout, kind="chief", index=0, trial=None):
    """The environment variables Vertex AI sets on replica (`kind`: "chief" | "worker" | "ps" |
    "evaluator", `index`) of a CustomJob whose pools hold `layout` (a tiers.Layout), in trial
    `trial` (str) of a tuning job: CLUSTER_SPEC on every replica, TF_CONFIG when the job has
    more than one (its cluster without the evaluator), CLOUD_ML_TRIAL_ID in a trial. Sources:
    as census.distribute.vertex_env's; the host names are made up."""
    pools = {f"workerpool{n}": [f"workerpool{n}-{i}:2222" for i in range(count)]
             for n, count in enumerate(layout.vertex_pools()) if count}
    task = {"type": f"workerpool{POOL_ROLES.index(kind)}", "index": index,
            **({"trial": trial} if trial else {})}
    environ = {"CLUSTER_SPEC": json.dumps({"cluster": pools, "environment": "cloud",
                                           "task": task})}
    if sum(len(hosts) for hosts in pools.values()) > 1:
        cluster = {role: pools[f"workerpool{n}"] for n, role in enumerate(POOL_ROLES)
                   if role != "evaluator" and f"workerpool{n}" in pools}
        environ["TF_CONFIG"] = json.dumps({"cluster": cluster, "environment": "cloud",
                                           "task": dict(task, type=kind)})
    if trial:
        environ["CLOUD_ML_TRIAL_ID"] = trial
    return environ


def replica_role(environ):
    """The right answer to exercise 7.2, from the package's readers: (task type, index, trial
    id or None) of the replica `environ` (a dict of environment variables) describes."""
    role = (read_cluster_spec(environ.get("CLUSTER_SPEC", ""))
            or read_tf_config(environ.get("TF_CONFIG", "")))
    return role.get("type") or "chief", role.get("index", 0), trial_id(environ)


STANDARD_1 = tiers.layout_for("STANDARD_1", evaluator=1)
# The replicas check_replica_role asks about: (what it is, its environment), as Vertex AI sets it.
REPLICAS = (
    ("a trainer alone (no variable set: not on Vertex AI)", {}),
    ("the one replica of a BASIC job", vertex_environ(tiers.TIERS["BASIC"])),
    ("worker 2 of a STANDARD_1 job", vertex_environ(STANDARD_1, "worker", 2)),
    ("the chief of a STANDARD_1 job", vertex_environ(STANDARD_1)),
    ("parameter server 1 of a STANDARD_1 job", vertex_environ(STANDARD_1, "ps", 1)),
    ("the evaluator of a STANDARD_1 job", vertex_environ(STANDARD_1, "evaluator", 0)),
    ("trial 3 of a tuning job of one replica", vertex_environ(tiers.TIERS["BASIC"], trial="3")),
    ("worker 1 in trial 12 of a STANDARD_1 tuning job",
     vertex_environ(STANDARD_1, "worker", 1, trial="12")),
    ("trial 2 of `census tune` on this machine (CLOUD_ML_TRIAL_ID only)",
     {"CLOUD_ML_TRIAL_ID": "2"}),
)
_CRASH_HINTS = [  # (words of the error, hints): a variable read where it is not set
    ("Expecting value", ("a variable that is not set is not JSON text either",
                         "read environ.get('CLUSTER_SPEC'), and with none return "
                         "('chief', 0, None): the trainer runs alone")),
    ("CLUSTER_SPEC", ("a trainer alone has no CLUSTER_SPEC: environ is an ordinary dict",
                      "environ.get('CLUSTER_SPEC'); without one: ('chief', 0, None)")),
    ("TF_CONFIG", ("a job of one replica has no TF_CONFIG: which variable is on every replica?",
                   "read CLUSTER_SPEC (environ.get('CLUSTER_SPEC')), set on every replica")),
    ("trial", ("only a tuning job's task has a trial", "task.get('trial')")),
]


def _diagnose(what, got, want, environ):
    """Raise the hint for the first way `got` differs from `want` (replica_role's answers)."""
    kind, index, trial = got
    pool = json.loads(environ.get("CLUSTER_SPEC", "{}")).get("task", {}).get("type", "")
    expect(not str(kind).startswith("workerpool"),
           f"{what} gave the task type {kind!r}: Vertex AI's name for the pool",
           "the answer is in TensorFlow's terms: chief, worker, ps, evaluator",
           "workerpool0 is the chief, 1 the workers, 2 the parameter servers, 3 the evaluator: "
           "POOL_ROLES[int(pool[len('workerpool'):])] with POOL_ROLES = "
           "('chief', 'worker', 'ps', 'evaluator')")
    number = POOL_ROLES.index(want[0])
    shifted = {POOL_ROLES[(number + step) % len(POOL_ROLES)] for step in (-1, 1)}  # [-1]: too
    expect(kind not in shifted or kind == want[0],
           f"{what}{f' ({pool})' if pool else ''} gave the task type {kind!r}, not {want[0]!r}",
           "which pool is the chief's? Vertex AI counts its pools from 0",
           "workerpool0 is the chief: the pool's number is its place in "
           "('chief', 'worker', 'ps', 'evaluator')")
    expect(kind == want[0], f"{what} gave the task type {kind!r}, not {want[0]!r}",
           "the replica's pool is CLUSTER_SPEC's task.type",
           "json.loads(environ['CLUSTER_SPEC'])['task']['type'] names its pool (workerpool0 …"
           " workerpool3); without CLUSTER_SPEC the trainer runs alone, as the chief")
    expect(not isinstance(index, str), f"{what} gave the index {index!r}, a string",
           "an index is a number", "int(task['index'])")
    expect(index == want[1], f"{what} gave the index {index!r}, not {want[1]!r}",
           "the replica's index is CLUSTER_SPEC's task.index", "task['index'] (0 when alone)")
    expect(type(index) is int, f"{what} gave the index {index!r}, a {type(index).__name__}",
           "an index is a whole number", "int(task['index'])")
    expect(not (want[2] and trial == int(want[2])), f"{what} gave the trial {trial!r}, a number",
           "Vertex AI's trial ids are strings, as in CLUSTER_SPEC", "str(trial)")
    expect(want[2] is None or trial is not None or "CLUSTER_SPEC" not in environ
           or "TF_CONFIG" in environ, f"{what} gave no trial: it is trial {want[2]}",
           "a job of one replica has no TF_CONFIG, yet its task has a trial: which variable "
           "is set on every replica?", "read the trial from CLUSTER_SPEC's task "
           "(task.get('trial')): CLUSTER_SPEC is set on every replica, TF_CONFIG only when "
           "there are several")
    expect(want[2] is None or trial is not None or "CLUSTER_SPEC" in environ,
           f"{what} gave no trial: it is trial {want[2]}",
           "there is no cluster here, yet the trial has an id: `census tune` sets a third "
           "variable, as Vertex AI does", "fall back on environ.get('CLOUD_ML_TRIAL_ID')")
    expect(trial == want[2], f"{what} gave the trial {trial!r}, not {want[2]!r}",
           "only a tuning job's replicas have a trial: the task's `trial`, else "
           "CLOUD_ML_TRIAL_ID", "return None when neither is set")


def check_replica_role(replica_role_fn):
    """replica_role(environ) → (task type, index, trial id or None) must give, for every
    replica of REPLICAS (environments as Vertex AI sets them), what the package's readers give
    (census.distribute.vertex_env.read_cluster_spec and trial_id, tf_config.read_tf_config)."""
    for label, environ in REPLICAS:
        what = f"replica_role(<{label}>)"
        got = call(replica_role_fn, dict(environ), what=what, hint=_CRASH_HINTS)
        expect(isinstance(got, (tuple, list)) and len(got) == 3,
               f"{what} returned {str(got)[:80]}, not three values",
               "the role has three parts: the task type, its index and the trial",
               "return task_type, index, trial")
        want = replica_role(environ)
        if tuple(got) != want or type(got[1]) is not int:
            _diagnose(what, tuple(got), want, environ)
    passed(f"replica_role reads all {len(REPLICAS)} replicas as Vertex AI describes them: "
           "alone, one replica, every pool of a STANDARD_1 job, and trials")


PROJECT, REGION = "my-project", "us-central1"
MACHINE_TYPE = "n1-standard-4"
COMMAND = ["python", "-m", "census.task"]  # what the course's image runs


def submitted_job_spec(worker_pool_specs, base_output_dir, what="your pools"):
    """The jobSpec the real google-cloud-aiplatform SDK sends for
    `aiplatform.CustomJob(worker_pool_specs=…, base_output_dir=…).submit()` (REST JSON,
    camelCase, int64 as strings), recorded by a local VertexRecorder; the SDK's global config
    is left as it was. The SDK's crash on a malformed spec becomes a CheckFailed."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform
    from google.cloud.aiplatform import initializer

    from census.course.vertex_recorder import VertexRecorder
    saved = dict(vars(initializer.global_config))

    def submit():
        aiplatform.CustomJob(display_name="census", worker_pool_specs=worker_pool_specs,
                             base_output_dir=base_output_dir,
                             staging_bucket=f"{base_output_dir}/staging").submit()
    try:
        with (VertexRecorder() as recorder, quiet.logs("google.cloud.aiplatform.base"),
              quiet.logs("google.cloud.aiplatform.jobs")):  # the SDK's INFO lines
            aiplatform.init(project=PROJECT, location=REGION,
                            credentials=AnonymousCredentials(),
                            api_endpoint=recorder.endpoint, api_transport="rest")
            call(submit, what=f"aiplatform.CustomJob(worker_pool_specs={what}).submit()",
                 hint=[("Unknown field", ("the SDK takes the fields of WorkerPoolSpec in "
                                          "Python's spelling (snake_case)",
                                          "machine_spec, replica_count, container_spec; in "
                                          "container_spec: image_uri, command, args")),
                       ("must be dict", ("each message field is itself a dict",
                                         "'machine_spec': {'machine_type': 'n1-standard-4'}, "
                                         "'container_spec': {'image_uri': …, 'command': …, "
                                         "'args': …}"))])
            [request] = recorder.find("POST", "/customJobs")
    finally:
        vars(initializer.global_config).update(saved)
    return request["body"]["jobSpec"]


def _filled(counts):
    return [c for c in counts if c]


def check_worker_pool_specs(worker_pool_specs, tier, image_uri, args):
    """worker_pool_specs(tier, image_uri, args) → the worker pools (a list of dicts) of a
    CustomJob running the 2017 scale tier `tier` plus one evaluator: Vertex AI's pool order,
    an empty middle pool as {}, each pool on n1-standard-4 running the course's container
    (`python -m census.task ARGS`). The real SDK submits them to a local VertexRecorder; the
    check reads the request it sent."""
    what = f"worker_pool_specs({tier!r}, IMAGE_URI, TRAINER_ARGS)"
    pools = call(worker_pool_specs, tier, image_uri, list(args), what=what)
    expect(isinstance(pools, list) and all(isinstance(p, dict) for p in pools),
           f"{what} returned {type(pools).__name__}, not a list of dicts",
           "aiplatform.CustomJob takes its worker pools as a list, one dict per pool",
           "return [chief_pool, workers_pool, ps_pool, evaluator_pool], each a dict")
    spec = submitted_job_spec(pools, "gs://my-project-census/census/jobs/job1")
    sent = spec.get("workerPoolSpecs", [])
    counts = [int(p.get("replicaCount", 0)) for p in sent]
    want = tiers.layout_for(tier, evaluator=1).vertex_pools()
    without = tiers.TIERS[tier].vertex_pools()
    expect(counts != without, f"the pools hold {counts} replicas: no evaluator",
           "the 2017 tier had no evaluator: the job needs one more pool",
           "add a fourth pool, the evaluator's, with replica_count 1")
    expect(not (counts != want and _filled(counts) == _filled(want)),
           f"the pools hold {counts} replicas, not {want} ([chief, workers, ps, evaluator])",
           "a pool's place in the list says what it is: the fourth is the evaluator's",
           "keep an empty pool's place with {} (here "
           f"{[{} if not n else '…' for n in want]})")
    expect(counts == want, f"the pools hold {counts} replicas, not {want} "
           "([chief, workers, ps, evaluator])",
           "the replica counts come from the tier: census.distribute.tiers.TIERS[tier] has "
           "its chief, workers and ps",
           f"TIERS[{tier!r}] is {tiers.TIERS[tier]}: [layout.chief, layout.workers, "
           "layout.ps, 1]")
    for kind, pool, count in zip(POOL_ROLES, sent, counts):
        if not count:
            expect(pool == {}, f"the empty {kind} pool is {pool}",
                   "Vertex AI wants nothing in a pool that has no replica",
                   "an empty pool is {}, not a pool of 0 replicas")
            continue
        machine = pool.get("machineSpec", {}).get("machineType")
        expect(machine == MACHINE_TYPE, f"the {kind} pool's machine type is {machine}",
               "each pool says which machine its replicas run on",
               f"'machine_spec': {{'machine_type': '{MACHINE_TYPE}'}}")
        container = pool.get("containerSpec")
        expect(container, f"the {kind} pool runs no container "
               f"({', '.join(k for k in pool if k.endswith('Spec'))})",
               "the course's trainer runs in a container of its own, not as a package on a "
               "prebuilt image", "'container_spec': {'image_uri': image_uri, 'command': …, "
               "'args': args}")
        expect(container.get("imageUri") == image_uri,
               f"the {kind} pool runs the image {container.get('imageUri')}",
               "every pool runs the course's image, the one the function is given",
               "'image_uri': image_uri")
        command = container.get("command", [])
        expect(not (command and all(len(c) == 1 for c in command)),
               f"the {kind} pool's command is {''.join(command)!r}, one letter per word",
               "a command is a list of words, as subprocess takes it",
               f"'command': {COMMAND}")
        expect(command == COMMAND, f"the {kind} pool's command is {command}",
               "the container starts the trainer module, as `python -m` would",
               f"'command': {COMMAND}")
        got_args = container.get("args", [])
        expect(got_args == list(args), f"the {kind} pool's args are {got_args[:6]}",
               "the trainer flags are the ones the function is given, as a list",
               "'args': list(args)")
    passed(f"{tier} + evaluator as the SDK sends it to Vertex AI: pools {counts} "
           f"({sum(counts)} machines), each running {image_uri}")
