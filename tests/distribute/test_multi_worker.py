"""The multi-worker helpers: per-worker input, chief-only writes, TF_CONFIG."""

import json

import numpy as np
import pytest
import tensorflow as tf

from tfmodels.distribute import (
    ChiefBackupAndRestore,
    cluster_size,
    input_pipeline,
    is_chief,
    tf_config_for,
    worker_dataset,
    worker_index,
)


def _elements(count=40):
    return tf.data.Dataset.range(count)


@pytest.mark.parametrize("start_step", [0, 3])
def test_workers_together_read_the_single_worker_batches(start_step):
    global_batch, workers, steps = 8, 2, 4
    single = list(input_pipeline(_elements(), tf.distribute.InputContext(1, 0, 1), global_batch,
                                 start_step=start_step).take(steps).as_numpy_iterator())
    shares = [list(input_pipeline(_elements(), tf.distribute.InputContext(workers, w, workers), global_batch,
                                  start_step=start_step).take(steps).as_numpy_iterator())
              for w in range(workers)]
    assert single[0][0] == start_step * global_batch
    for step in range(steps):
        assert all(len(share[step]) == global_batch // workers for share in shares)
        assert sorted(np.concatenate([share[step] for share in shares])) == sorted(single[step])


def test_worker_dataset_batches_per_replica_and_repeats():
    strategy = tf.distribute.get_strategy()
    batches = [b.numpy() for b, _ in zip(worker_dataset(strategy, lambda: _elements(10), 4), range(4))]
    assert [list(b) for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1], [2, 3, 4, 5]]


def test_worker_dataset_rejects_a_batch_the_replicas_cannot_split():
    class TwoReplicas:
        num_replicas_in_sync = 2

    with pytest.raises(ValueError, match="global_batch_size 5 is not a multiple of the 2 replicas"):
        worker_dataset(TwoReplicas(), _elements, 5)


def test_tf_config_names_the_cluster_and_the_task(monkeypatch):
    config = json.loads(tf_config_for(["a:1", "b:2", "c:3"], 2))
    assert config == {"cluster": {"worker": ["a:1", "b:2", "c:3"]}, "task": {"type": "worker", "index": 2}}
    monkeypatch.setenv("TF_CONFIG", tf_config_for(["a:1", "b:2", "c:3"], 2))
    assert cluster_size() == 3
    monkeypatch.delenv("TF_CONFIG")
    assert cluster_size() == 1


def test_without_a_cluster_this_process_is_the_chief():
    assert is_chief() and worker_index() == 0


def test_only_the_chief_writes_the_backup(tmp_path, monkeypatch):
    import keras

    monkeypatch.setattr("tfmodels.distribute.multi_worker.is_chief", lambda strategy=None: False)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    backup = ChiefBackupAndRestore(str(tmp_path / "backup"), delete_checkpoint=False)
    model.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=2, verbose=0, callbacks=[backup])
    assert backup.completed_epochs() == 0 and not list(tmp_path.rglob("*.keras")) \
        and not list(tmp_path.rglob("*.json"))
