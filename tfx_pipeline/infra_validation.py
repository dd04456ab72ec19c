"""Infra-validation without Docker: serve the pushed model in a fresh process and answer real requests.

`query_pushed_model` starts a new Python process that shares nothing with the training run (it imports only
TensorFlow and `serving`, not tfmodels), runs `serving.server.ModelServer` on the pushed model base path, and sends one
Predict request (raw text signature) and one Classify request (serialized tf.Examples) over gRPC. A model
counts as pushed-and-good only when both answer. `python -m tfx_pipeline.infra_validation` is that process.
"""

import argparse
import json
import os
import subprocess
import sys
from typing import Dict, List, Sequence

TIMEOUT_SECONDS = 300


class InfraValidationError(RuntimeError):
    """The pushed model could not be loaded or did not answer."""


def query_pushed_model(model_base_path: str, model_name: str, text_feature: str,
                       texts: Sequence[str]) -> Dict:
    """Serve `<model_base_path>/<latest version>` in a fresh process; returns its answers to `texts`.

    Returns `{"version", "labels", "probabilities", "classify"}` (classify: per text, its (class, score) pairs).
    """
    from tfmodels.export.signatures import CLASSIFY_SIGNATURE, TEXT_SIGNATURE

    command = [sys.executable, "-m", "tfx_pipeline.infra_validation", "--model-base-path", model_base_path,
               "--model-name", model_name, "--text-feature", text_feature, "--texts", json.dumps(list(texts)),
               "--text-signature", TEXT_SIGNATURE, "--classify-signature", CLASSIFY_SIGNATURE]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, env=env)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise InfraValidationError(f"serving {model_base_path} failed (exit {result.returncode}):\n"
                                   f"{result.stderr[-3000:]}")
    return json.loads(lines[-1])


def _serve_and_query(model_base_path: str, model_name: str, text_feature: str, texts: List[str],
                     text_signature: str, classify_signature: str) -> Dict:
    from serving.client import GrpcClient, text_examples
    from serving.server import ModelServer

    with ModelServer(model_base_path=model_base_path, model_name=model_name, port=0,
                     rest_api_port=None) as server:
        with GrpcClient(f"127.0.0.1:{server.grpc_port}", timeout=60) as client:
            version = max(s["version"] for s in client.status(model_name) if s["state"] == "AVAILABLE")
            outputs = client.predict(model_name, {text_feature: texts}, signature_name=text_signature)
            classified = client.classify(model_name, text_examples(texts, text_feature),
                                         signature_name=classify_signature)
    return {
        "version": int(version),
        "labels": [name.decode() for name in outputs["label_name"].tolist()],
        "probabilities": outputs["probabilities"].tolist(),
        "classify": [[[label, float(score)] for label, score in row] for row in classified],
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-base-path", required=True)
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--text-feature", required=True)
    parser.add_argument("--texts", required=True, help="a JSON list of strings")
    parser.add_argument("--text-signature", required=True)
    parser.add_argument("--classify-signature", required=True)
    args = parser.parse_args(argv)
    answers = _serve_and_query(args.model_base_path, args.model_name, args.text_feature, json.loads(args.texts),
                               args.text_signature, args.classify_signature)
    print(json.dumps(answers))


if __name__ == "__main__":
    main()
