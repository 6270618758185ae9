"""`census cluster`: the trainer as a local cluster, one process per task (chapter 7)."""
import sys

from census import flags, processes


def add_command(subparsers):
    """Add `census cluster` to the `census` command's subparsers."""
    from census.distribute.tiers import TIERS
    p = subparsers.add_parser(
        "cluster", allow_abbrev=False, help="the trainer as a local cluster (chapter 7)",
        usage="census cluster [options] -- --job-dir JOB [trainer flags]",
        description="Run the trainer as a local cluster, one process per task, in a private "
                    "network namespace.")
    p.add_argument("--scale-tier", choices=TIERS, default="CUSTOM",
                   help="Cloud ML Engine tier whose layout to run (default CUSTOM: chief + "
                   "2 workers + 1 ps)")
    p.add_argument("--workers", type=flags.whole(1), help="scale the tier's worker count to this")
    p.add_argument("--ps", type=flags.whole(0),
                   help="scale the tier's parameter server count to this")
    p.add_argument("--mirrored", action="store_true",
                   help="worker-only layout (MultiWorkerMirroredStrategy), --workers processes")
    p.add_argument("--evaluator", action="store_true",
                   help="also run an evaluator task on the chief's checkpoints")
    p.add_argument("--module-name", default="census.task", help="the trainer module")
    p.add_argument("--timeout", type=flags.number(above=0), default=3600,
                   help="stop everything after this many seconds (exit status 124)")
    p.add_argument("--allow-host-network", action="store_true",
                   help="run without a private network namespace: task ports are then open "
                   "on every interface of this host")
    p.add_argument("trainer_args", nargs="*", metavar="-- TRAINER FLAGS",
                   help="the flags of `census train`, after `--`")
    p.set_defaults(run=run)


def run(args, netns_commands=None):
    """Run the cluster `args` describe; exit with the chief's status."""
    from census.config import as_config
    from census.distribute import cluster, namespace, tiers
    # Ctrl-C raises KeyboardInterrupt; SIGTERM unwinds the same way, so `run` cleans up.
    try:
        with processes.exit_on_termination():
            layout = tiers.layout_for(args.scale_tier, args.workers, args.ps, args.mirrored,
                                      evaluator=int(args.evaluator))
            trainer = args.trainer_args
            if args.module_name == "census.task":  # the course's trainer: its flags checked now
                trainer = as_config(trainer)
            status = cluster.run(layout, trainer, args.module_name, args.timeout,
                                 netns_commands, args.allow_host_network)
    except (cluster.ClusterError, namespace.NamespaceError, ValueError) as e:
        sys.exit(f"census cluster: {e}")
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(status)

