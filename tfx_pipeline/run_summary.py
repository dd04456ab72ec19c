"""What one pipeline run did, read back from ML Metadata: executed vs cached components, anomalies, metrics,
blessing and push destination. The CLI prints it; the e2e tests assert on it."""

import dataclasses
import os
from typing import Dict, List, Optional

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2

STATE_NAMES = {metadata_store_pb2.Execution.COMPLETE: "executed",
               metadata_store_pb2.Execution.CACHED: "cached",
               metadata_store_pb2.Execution.FAILED: "failed",
               metadata_store_pb2.Execution.RUNNING: "running",
               metadata_store_pb2.Execution.CANCELED: "canceled"}


@dataclasses.dataclass
class RunSummary:
    """One pipeline run, as recorded in MLMD."""

    run_id: str
    components: Dict[str, str]  # node id -> "executed" / "cached" / "failed" / ...
    anomalies: Dict[str, List[str]]  # split -> "feature: description" lines
    metrics: Dict[str, float]
    blessed: Optional[bool]
    pushed_destination: Optional[str]
    model_run_dir: Optional[str]
    # node id -> artifact type name -> output URIs (e.g. outputs["StatisticsGen"]["ExampleStatistics"])
    outputs: Dict[str, Dict[str, List[str]]] = dataclasses.field(default_factory=dict)
    seconds: Dict[str, float] = dataclasses.field(default_factory=dict)  # node id -> wall time of its execution

    def format(self) -> str:
        """The human summary the CLI prints."""
        lines = [f"Pipeline run {self.run_id}:"]
        for node, state in self.components.items():
            lines.append(f"  {node:<32} {state}")
        for node in ("Transform", "Trainer", "Evaluator", "Pusher"):
            if node not in self.components:
                lines.append(f"  {node:<32} skipped")
        if self.anomalies:
            lines.append("DATA ANOMALIES (ExampleValidator): the data does not match the expected schema;")
            lines.append("  Transform, Trainer, Evaluator and Pusher did not run. Fix these rows and re-run:")
            splits: Dict[str, List[str]] = {}  # problem -> the splits that report it (the same input rows: both)
            for split, problems in self.anomalies.items():
                for problem in problems:
                    splits.setdefault(problem, []).append(split)
            lines += [f"  [{', '.join(names)}] {problem}" for problem, names in splits.items()]
        if self.metrics:
            lines.append("Eval metrics (held-out split): " + ", ".join(
                f"{name}={value:.4f}" if isinstance(value, float) else f"{name}={value}"
                for name, value in sorted(self.metrics.items())))
        if self.blessed is not None:
            lines.append(f"Blessed: {'yes' if self.blessed else 'NO (below the threshold or the baseline)'}")
        if self.pushed_destination:
            lines.append(f"Pushed to: {self.pushed_destination}")
        elif self.blessed is not None:
            lines.append("Not pushed.")
        if self.model_run_dir:
            lines.append(f"TensorBoard logs: {os.path.join(self.model_run_dir, 'logs')}")
        return "\n".join(lines)


def split_name(split_dir: str) -> str:
    """"train" for an artifact's `.../Split-train` folder."""
    return os.path.basename(os.path.normpath(split_dir))[len("Split-"):]


def open_store(metadata_path: str) -> mlmd.MetadataStore:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return mlmd.MetadataStore(config)


def latest_run_summary(metadata_path: str, pipeline_name: str) -> RunSummary:
    """The summary of the newest run of `pipeline_name` in the MLMD store at `metadata_path`: for tests and
    benchmarks that ran one pipeline alone. A run that reports on itself reads `run_summary` by its run id."""
    store = open_store(metadata_path)
    runs = [c for c in store.get_contexts_by_type("pipeline_run")
            if any(p.name == pipeline_name for p in _parent_pipelines(store, c))] or \
        store.get_contexts_by_type("pipeline_run")
    if not runs:
        raise LookupError(f"no run of {pipeline_name} in {metadata_path}")
    return _summary(store, max(runs, key=lambda c: (c.create_time_since_epoch, c.id)))


