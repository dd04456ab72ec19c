"""Training with `model.fit` on several worker processes or machines (`tf.distribute.MultiWorkerMirroredStrategy`).

Each worker runs the same program; `TF_CONFIG` (set by the cluster manager: Kubernetes, Vertex AI custom jobs,
or `tfmodels.examples.multi_worker` on one machine) tells it the cluster and its own index. Recipe::

    strategy = multi_worker_strategy()               # reads TF_CONFIG; installs the Keras 3 fixes
    with strategy.scope():
        model = BertClassifier(BertEncoder(config), num_classes=2)
        model.compile(optimizer="adam", jit_compile=True)
    data = worker_dataset(strategy, lambda: examples, global_batch_size=32)
    model.fit(data, epochs=..., steps_per_epoch=...,
              callbacks=[ChiefBackupAndRestore("/shared/backup", save_freq="epoch")])
    if is_chief(strategy):
        model.save("/shared/model.keras")

Every worker sees the same global batch each step: worker `w` of `W` reads elements `w, w + W, ...` of
`examples`, so a step's global batch is the same `global_batch_size` consecutive elements one worker would read.
A worker that dies stops every worker (their collectives fail or time out): the cluster manager restarts them all
and `ChiefBackupAndRestore` resumes from the last backup.
"""

import json
import os
from typing import Callable, Optional

import keras
import tensorflow as tf

from tfmodels.distribute import keras_fixes


def multi_worker_strategy(communication: str = "auto") -> tf.distribute.MultiWorkerMirroredStrategy:
    """`MultiWorkerMirroredStrategy` from `TF_CONFIG`, with the fixes Keras 3's `fit` needs (`keras_fixes`).

    Args:
        communication: collective implementation, "auto", "ring" (gRPC, CPU) or "nccl" (GPU).

    Create it at program start, before any other TensorFlow op (TensorFlow's rule for this strategy).
    """
    implementations = {"auto": tf.distribute.experimental.CommunicationImplementation.AUTO,
                       "ring": tf.distribute.experimental.CommunicationImplementation.RING,
                       "nccl": tf.distribute.experimental.CommunicationImplementation.NCCL}
    if communication not in implementations:
        raise ValueError(f"communication must be one of {sorted(implementations)}, got {communication!r}")
    keras_fixes.install()
    options = tf.distribute.experimental.CommunicationOptions(implementation=implementations[communication])
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def worker_index(strategy: Optional[tf.distribute.Strategy] = None) -> int:
    """This worker's index in the cluster (0 without a cluster)."""
    resolver = getattr((strategy or tf.distribute.get_strategy()).extended, "_cluster_resolver", None)
    return int(resolver.task_id or 0) if resolver is not None and resolver.task_type else 0


