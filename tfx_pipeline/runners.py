"""Running and compiling the pipeline: LocalDagRunner (default), BeamDagRunner, and a Kubeflow V2 JSON.

Beam arguments (`PipelineConfig.beam_pipeline_args`, `--beam-arg` on the CLI) go to every Beam-based component
(ExampleGen, StatisticsGen, Transform, Evaluator). Tested here: DirectRunner, in-process or
`--direct_running_mode=multi_processing --direct_num_workers=N`; Flink and Spark through Beam's portable
runner (`run(config, "flink")`, `"spark"`: on local clusters started for the run, or on a named one). For a
cluster, the usual Beam arguments (data and pipeline root then on shared storage, e.g. gs://; the `tfmodels`
package shipped to the workers):

- Dataflow: `--runner=DataflowRunner --project=P --region=R --temp_location=gs://B/tmp
  --setup_file=./setup.py` (or `--sdk_container_image=...` with tfmodels installed).
- Flink / Spark on a real cluster: `--runner flink --flink-master HOST:8081` or `--runner spark --spark-master
  spark://HOST:7077`, plus `--beam-arg=--environment_type=DOCKER --beam-arg=--environment_config=IMAGE` (an SDK
  image with tfmodels; the default LOOPBACK needs the cluster to reach this machine).
"""

import dataclasses
import os
import re
from typing import Optional

from tfx import v1 as tfx

from tfx_pipeline.hparams import RUNNERS
from tfx_pipeline.pipeline import PipelineConfig, create_pipeline

ENGINES = ("kubeflow-v2",)
# The image Kubeflow runs each component in: TFX's own plus this package (build it from this repository).
DEFAULT_IMAGE = "tfmodels-pipeline:latest"


def run(config: PipelineConfig, runner: str = "local", master: Optional[str] = None,
        run_id: Optional[str] = None) -> None:
    """Run the pipeline in this process with LocalDagRunner (`"local"`), BeamDagRunner (`"beam"`), or
    LocalDagRunner with every Beam component on Flink (`"flink"`) or Spark (`"spark"`).

    `run_id` names the run in ML Metadata (its `pipeline_run` context), so that the caller reads back its own run
    (`run_summary.run_summary`); None: the runner's own (the start time).

    For flink/spark, `master` names the cluster (Flink's REST `host:port`, `spark://host:port`); None starts a
    local one for the run (`tfx_pipeline.beam_clusters`), its logs under `<pipeline_root>/<runner>-cluster-logs`.
    `config.beam_pipeline_args` come after the cluster's arguments, so they can override them.
    """
    if runner in ("flink", "spark"):
        from tfx_pipeline import beam_clusters

        masters = {"flink_master": master} if runner == "flink" else {"spark_master": master}
        log_dir = os.path.join(config.pipeline_root, f"{runner}-cluster-logs")
        with beam_clusters.portable_runner_args(runner, log_dir=log_dir, **masters) as cluster_args:
            config = dataclasses.replace(config, beam_pipeline_args=cluster_args + list(config.beam_pipeline_args))
            _with_run_id(tfx.orchestration.LocalDagRunner, run_id).run(create_pipeline(config))
        return
    if master is not None:
        raise ValueError(f"a cluster master is for the flink and spark runners, not {runner!r}")
    pipeline = create_pipeline(config)
    if runner == "beam":
        from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

        _with_run_id(BeamDagRunner, run_id).run(pipeline)
    elif runner == "local":
        _with_run_id(tfx.orchestration.LocalDagRunner, run_id).run(pipeline)
    else:
        raise ValueError(f"runner must be one of {RUNNERS}, got {runner!r}")


def _with_run_id(runner_class, run_id: Optional[str]):
    """A `runner_class` (an IR-based TFX runner) whose runs are named `run_id`: set in the compiled pipeline before
    the runner sets its own (the start time), which then finds nothing left to set."""
    if run_id is None:
        return runner_class()
    from tfx.dsl.compiler import constants
    from tfx.orchestration.portable import runtime_parameter_utils

    class NamedRunRunner(runner_class):
        def run_with_ir(self, pipeline, *args, **kwargs):
            runtime_parameter_utils.substitute_runtime_parameter(
                pipeline, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: run_id})
            return super().run_with_ir(pipeline, *args, **kwargs)

    return NamedRunRunner()


def kubeflow_pipeline_name(name: str) -> str:
    """`name` as Kubeflow V2 accepts it ([a-z0-9][a-z0-9-]{0,127}): lower case, other characters as '-'."""
    legal = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:128]
    if not legal:
        raise ValueError(f"pipeline name {name!r} has no character Kubeflow accepts ([a-z0-9-])")
    return legal


def compile_kubeflow_v2(config: PipelineConfig, output_file: str, image: str = DEFAULT_IMAGE) -> str:
    """Write the pipeline as a Kubeflow Pipelines V2 (Vertex AI Pipelines) JSON spec; returns the path.

    Kubeflow V2 allows only [a-z0-9-] in pipeline names, so e.g. `tfmodels_text_classifier` compiles as
    `tfmodels-text-classifier`.
    """
    try:
        import kfp.pipeline_spec  # noqa: F401  (TFX's Kubeflow V2 compiler needs it)
    except ImportError as e:
        raise RuntimeError("compiling for Kubeflow V2 needs kfp-pipeline-spec: pip install 'kfp-pipeline-spec==0.2.2'"
                           ) from e
    config = dataclasses.replace(config, pipeline_name=kubeflow_pipeline_name(config.pipeline_name))
    runner_config = tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=image)
    directory, filename = os.path.split(os.path.abspath(output_file))
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=runner_config, output_dir=directory, output_filename=filename)
    runner.run(create_pipeline(config), write_out=True)
    return os.path.join(directory, filename)