def run_summary(metadata_path: str, run_id: str) -> RunSummary:
    """The summary of the run `run_id` (its `pipeline_run` context's name) in the MLMD store at `metadata_path`;
    LookupError when the store has no such run (it failed before recording anything)."""
    store = open_store(metadata_path)
    run = store.get_context_by_type_and_name("pipeline_run", run_id)
    if run is None:
        raise LookupError(f"no run {run_id} in {metadata_path}")
    return _summary(store, run)


def _summary(store, run) -> RunSummary:
    """What the executions of the `pipeline_run` context `run` did."""
    executions = sorted(store.get_executions_by_context(run.id), key=lambda e: e.id)
    summary = RunSummary(run_id=run.name, components={}, anomalies={}, metrics={}, blessed=None,
                         pushed_destination=None, model_run_dir=None)
    for execution in executions:
        node = _node_id(store, execution)
        summary.components[node] = STATE_NAMES.get(execution.last_known_state, "unknown")
        summary.seconds[node] = (execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1e3
        outputs = _output_artifacts(store, execution.id)
        summary.outputs[node] = {kind: [artifact.uri for artifact in artifacts] for kind, artifacts in outputs.items()}
        if node == "ExampleValidator":
            summary.anomalies = _anomalies(outputs)
        elif node == "Evaluator":
            summary.metrics = _metrics(outputs)
            for artifact in outputs.get("ModelBlessing", []):
                summary.blessed = bool(artifact.custom_properties["blessed"].int_value)
        elif node == "Pusher":
            for artifact in outputs.get("PushedModel", []):
                if artifact.custom_properties["pushed"].int_value:
                    summary.pushed_destination = artifact.custom_properties["pushed_destination"].string_value
        elif node == "Trainer":
            for artifact in outputs.get("ModelRun", []):
                summary.model_run_dir = artifact.uri
    return summary


def _parent_pipelines(store, run_context):
    return store.get_parent_contexts_by_context(run_context.id)


def _node_id(store, execution) -> str:
    for context in store.get_contexts_by_execution(execution.id):
        if store.get_context_types_by_id([context.type_id])[0].name == "node":
            return context.name.rsplit(".", 1)[-1]  # "<pipeline>.<node id>"
    return str(execution.id)


def _output_artifacts(store, execution_id: int) -> Dict[str, list]:
    """Type name -> output artifacts of the execution."""
    events = [e for e in store.get_events_by_execution_ids([execution_id])
              if e.type in (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)]
    artifacts = store.get_artifacts_by_id([e.artifact_id for e in events])
    types = {t.id: t.name for t in store.get_artifact_types_by_id(list({a.type_id for a in artifacts}))}
    by_type: Dict[str, list] = {}
    for artifact in artifacts:
        by_type.setdefault(types[artifact.type_id], []).append(artifact)
    return by_type


def _anomalies(outputs) -> Dict[str, List[str]]:
    """Split -> anomaly descriptions, from ExampleValidator's `SchemaDiff.pb` files."""
    import tensorflow as tf
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    found = {}
    for artifact in outputs.get("ExampleAnomalies", []):
        for path in sorted(tf.io.gfile.glob(os.path.join(artifact.uri, "Split-*", "SchemaDiff.pb"))):
            anomalies = anomalies_pb2.Anomalies.FromString(tf.io.gfile.GFile(path, "rb").read())
            problems = [f"{feature}: {info.description}" for feature, info in sorted(anomalies.anomaly_info.items())]
            if anomalies.HasField("dataset_anomaly_info"):
                problems.append(f"dataset: {anomalies.dataset_anomaly_info.description}")
            if problems:
                found[split_name(os.path.dirname(path))] = problems
    return found


def _metrics(outputs) -> Dict[str, float]:
    """Overall (unsliced) metrics of the candidate model, from the Evaluator's ModelEvaluation."""
    import tensorflow_model_analysis as tfma

    metrics = {}
    for artifact in outputs.get("ModelEvaluation", []):
        for record in tfma.load_metrics(artifact.uri):
            if record.slice_key.single_slice_keys:
                continue
            for key_and_value in record.metric_keys_and_values:
                key, value = key_and_value.key, key_and_value.value
                if key.is_diff or key.model_name == "baseline" or not value.HasField("double_value"):
                    continue
                name = key.name + (f"/class_{key.sub_key.class_id.value}" if key.sub_key.HasField("class_id")
                                   else "")
                metrics[name] = value.double_value.value
    return metrics
