"""The flags of `python -m serving.server` (tensorflow_model_server's names), parsed without importing TensorFlow
so that `--help` and flag errors answer at once and print no TF/CUDA start-up noise."""

import argparse

DEFAULT_SHUTDOWN_GRACE_SECONDS = 10.0
# One string element (a text) may not exceed this: the text exporters' own limit (100,000 characters) in UTF-8
# is at most 400,000 bytes; 1 MiB leaves room for other string inputs.
DEFAULT_MAX_STRING_BYTES = 1 << 20
DEFAULT_MAX_REQUEST_BYTES = 32 << 20  # decoded size one request may reach (REST body, tensor payloads, gRPC message)


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tfmodels-serve", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                description="A TF Serving-compatible model server (gRPC and REST).")
    add = p.add_argument
    add("--port", type=int, default=8500, help="gRPC port (0: a free port; see --port_file)")
    add("--rest_api_port", type=int, default=0, help="REST port (0: no REST API)")
    add("--host", default="127.0.0.1", help="address to bind (loopback only by default)")
    add("--model_name", default="default", help="name of the model given by --model_base_path")
    add("--model_base_path", default="", help="directory of numeric version subdirectories")
    add("--model_config_file", default="", help="text-format ModelServerConfig (instead of --model_base_path)")
    add("--model_config_file_poll_wait_seconds", type=float, default=0,
        help="seconds between re-reads of --model_config_file (0: never)")
    add("--file_system_poll_wait_seconds", type=float, default=1,
        help="seconds between polls of the base paths for new versions (0: once)")
    add("--enable_batching", type=_bool, nargs="?", const=True, default=False, help="batch Predict requests")
    add("--batching_parameters_file", default="", help="text-format BatchingParameters")
    add("--monitoring_config_file", default="", help="text-format MonitoringConfig (Prometheus path)")
    add("--enable_model_warmup", type=_bool, nargs="?", const=True, default=True,
        help="replay assets.extra/tf_serving_warmup_requests before a version becomes AVAILABLE")
    add("--xla_cpu_compilation_enabled", type=_bool, nargs="?", const=True, default=True,
        help="run models with XLA-compiled functions on CPU (the translator's and causal LM's decoding loops, "
             "exports made with jit_compile=True). On here; TF Serving's default is off, and false reproduces "
             "it: such a model then fails to load, naming this flag")
    add("--grpc_max_threads", type=int, default=64, help="threads answering gRPC requests")
    add("--grpc_socket_path", default="", help="also serve gRPC on this UNIX socket")
    add("--rest_api_num_threads", type=int, default=16, help="threads answering REST requests")
    add("--rest_api_timeout_in_ms", type=int, default=30000,
        help="REST: ms a connection may stay idle or stall mid-request before it is closed")
    add("--max_request_bytes", type=int, default=DEFAULT_MAX_REQUEST_BYTES,
        help="largest request one call may decode: REST body bytes, and the in-memory size of its tensors "
             "(REST and gRPC); larger ones get INVALID_ARGUMENT / HTTP 413 before anything is allocated")
    add("--enable_grpc_healthcheck_service", type=_bool, nargs="?", const=True, default=False,
        help="serve grpc.health.v1.Health (SERVING once the models are loaded)")
    add("--max_string_bytes", type=int, default=DEFAULT_MAX_STRING_BYTES,
        help="longest string element (one text) a request may hold, in bytes; longer gets INVALID_ARGUMENT "
             "before the model runs (0: no limit). Exported text models also limit characters and windows")
    add("--shutdown_grace_seconds", type=float, default=DEFAULT_SHUTDOWN_GRACE_SECONDS,
        help="on SIGTERM/SIGINT: stop accepting, let requests in flight finish for this long, then cancel the "
             "model runs still going (their clients get UNAVAILABLE / 503) and exit; SIGHUP reloads instead")
    add("--max_num_load_retries", type=int, default=5,
        help="times a version that failed to load is tried again with unchanged files (changed files always "
             "get a new try)")
    add("--load_retry_interval_micros", type=int, default=60_000_000,
        help="microseconds between those retries")
    add("--port_file", default="",
        help="after the server listens, write {\"grpc_port\", \"rest_port\", \"pid\"} as JSON to this file")
    return p


def parse_args(argv=None) -> argparse.Namespace:
    """tensorflow_model_server's flags (`--flag=value`; booleans also as bare `--flag`)."""
    p = build_parser()
    args = p.parse_args(argv)
    if bool(args.model_base_path) == bool(args.model_config_file):
        p.error("give exactly one of --model_base_path and --model_config_file")
    if args.max_request_bytes <= 0:
        p.error("--max_request_bytes must be positive")
    return args
