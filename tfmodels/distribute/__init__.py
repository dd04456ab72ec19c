"""Distributed training: `model.fit` on several workers (`MultiWorkerMirroredStrategy`), resumable."""

from tfmodels.distribute.multi_worker import (
    ChiefBackupAndRestore,
    chief_path,
    cluster_size,
    input_pipeline,
    is_chief,
    multi_worker_strategy,
    tf_config_for,
    worker_dataset,
    worker_index,
)

__all__ = ["ChiefBackupAndRestore", "chief_path", "cluster_size", "input_pipeline", "is_chief", "multi_worker_strategy",
           "tf_config_for", "worker_dataset", "worker_index"]