def is_chief(strategy: Optional[tf.distribute.Strategy] = None) -> bool:
    """True on the worker that writes checkpoints and exports: TF_CONFIG's "chief", else worker 0."""
    strategy = strategy or tf.distribute.get_strategy()
    resolver = getattr(strategy.extended, "_cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if "chief" in resolver.cluster_spec().as_dict():
        return resolver.task_type == "chief"
    return resolver.task_type == "worker" and int(resolver.task_id or 0) == 0


def worker_dataset(strategy: tf.distribute.Strategy, make_dataset: Callable[[], tf.data.Dataset],
                   global_batch_size: int, repeat: bool = True, start_step: int = 0):
    """The distributed input for `fit`: `make_dataset()` (unbatched elements) sharded per worker and batched.

    Worker `w` of `W` keeps elements `w, w + W, ...` and batches them by `global_batch_size / W` per replica, so a
    step's global batch holds the elements one worker with `global_batch_size` would read in that step.

    Args:
        strategy: the strategy `fit` runs under.
        make_dataset: returns the examples as a `tf.data.Dataset` of unbatched elements, in a fixed order.
        global_batch_size: examples per step over all replicas; a multiple of `num_replicas_in_sync`.
        repeat: repeat the data without end (use `steps_per_epoch` in `fit`).
        start_step: global steps already trained, whose batches are skipped: on a resume,
            `backup.completed_epochs() * steps_per_epoch`, so the run reads what an uninterrupted one would.
    """
    replicas = strategy.num_replicas_in_sync
    if global_batch_size % replicas:
        raise ValueError(f"global_batch_size {global_batch_size} is not a multiple of the "
                         f"{replicas} replicas in sync")
    return strategy.distribute_datasets_from_function(
        lambda context: input_pipeline(make_dataset(), context, global_batch_size, repeat, start_step))


def input_pipeline(dataset: tf.data.Dataset, context: tf.distribute.InputContext, global_batch_size: int,
                   repeat: bool = True, start_step: int = 0) -> tf.data.Dataset:
    """One input pipeline's share of `dataset` (what `worker_dataset` gives each worker), batched per replica."""
    options = tf.data.Options()
    # We shard ourselves, by element, so that each step's global batch is the single-worker batch.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    dataset = dataset.with_options(options).shard(context.num_input_pipelines, context.input_pipeline_id)
    if repeat:
        dataset = dataset.repeat()
    # Each input pipeline feeds global_batch_size / num_input_pipelines elements per step.
    dataset = dataset.skip(start_step * (global_batch_size // context.num_input_pipelines))
    return dataset.batch(context.get_per_replica_batch_size(global_batch_size), drop_remainder=True).prefetch(2)


class ChiefBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` for several workers: the chief writes, every worker restores.

    Keras 3's callback has every worker write the same files (racing on a shared file system) and delete them at
    the end. Here only the chief writes and deletes; each worker loads the chief's latest backup on
    `fit`'s start, so a restarted cluster resumes together. Like Keras' callback it resumes at an epoch
    boundary: back up every epoch and keep epochs short (`steps_per_epoch`) to lose little work.

    Args:
        backup_dir: a directory every worker can read (on a cluster, shared storage such as gs://).
        save_freq: "epoch", or a number of steps (then a resume repeats the interrupted epoch from its start).
        delete_checkpoint: delete the backup when training ends.
        strategy: the strategy `fit` runs under (default: the current one).

    Example:
    >>> import tempfile
    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> model.compile("sgd", "mse")
    >>> backup = ChiefBackupAndRestore(tempfile.mkdtemp(), delete_checkpoint=False)
    >>> _ = model.fit(np.zeros((8, 2)), np.zeros((8, 1)), epochs=2, verbose=0, callbacks=[backup])
    >>> backup.completed_epochs()
    2
    """

    def __init__(self, backup_dir: str, save_freq="epoch", delete_checkpoint: bool = True,
                 strategy: Optional[tf.distribute.Strategy] = None):
        super().__init__(backup_dir, save_freq=save_freq, delete_checkpoint=delete_checkpoint)
        self.strategy = strategy

    def _is_chief(self) -> bool:
        return is_chief(self.strategy or (self.model.distribute_strategy if self.model is not None else None))

    def completed_epochs(self) -> int:
        """Epochs the latest backup has completed (0 without a backup)."""
        if not tf.io.gfile.exists(self._training_metadata_path):
            return 0
        with tf.io.gfile.GFile(self._training_metadata_path) as f:
            return int(json.load(f)["epoch"])

    def _save_model(self):
        if self._is_chief():
            super()._save_model()

    def on_train_end(self, logs=None):
        if self._is_chief():
            super().on_train_end(logs)


def chief_path(path: str, strategy: Optional[tf.distribute.Strategy] = None) -> Optional[str]:
    """`path` on the chief, None elsewhere: `if (p := chief_path(out)): model.save(p)`."""
    return path if is_chief(strategy) else None


def tf_config_for(workers: list, index: int, task_type: str = "worker") -> str:
    """The `TF_CONFIG` value for worker `index` of `workers` ("host:port" strings)."""
    return json.dumps({"cluster": {"worker": list(workers)}, "task": {"type": task_type, "index": index}})


def cluster_size() -> int:
    """Workers named by TF_CONFIG (1 without it)."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    return sum(len(tasks) for kind, tasks in config.get("cluster", {}).items() if kind in ("chief", "worker")) or 1
