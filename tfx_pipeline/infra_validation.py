"""Infra-validation without Docker: serve the pushed model in a fresh process and answer real requests.

`query_pushed_model` (a classifier) and `query_pushed_tagger` (a token classifier) run `python -m serving.server` on the pushed model base path in a new process that shares
nothing with the training run (`serving` imports only TensorFlow and the TF Serving protos, not tfmodels), waits
until the model is AVAILABLE there, and send real requests of the task's kind over gRPC: for a classifier one
Predict (raw text signature) and one Classify (serialized tf.Examples), for a tagger one Predict on
`extract_entities`. A model counts as pushed-and-good only when they answer.
"""

from typing import Dict, Sequence

from serving.process import ServerProcess, ServerProcessError

TIMEOUT_SECONDS = 300


class InfraValidationError(RuntimeError):
    """The pushed model could not be loaded or did not answer."""


def _ask_fresh_server(model_base_path: str, model_name: str, ask):
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


def query_pushed_model(model_base_path: str, model_name: str, text_feature: str,
                       texts: Sequence[str]) -> Dict:
    """A classifier: one Predict on the raw-text signature and one Classify (serialized tf.Examples).

    Returns `{"version", "labels", "probabilities", "classify"}` (classify: per text, its (class, score) pairs).
    """
    from serving.client import text_examples
    from tfmodels.export.signatures import CLASSIFY_SIGNATURE, TEXT_SIGNATURE

    def ask(client):
        outputs = client.predict(model_name, {text_feature: list(texts)}, signature_name=TEXT_SIGNATURE)
        classified = client.classify(model_name, text_examples(list(texts), text_feature),
                                     signature_name=CLASSIFY_SIGNATURE)
        return outputs, classified

    version, (outputs, classified) = _ask_fresh_server(model_base_path, model_name, ask)
    return {
        "version": version,
        "labels": [name.decode() for name in outputs["label_name"].tolist()],
        "probabilities": outputs["probabilities"].tolist(),
        "classify": [[[label.decode() if isinstance(label, bytes) else label, float(score)] for label, score in row]
                     for row in classified],
    }


def query_pushed_tagger(model_base_path: str, model_name: str, texts: Sequence[str]) -> Dict:
    """A token classifier: one Predict on `extract_entities`. Returns `{"version", "entities"}` (per text, a
    list of `{type, text, start, end, score}`)."""
    from tfmodels.export import signatures as sig

    def ask(client):
        return client.predict(model_name, {sig.ENTITIES_TEXT_INPUT: list(texts)},
                              signature_name=sig.ENTITIES_SIGNATURE)

    version, outputs = _ask_fresh_server(model_base_path, model_name, ask)
    entities = []
    for row, count in enumerate(outputs[sig.NUM_ENTITIES_OUTPUT].tolist()):
        entities.append([{"type": outputs[sig.ENTITY_TYPE_OUTPUT][row][k].decode(),
                          "text": outputs[sig.ENTITY_TEXT_OUTPUT][row][k].decode(),
                          "start": int(outputs[sig.ENTITY_START_OUTPUT][row][k]),
                          "end": int(outputs[sig.ENTITY_END_OUTPUT][row][k]),
                          "score": float(outputs[sig.ENTITY_SCORE_OUTPUT][row][k])} for k in range(count)])
    return {"version": version, "entities": entities}
