"""Trainer's `run_fn` (TFX loads it by this module path): the task's train-and-export (`tfx_pipeline.tasks`)
under the run's seed, tf.distribute strategy, TensorBoard and progress logs.

Hyper-parameters come from `custom_config`, a `tfx_pipeline.hparams.ModelHParams`. Input batches come from TFX's
`data_accessor` with Transform's output schema, as in TFX's own Keras examples (`tfx_pipeline.training`).
"""

import os

import keras
import tensorflow_transform as tft

from tfmodels.callbacks import ProgressLogger
from tfx_pipeline import tasks
from tfx_pipeline.hparams import ModelHParams
from tfx_pipeline.training import chief_fn_args, distribution_strategy


def run_fn(fn_args):
    """Train on `fn_args.train_files`, evaluate on `eval_files`, export to `fn_args.serving_model_dir`; under
    the strategy `hparams.strategy` names (models, optimizers and `fit` in its scope; the chief exports)."""
    hparams = ModelHParams.from_custom_config(fn_args.custom_config)
    keras.utils.set_random_seed(hparams.seed)
    strategy = distribution_strategy(hparams.strategy)
    with strategy.scope():
        fn_args = chief_fn_args(fn_args, strategy)
        callbacks = [keras.callbacks.TensorBoard(log_dir=os.path.join(fn_args.model_run_dir, "logs")),
                     ProgressLogger(every_seconds=30, every_steps=max(int(fn_args.train_steps) // 10, 1),
                                    prefix="Trainer: ")]
        return tasks.get(hparams.task).train_and_export(
            fn_args, hparams, tft.TFTransformOutput(fn_args.transform_graph_path), callbacks)
