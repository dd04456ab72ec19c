"""Infra-validation without Docker: serve the pushed model in a fresh process and answer real requests.

Each `query_pushed_*` runs `python -m serving.server` on the pushed model base path in a new process that shares
nothing with the training run (`serving` imports only TensorFlow and the TF Serving protos, not tfmodels), waits
until the model is AVAILABLE there, and sends real requests of the task's kind over gRPC: for a classifier one
Predict (raw text signature) and one Classify (serialized tf.Examples); for a tagger one Predict on
`extract_entities`; for a reader one on `answer_question`; for a translator one on `serving_default`. A model
counts as pushed-and-good only when they answer. `query_pushed` picks the task's request; `describe` prints it.
"""

from typing import Dict, List, Sequence

from serving.process import ServerProcess, ServerProcessError
from tfx_pipeline.hparams import SPAN_QA, TOKEN_CLASSIFICATION, TRANSLATE

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


def query_pushed_reader(model_base_path: str, model_name: str, questions: Sequence[str],
                        contexts: Sequence[str]) -> Dict:
    """A span-QA reader: one Predict on `answer_question`. Returns `{"version", "answers"}` (per question,
    `{text, start, end, score}`: character offsets into its context)."""
    from tfmodels.export import signatures as sig

    def ask(client):
        return client.predict(model_name, {sig.QUESTION_INPUT: list(questions), sig.CONTEXT_INPUT: list(contexts)},
                              signature_name=sig.ANSWER_SIGNATURE)

    version, outputs = _ask_fresh_server(model_base_path, model_name, ask)
    answers = [{"text": text.decode(), "start": int(start), "end": int(end), "score": float(score)}
               for text, start, end, score in zip(*(outputs[key].tolist() for key in (
                   sig.ANSWER_TEXT_OUTPUT, sig.ANSWER_START_OUTPUT, sig.ANSWER_END_OUTPUT, sig.ANSWER_SCORE_OUTPUT)))]
    return {"version": version, "answers": answers}


def query_pushed_translator(model_base_path: str, model_name: str, texts: Sequence[str]) -> Dict:
    """A translator: one Predict on its text-in/text-out signature. Returns `{"version", "translations"}`."""
    from tfmodels.export import signatures as sig

    def ask(client):
        return client.predict(model_name, {sig.TRANSLATE_INPUT: list(texts)}, signature_name=sig.TRANSLATE_SIGNATURE)

    version, outputs = _ask_fresh_server(model_base_path, model_name, ask)
    return {"version": version, "translations": [t.decode() for t in outputs[sig.TRANSLATE_OUTPUT].tolist()]}


def query_pushed(config, samples: Sequence) -> Dict:
    """The task's request on the pushed model of `config` (a `PipelineConfig`). `samples`: texts; for span QA,
    (question, context) pairs."""
    base, name = config.model_base_path(), config.model_name
    if config.task == TOKEN_CLASSIFICATION:
        return query_pushed_tagger(base, name, samples)
    if config.task == SPAN_QA:
        return query_pushed_reader(base, name, [q for q, _ in samples], [c for _, c in samples])
    if config.task == TRANSLATE:
        return query_pushed_translator(base, name, samples)
    return query_pushed_model(base, name, config.text_features[0], samples)


def describe(config, samples: Sequence, answers: Dict) -> List[str]:
    """What the fresh server answered, as printable lines."""
    from tfmodels.export import signatures as sig

    signature = {TOKEN_CLASSIFICATION: sig.ENTITIES_SIGNATURE, SPAN_QA: sig.ANSWER_SIGNATURE,
                 TRANSLATE: sig.TRANSLATE_SIGNATURE}.get(config.task, f"{sig.TEXT_SIGNATURE} and Classify")
    kind = "questions" if config.task == SPAN_QA else "texts"
    lines = [f"Infra-validation: version {answers['version']} served by a fresh ModelServer process; gRPC Predict "
             f"on {signature} ({len(samples)} {kind}) answered:"]
    if config.task == TOKEN_CLASSIFICATION:
        for text, entities in zip(samples, answers["entities"]):
            found = ", ".join(f"{e['text']!r}/{e['type']}" for e in entities) or "(no entity)"
            lines.append(f"  {text[:60]!r}: {found}")
    elif config.task == SPAN_QA:
        for (question, _), answer in zip(samples, answers["answers"]):
            lines.append(f"  {question[:70]!r} -> {answer['text']!r} (p={answer['score']:.2f})")
    elif config.task == TRANSLATE:
        for text, translation in zip(samples, answers["translations"]):
            lines.append(f"  {text[:70]!r}\n    -> {translation[:90]!r}")
    else:
        for text, label, probabilities in zip(samples, answers["labels"], answers["probabilities"]):
            lines.append(f"  {label:>8}  p={max(probabilities):.3f}  {text[:90]}")
    return lines
