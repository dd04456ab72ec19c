"""Infra-validation without Docker: serve the pushed model in a fresh process and answer real requests.

`query_pushed_model` runs `python -m serving.server` on the pushed model base path in a new process that shares
nothing with the training run (`serving` imports only TensorFlow and the TF Serving protos, not tfmodels), waits
until the model is AVAILABLE there, and sends one Predict request (raw text signature) and one Classify request
(serialized tf.Examples) over gRPC. A model counts as pushed-and-good only when both answer.
"""

from typing import Dict, Sequence

from serving.process import ServerProcess, ServerProcessError

TIMEOUT_SECONDS = 300


class InfraValidationError(RuntimeError):
    """The pushed model could not be loaded or did not answer."""


def query_pushed_model(model_base_path: str, model_name: str, text_feature: str,
                       texts: Sequence[str]) -> Dict:
    """Serve `<model_base_path>/<latest version>` in a fresh process; returns its answers to `texts`.

    Returns `{"version", "labels", "probabilities", "classify"}` (classify: per text, its (class, score) pairs).
    """
    import grpc

    from serving.client import GrpcClient, text_examples
    from tfmodels.export.signatures import CLASSIFY_SIGNATURE, TEXT_SIGNATURE

    server = ServerProcess([f"--model_name={model_name}", f"--model_base_path={model_base_path}",
                            "--file_system_poll_wait_seconds=0"], model_name=model_name,
                           start_timeout=TIMEOUT_SECONDS)
    try:
        with server, GrpcClient(server.grpc_target, timeout=60) as client:
            version = max(s["version"] for s in client.status(model_name) if s["state"] == "AVAILABLE")
            outputs = client.predict(model_name, {text_feature: list(texts)}, signature_name=TEXT_SIGNATURE)
            classified = client.classify(model_name, text_examples(list(texts), text_feature),
                                         signature_name=CLASSIFY_SIGNATURE)
    except (ServerProcessError, grpc.RpcError) as e:
        detail = e.details() if isinstance(e, grpc.RpcError) else str(e)
        raise InfraValidationError(f"serving {model_base_path} failed: {detail}\n{server.log_tail()}") from None
    return {
        "version": int(version),
        "labels": [name.decode() for name in outputs["label_name"].tolist()],
        "probabilities": outputs["probabilities"].tolist(),
        "classify": [[[label.decode() if isinstance(label, bytes) else label, float(score)] for label, score in row]
                     for row in classified],
    }
