"""Cloud ML Engine's scale tiers (2017) as task counts: the layout of a cluster (chapter 7).

A `Layout` gives the processes of a local cluster (`census cluster`), their TF_CONFIG
cluster, and the replica counts of a Vertex AI CustomJob's worker pools.
"""
import dataclasses

from census.distribute.tf_config import strategy_kind


@dataclasses.dataclass(frozen=True)
class Layout:
    """How many replicas of each task type. No chief: worker 0 leads (MultiWorkerMirrored)."""
    chief: int = 1
    workers: int = 0
    ps: int = 0
    evaluator: int = 0
    gpus: int = 0  # per replica, for the cloud; ignored locally

    def tasks(self):
        """(type, index) of every process to start, chief first."""
        counts = {"chief": self.chief, "worker": self.workers, "ps": self.ps}
        return [(kind, i) for kind, n in counts.items() for i in range(n)]

    def cluster(self, ports):
        """The TF_CONFIG `cluster` dict, given one port per task (in `tasks()` order)."""
        spec = {}
        for (kind, _), port in zip(self.tasks(), ports):
            spec.setdefault(kind, []).append(f"localhost:{port}")
        return spec

    def vertex_pools(self):
        """Replica counts of Vertex AI's worker pools: [0] chief, [1] workers, [2] parameter
        servers, [3] evaluator (trailing empty pools dropped)."""
        if not self.chief:  # Vertex's pool 0 is always one replica: the leading worker
            pools = [1, self.workers - 1, self.ps, self.evaluator]
        else:
            pools = [self.chief, self.workers, self.ps, self.evaluator]
        while pools and not pools[-1]:
            pools.pop()
        return pools

    @property
    def strategy(self):
        """The strategy its TF_CONFIG calls for (`tf_config.strategy_kind`, the one rule)."""
        return strategy_kind(self.cluster(range(len(self.tasks()))))



# Cloud ML Engine's scale tiers (2017), as replica counts. STANDARD_1's are the 2017 post's
# ("one 'master' instance, plus four workers and three parameter servers"); PREMIUM_1's are
# a guess (Google's reference: "a large number of workers with many parameter servers");
# BASIC_GPU is one machine with one GPU (a K80 then). CUSTOM takes the counts you give.
TIERS = {
    "BASIC": Layout(),
    "STANDARD_1": Layout(chief=1, workers=4, ps=3),
    "PREMIUM_1": Layout(chief=1, workers=19, ps=11),
    "BASIC_GPU": Layout(gpus=1),
    "CUSTOM": Layout(chief=1, workers=2, ps=1),
}


LOCAL_DEFAULT = TIERS["CUSTOM"]  # chief + 2 workers + 1 ps: what 2 cores can carry


def layout_for(tier="CUSTOM", workers=None, ps=None, mirrored=False, evaluator=0):
    """The tier's layout with replica counts scaled (`workers`, `ps`); `mirrored`: a
    worker-only MultiWorkerMirrored layout of `workers` processes (default 2)."""
    if tier not in TIERS:
        raise ValueError(f"scale tier must be one of {', '.join(TIERS)}, not {tier!r}")
    if mirrored:
        if ps:
            raise ValueError("a MultiWorkerMirrored layout has no parameter servers")
        return Layout(chief=0, workers=2 if workers is None else workers, evaluator=evaluator)
    base = TIERS[tier]
    return dataclasses.replace(base, workers=base.workers if workers is None else workers,
                               ps=base.ps if ps is None else ps, evaluator=evaluator)
