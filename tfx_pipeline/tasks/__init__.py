"""The pipeline's tasks: one module per task, each defining one `Task` record (`tfx_pipeline.tasks.base`), and
the registry that maps `--task` names to them.

Adding a task: a module here defining its options, flags and `TASK`, one line in `REGISTRY`, and its case in
`tests/tfx_pipeline/test_tasks_e2e.py`. Code outside this package looks tasks up here (`get`) and never names one
(`tests/tfx_pipeline/test_task_registry.py` checks).

Standard library only at module level, so that `--help` and flag errors come before TensorFlow.
"""

from typing import Dict, List

from tfx_pipeline.flags import Flag
from tfx_pipeline.tasks import classify, span_qa, text_generation, token_classification, translate
from tfx_pipeline.tasks.base import Task

REGISTRY: Dict[str, Task] = {task.name: task for task in (
    classify.TASK,
    token_classification.TASK,
    span_qa.TASK,
    translate.TASK,
    text_generation.TASK,
)}
TASKS = tuple(REGISTRY)
DEFAULT_TASK = TASKS[0]
# Compression after training (`--distill-into`, `--quantize`) applies to these tasks' models.
COMPRESSIBLE_TASKS = tuple(name for name, task in REGISTRY.items() if task.compressible)


def get(name: str) -> Task:
    """The task named `name`; ValueError naming the known ones otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"task must be one of {TASKS}, got {name!r}") from None


def flags() -> List[Flag]:
    """Every task's flags, each once. Tasks may declare the same flag (same names, type and default): its help
    then says which tasks read it, e.g. "classify, token_classification: ..." ("task: ...; task: ..." when
    their help texts differ)."""
    declared: Dict[tuple, list] = {}
    for task in REGISTRY.values():
        for flag in task.flags:
            declared.setdefault(flag.names, []).append((task.name, flag))
    merged = []
    for names, users in declared.items():
        settings = {key: value for key, value in users[0][1].kwargs.items() if key != "help"}
        by_help: Dict[str, list] = {}
        for task_name, flag in users:
            if {key: value for key, value in flag.kwargs.items() if key != "help"} != settings:
                raise ValueError(f"tasks {users[0][0]} and {task_name} declare {names[0]} differently")
            by_help.setdefault(flag.kwargs.get("help", ""), []).append(task_name)
        if len(by_help) == 1 and len(users) == len(REGISTRY):
            text = next(iter(by_help))
        else:
            text = "; ".join(f"{', '.join(readers)}: {help_text}" for help_text, readers in by_help.items())
        merged.append(Flag(names, {**settings, "help": text}))
    return merged
