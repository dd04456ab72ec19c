"""Infra-validation without Docker: serve the pushed model in a fresh process and answer real requests.

`ask_fresh_server` runs `python -m serving.server` on the pushed model base path in a new process that shares
nothing with the training run (`serving` imports only TensorFlow and the TF Serving protos, not tfmodels), waits
until the model is AVAILABLE there, and asks it over gRPC; each task's `query` (`tfx_pipeline.tasks`) sends its
real requests that way (a classifier: Predict on raw text and Classify on tf.Examples; a tagger, a reader, a
translator: Predict on their text signatures). A model counts as pushed-and-good only when they answer.
"""

from serving.process import ServerProcess, ServerProcessError

TIMEOUT_SECONDS = 300


class InfraValidationError(RuntimeError):
    """The pushed model could not be loaded or did not answer."""


def ask_fresh_server(model_base_path: str, model_name: str, ask):
    """Serve `<model_base_path>/<latest version>` in a fresh process; returns `(version, ask(client))`."""
    import grpc

    from serving.client import GrpcClient

    server = ServerProcess([f"--model_name={model_name}", f"--model_base_path={model_base_path}",
                            "--file_system_poll_wait_seconds=0"], model_name=model_name,
                           start_timeout=TIMEOUT_SECONDS)
    try:
        with server, GrpcClient(server.grpc_target, timeout=60) as client:
            version = max(s["version"] for s in client.status(model_name) if s["state"] == "AVAILABLE")
            return int(version), ask(client)
    except (ServerProcessError, grpc.RpcError) as e:
        detail = e.details() if isinstance(e, grpc.RpcError) else str(e)
        raise InfraValidationError(f"serving {model_base_path} failed: {detail}\n{server.log_tail()}") from None
