"""Transform's `preprocessing_fn` (TFX loads it by this module path): the task's own (`tfx_pipeline.tasks`).

`custom_config`: a `tfx_pipeline.hparams.ModelHParams`, whose `task` names the task and whose `options` are its
options. The same graph is applied in the exported serving signatures (via the transform layer) where a task
serves raw text through it.
"""

from tfx_pipeline import tasks
from tfx_pipeline.hparams import ModelHParams


def preprocessing_fn(inputs, custom_config):
    """Raw features -> the task's model inputs and targets."""
    hparams = ModelHParams.from_custom_config(custom_config)
    return tasks.get(hparams.task).preprocessing_fn(inputs, hparams)
