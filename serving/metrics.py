"""Prometheus metrics under TF Serving's names, rendered in the Prometheus text exposition format.

TF Serving exports its monitoring counters with "/" replaced by ":" (e.g. "/tensorflow/serving/request_count"
becomes ":tensorflow:serving:request_count"); we keep those names so dashboards work against either server.
"""

import bisect
import threading
from typing import Dict, Sequence, Tuple

REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
INPUT_BATCH_SIZE = ":tensorflow:serving:batching_session:input_batch_size"
PROCESSED_BATCH_SIZE = ":tensorflow:serving:batching_session:processed_batch_size"
PADDING_SIZE = ":tensorflow:serving:batching_session:padding_size"
LOAD_LATENCY = ":tensorflow:cc:saved_model:load_latency"
LOAD_ATTEMPT_COUNT = ":tensorflow:cc:saved_model:load_attempt_count"

DEFAULT_PATH = "/monitoring/prometheus/metrics"

# Latency buckets in microseconds (exponential, as TF Serving's request_latency histogram).
LATENCY_BUCKETS_US = tuple(10 * 1.8 ** i for i in range(33))
BATCH_SIZE_BUCKETS = tuple(2 ** i for i in range(15))

Labels = Tuple[Tuple[str, str], ...]


def _label_text(labels: Labels, extra: str = "") -> str:
    parts = [f'{k}="{_escape(v)}"' for k, v in labels]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) and not float(value).is_integer() else str(int(value))


class Counter:
    def __init__(self, name: str, help_text: str):
        self.name, self.help = name, help_text
        self._values: Dict[Labels, float] = {}
        self._lock = threading.Lock()

    def inc(self, amount: float = 1, **labels) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[key] = self._values.get(key, 0) + amount

    def value(self, **labels) -> float:
        with self._lock:
            return self._values.get(tuple(sorted(labels.items())), 0)

    def render(self):
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} counter"
        with self._lock:
            for labels, value in sorted(self._values.items()):
                yield f"{self.name}{_label_text(labels)} {_number(value)}"


class Histogram:
    def __init__(self, name: str, help_text: str, buckets: Sequence[float]):
        self.name, self.help = name, help_text
        self._bounds = list(buckets)
        self._series: Dict[Labels, list] = {}  # labels -> [bucket counts..., sum, count]
        self._lock = threading.Lock()

    def observe(self, value: float, **labels) -> None:
        key = tuple(sorted(labels.items()))
        index = bisect.bisect_left(self._bounds, value)
        with self._lock:
            series = self._series.setdefault(key, [0] * (len(self._bounds) + 1) + [0.0, 0])
            series[index] += 1
            series[-2] += value
            series[-1] += 1

    def count(self, **labels) -> int:
        with self._lock:
            series = self._series.get(tuple(sorted(labels.items())))
            return series[-1] if series else 0

    def render(self):
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        with self._lock:
            for labels, series in sorted(self._series.items()):
                cumulative = 0
                for bound, count in zip(self._bounds + [float("inf")], series, strict=False):
                    cumulative += count
                    le = "+Inf" if bound == float("inf") else _number(round(bound, 3))
                    le_label = 'le="' + le + '"'
                    yield f"{self.name}_bucket{_label_text(labels, le_label)} {cumulative}"
                yield f"{self.name}_sum{_label_text(labels)} {_number(series[-2])}"
                yield f"{self.name}_count{_label_text(labels)} {series[-1]}"


class ServerMetrics:
    """The metrics one model server exports."""

    def __init__(self):
        self.request_count = Counter(REQUEST_COUNT, "The total number of requests.")
        self.request_latency = Histogram(REQUEST_LATENCY, "Distribution of wall time (in microseconds) for "
                                         "Tensorflow Serving request.", LATENCY_BUCKETS_US)
        self.input_batch_size = Histogram(INPUT_BATCH_SIZE, "Tracks the batch size distribution on the inputs "
                                          "by model_name (if available).", BATCH_SIZE_BUCKETS)
        self.processed_batch_size = Histogram(PROCESSED_BATCH_SIZE, "Tracks the batch size distribution on "
                                              "processing by model_name (if available).", BATCH_SIZE_BUCKETS)
        self.padding_size = Histogram(PADDING_SIZE, "Tracks the padding size distribution on batches by "
                                      "model_name (if available).", BATCH_SIZE_BUCKETS)
        self.load_latency = Counter(LOAD_LATENCY, "Latency in microseconds for SavedModels that were "
                                    "successfully loaded.")
        self.load_attempt_count = Counter(LOAD_ATTEMPT_COUNT, "The number of times a SavedModel was attempted "
                                          "to be loaded.")

    def record_request(self, model_name: str, api: str, entrypoint: str, status: str, micros: float) -> None:
        self.request_count.inc(model_name=model_name, status=status)
        self.request_latency.observe(micros, model_name=model_name, API=api, entrypoint=entrypoint)

    def record_batch(self, model_name: str, size: int, padded: int) -> None:
        self.input_batch_size.observe(size, model_name=model_name)
        self.processed_batch_size.observe(padded, model_name=model_name)
        self.padding_size.observe(padded - size, model_name=model_name)

    def record_load(self, model_path: str, ok: bool, micros: float) -> None:
        self.load_attempt_count.inc(model_path=model_path, status="success" if ok else "fail")
        if ok:
            self.load_latency.inc(micros, model_path=model_path)

    def render(self) -> str:
        lines = []
        for metric in (self.request_count, self.request_latency, self.input_batch_size, self.processed_batch_size,
                       self.padding_size, self.load_latency, self.load_attempt_count):
            lines.extend(metric.render())
        return "\n".join(lines) + "\n"
