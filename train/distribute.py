"""``--strategy``: one device, all local GPUs, or several machines, through ``tf.distribute``.

fer-edge does no communication of its own: TensorFlow's strategies replicate the model, split
each global batch across the replicas and all-reduce the gradients. ``multi-worker`` reads the
cluster from the standard ``TF_CONFIG`` environment variable.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from fer_edge.errors import FerEdgeError
from fer_edge.tfcompat import tf_and_keras

#: The ``--strategy`` choices.
STRATEGIES: tuple[str, ...] = ("auto", "one", "mirrored", "multi-worker")


@dataclass(frozen=True)
class Distribution:
    """The strategy a run uses and this process's place in it.

    Attributes:
        strategy: the ``tf.distribute.Strategy``; build and compile models in its ``scope()``.
        name: the ``--strategy`` it was made from, resolved (``auto`` becomes what it picked).
        replicas: replicas in sync over all workers; each gets ``batch / replicas`` images.
        chief: True in the one process that writes checkpoints, reports and the model.
        task: ``worker 1`` style label of this process (``""`` outside multi-worker runs).
    """

    strategy: Any
    name: str
    replicas: int
    chief: bool = True
    task: str = ""

    def describe(self) -> str:
        """Return one line for the training log, e.g. ``mirrored: 2 replicas``."""
        where = f", this process is {self.task}{' (chief)' if self.chief else ''}"
        return f"{self.name}: {self.replicas} replica(s){where if self.task else ''}"

    def wait_for_all(self) -> None:
        """Block until every worker gets here (a no-op outside multi-worker runs).

        Workers call it after the chief has written its reports, so none exits while the
        others still run: TensorFlow reports a worker that leaves early as a crashed task.
        """
        if self.name != "multi-worker":
            return
        tf, _ = tf_and_keras()
        # An all-reduce over every replica is the barrier.
        self.strategy.reduce("SUM", self.strategy.run(lambda: tf.constant(1.0)), axis=None)


def _cluster_from_tf_config() -> dict[str, Any]:
    raw = os.environ.get("TF_CONFIG", "")
    if not raw.strip():
        raise FerEdgeError(
            "--strategy multi-worker: TF_CONFIG is not set; give every process "
            '{"cluster": {"worker": ["host1:port", ...]}, "task": {"type": "worker", "index": i}}'
        )
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise FerEdgeError(f"--strategy multi-worker: TF_CONFIG is not JSON ({exc})") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not (cluster.get("worker") or cluster.get("chief")):
        raise FerEdgeError("--strategy multi-worker: TF_CONFIG has no cluster.worker list")
    if not isinstance(task, dict) or task.get("type") not in cluster:
        raise FerEdgeError(
            "--strategy multi-worker: TF_CONFIG task.type must name a job of its cluster "
            f"({', '.join(cluster)})"
        )
    index = task.get("index", 0)
    if not isinstance(index, int) or not 0 <= index < len(cluster[task["type"]]):
        raise FerEdgeError(
            f"--strategy multi-worker: TF_CONFIG task.index {index!r} is not an index into "
            f"cluster.{task['type']}"
        )
    return config


def _is_chief(config: dict[str, Any]) -> bool:
    # TensorFlow's convention: the "chief" task if the cluster has one, else worker 0.
    task, cluster = config["task"], config["cluster"]
    if task["type"] == "chief":
        return True
    return task["type"] == "worker" and task.get("index", 0) == 0 and "chief" not in cluster


def make_distribution(name: str) -> Distribution:
    """Create the strategy ``--strategy NAME`` asks for.

    Call it before any other TensorFlow work: ``MultiWorkerMirroredStrategy`` configures the
    collective ops, which TensorFlow only allows before its runtime starts.

    Args:
        name: ``auto`` (all local GPUs if there are several, else the default device),
            ``one`` (the default device), ``mirrored`` (all local GPUs, or every logical CPU
            device when there is no GPU) or ``multi-worker`` (``TF_CONFIG``).

    Raises:
        FerEdgeError: an unknown name, or a missing or malformed ``TF_CONFIG``.
    """
    if name not in STRATEGIES:
        raise FerEdgeError(f"--strategy: choose from {', '.join(STRATEGIES)}, not {name!r}")
    if name == "multi-worker":
        config = _cluster_from_tf_config()
        tf, _ = tf_and_keras()
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        task = f"{config['task']['type']} {config['task'].get('index', 0)}"
        return Distribution(strategy, name, strategy.num_replicas_in_sync, _is_chief(config), task)
    tf, _ = tf_and_keras()
    gpus = tf.config.list_physical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "one"
    if name == "one":
        return Distribution(tf.distribute.get_strategy(), name, 1)
    devices = None if gpus else [d.name for d in tf.config.list_logical_devices("CPU")]
    strategy = tf.distribute.MirroredStrategy(devices)
    return Distribution(strategy, name, strategy.num_replicas_in_sync)


def shard_by_data(dataset: Any) -> Any:
    """Return ``dataset`` sharded element-wise across workers.

    The datasets are in-memory tensors, not files, so TensorFlow's default (shard by file)
    would fall back with a warning. Every worker shuffles with the same seed, so each keeps a
    distinct share of every global batch.
    """
    tf, _ = tf_and_keras()
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
