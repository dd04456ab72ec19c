"""The PredictionService methods on one servable: Predict, Classify, Regress, MultiInference, GetModelMetadata.

Each function takes a loaded `Servable` and a request proto and returns the response proto, raising
`ServingError` with TF Serving's code and message (predict_util.cc, classifier.cc, regressor.cc,
multi_inference.cc, get_model_metadata_impl.cc). The gRPC and REST front ends and model warmup all call these.
"""

from typing import List

import grpc
import numpy as np
from google.protobuf import text_format
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    inference_pb2,
    model_pb2,
    predict_pb2,
    regression_pb2,
)

from serving.deadlines import current_deadline, request_deadline  # noqa: F401 (re-exported)
from serving.errors import ServingError, invalid_argument
from serving.servable import (
    DEFAULT_SIGNATURE,
    Servable,
    Signature,
    inference_signature_missing,
    predict_signature_missing,
)
from serving.tensors import to_ndarray, to_tensor_proto

CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
# TF Serving's fixed Classify/Regress tensor names (the exporters' copies: tfmodels.export.signatures).
CLASSIFY_INPUT = "inputs"
CLASSIFY_OUTPUT_CLASSES = "classes"
CLASSIFY_OUTPUT_SCORES = "scores"
SIGNATURE_DEF_FIELD = "signature_def"
# The input key of the exporters' tf.Example Predict signatures (tfmodels.export.signatures.EXAMPLES_INPUT);
# with Classify's `inputs`, a DT_STRING input of one of these names holds serialized tf.Examples.
EXAMPLES_INPUT = "examples"
EXAMPLE_INPUTS = (EXAMPLES_INPUT, CLASSIFY_INPUT)
# What a failed tf.Example parse says: ParseExample's message, or ours when its message is not UTF-8 (servable).
EXAMPLE_PARSE_FAILURES = ("Could not parse example input", "Could not parse the input")


def model_spec(servable: Servable, signature_name: str = None) -> model_pb2.ModelSpec:
    """The resolved ModelSpec every response echoes (MakeModelSpec)."""
    spec = model_pb2.ModelSpec(name=servable.name)
    spec.version.value = servable.version
    if signature_name is not None:
        spec.signature_name = signature_name or DEFAULT_SIGNATURE
    return spec


def _keys(keys) -> str:
    return ",".join(sorted(keys))


# ---- Predict ------------------------------------------------------------------------------------------------------
def check_predict_inputs(signature: Signature, keys) -> None:
    """Input-key checks of PreProcessPrediction: count first, then unknown aliases."""
    sent, expected = set(keys), set(signature.input_aliases)
    if len(sent) != len(expected):
        raise invalid_argument(
            f"input size does not match signature: {len(sent)}!={len(expected)} len({{{_keys(sent)}}}) != "
            f"len({{{_keys(expected)}}}). Sent extra: {{{_keys(sent - expected)}}}. "
            f"Missing but required: {{{_keys(expected - sent)}}}.")
    for alias in sorted(sent - expected):
        raise invalid_argument(f"input tensor alias not found in signature: {alias}. Inputs expected to be in "
                               f"the set {{{_keys(expected)}}}.")


def check_output_filter(signature: Signature, output_filter) -> List[str]:
    """The output aliases to fetch: the filter (validated) or every output."""
    seen = []
    for alias in output_filter:
        if alias not in signature.signature_def.outputs:
            raise invalid_argument(f"output tensor alias not found in signature: {alias} Outputs expected to be "
                                   f"in the set {{{_keys(signature.output_aliases)}}}.")
        if alias in seen:
            raise invalid_argument(f"duplicate output tensor alias: {alias}")
        seen.append(alias)
    return seen or list(signature.output_aliases)


def predict(servable: Servable, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
    signature = servable.signature(request.model_spec.signature_name, predict_signature_missing)
    check_predict_inputs(signature, request.inputs.keys())
    arrays = {alias: to_ndarray(proto, alias) for alias, proto in request.inputs.items()}
    aliases = check_output_filter(signature, request.output_filter)
    try:
        outputs = servable.run(signature, arrays, aliases)
    except ServingError as e:
        raise _with_text_signatures_hint(servable, signature, e) from None
    response = predict_pb2.PredictResponse(model_spec=model_spec(servable, signature.name))
    for alias, array in outputs.items():
        response.outputs[alias].CopyFrom(to_tensor_proto(array))
    return response


def _takes_examples(signature: Signature) -> bool:
    inputs = signature.signature_def.inputs
    return len(inputs) == 1 and all(alias in EXAMPLE_INPUTS and info.dtype == types_pb2.DT_STRING
                                     for alias, info in inputs.items())


def _text_signatures(servable: Servable) -> List[Signature]:
    """Signatures that take strings other than serialized tf.Examples (raw text), by name."""
    return [signature for _, signature in sorted(servable.signatures.items())
            if not set(signature.input_aliases) & set(EXAMPLE_INPUTS)
            and any(info.dtype == types_pb2.DT_STRING for info in signature.signature_def.inputs.values())]


def _with_text_signatures_hint(servable: Servable, signature: Signature, error: ServingError) -> ServingError:
    """A failed tf.Example parse in a signature that takes tf.Examples is, most often, raw text sent to it:
    say so and name the model's signatures that take text, instead of the graph's parse error alone."""
    if (error.code != grpc.StatusCode.INVALID_ARGUMENT or not _takes_examples(signature)
            or not any(failure in error.message for failure in EXAMPLE_PARSE_FAILURES)):
        return error
    (alias,) = signature.input_aliases
    # TF's line that says what failed, without the graph's node names around it.
    cause = next(line for line in error.message.splitlines()
                 if any(failure in line for failure in EXAMPLE_PARSE_FAILURES))
    cause = cause.split("}} ", 1)[-1].strip()[:200]
    texts = _text_signatures(servable)
    if texts:
        listed = "; ".join(f'"{s.name}" (inputs: {", ".join(s.input_aliases)})' for s in texts)
        advice = (f"The signatures of this model that take text: {listed}. Send raw strings to one of them, "
                  f'e.g. REST {{"signature_name": "{texts[0].name}", "instances": [...]}}.')
    else:
        advice = "This model has no signature that takes text: send serialized tf.Examples (REST: {\"b64\": ...})."
    return invalid_argument(
        f'Signature "{signature.name}" of model "{servable.name}" takes serialized tf.Example protos in '
        f'"{alias}", and a value sent is not one ({cause}). {advice}')


# ---- Classify / Regress -------------------------------------------------------------------------------------------
def serialize_examples(request_input) -> np.ndarray:
    """The DT_STRING [num_examples] tensor TF Serving feeds: each example, with the context merged in."""
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        serialized = [e.SerializeToString() for e in request_input.example_list.examples]
    elif kind == "example_list_with_context":
        # Serialized protos concatenate as a merge: example features override context features of one name.
        context = request_input.example_list_with_context.context.SerializeToString()
        serialized = [context + e.SerializeToString() for e in request_input.example_list_with_context.examples]
    else:
        serialized = []
    if not serialized:
        raise invalid_argument("Input is empty.")
    return np.array(serialized, dtype=object)


def _signature_text(signature: Signature) -> str:
    return text_format.MessageToString(signature.signature_def)


def _classification_signature(servable: Servable, name: str) -> Signature:
    signature = servable.signature(name, inference_signature_missing)
    sig = signature.signature_def
    if len(sig.inputs) != 1:
        raise invalid_argument("Expected one input Tensor.")
    if len(sig.outputs) not in (1, 2):
        raise invalid_argument(f"Expected one or two output Tensors, found {len(sig.outputs)}")
    if CLASSIFY_INPUT not in sig.inputs:
        raise invalid_argument(f"No classification inputs found in SignatureDef: {_signature_text(signature)}")
    if CLASSIFY_OUTPUT_CLASSES not in sig.outputs and CLASSIFY_OUTPUT_SCORES not in sig.outputs:
        raise invalid_argument('Expected classification signature outputs to contain at least one of "classes" '
                               f'or "scores". Signature was: {_signature_text(signature)}')
    return signature


def _regression_signature(servable: Servable, name: str) -> Signature:
    signature = servable.signature(name, inference_signature_missing)
    sig = signature.signature_def
    if len(sig.inputs) != 1:
        raise invalid_argument("Expected one input Tensor.")
    if len(sig.outputs) != 1:
        raise invalid_argument("Expected one output Tensor.")
    if CLASSIFY_INPUT not in sig.inputs:
        raise invalid_argument(f"No regression inputs found in SignatureDef: {_signature_text(signature)}")
    if "outputs" not in sig.outputs:
        raise invalid_argument(f"No regression outputs found in SignatureDef: {_signature_text(signature)}")
    return signature


def _check_class_tensor(name: str, array: np.ndarray, string: bool, num_examples: int) -> None:
    if array.ndim != 2:
        raise invalid_argument(f"Expected Tensor shape: [batch_size num_classes] but got "
                               f"[{','.join(map(str, array.shape))}]")
    if string and array.dtype != object:
        raise invalid_argument(f"Expected classes Tensor of DT_STRING. Got: {array.dtype}")
    if not string and array.dtype != np.float32:
        raise invalid_argument(f"Expected scores Tensor of DT_FLOAT. Got: {array.dtype}")
    if array.shape[0] != num_examples:
        raise invalid_argument(f"Expected {name} output batch size of {num_examples}. Got: {array.shape[0]}")


def _classification_result(outputs, num_examples: int) -> classification_pb2.ClassificationResult:
    classes, scores = outputs.get(CLASSIFY_OUTPUT_CLASSES), outputs.get(CLASSIFY_OUTPUT_SCORES)
    if classes is not None:
        _check_class_tensor("classes", classes, True, num_examples)
    if scores is not None:
        _check_class_tensor("scores", scores, False, num_examples)
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise invalid_argument(f"Tensors class and score should match in dim_size(1). Got {classes.shape[1]} vs. "
                               f"{scores.shape[1]}")
    num_classes = (classes if classes is not None else scores).shape[1]
    result = classification_pb2.ClassificationResult()
    for i in range(num_examples):
        row = result.classifications.add()
        for c in range(num_classes):
            cls = row.classes.add()
            if classes is not None:
                label = classes[i, c]
                # proto `string` labels must be UTF-8; undecodable bytes are replaced rather than failing the call
                cls.label = label.decode("utf-8", "replace") if isinstance(label, bytes) else str(label)
            if scores is not None:
                cls.score = float(scores[i, c])
    return result


def _regression_result(outputs, num_examples: int) -> regression_pb2.RegressionResult:
    values = outputs["outputs"]
    if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)):
        raise invalid_argument("Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got "
                               f"[{','.join(map(str, values.shape))}]")
    if values.dtype != np.float32:
        raise invalid_argument(f"Expected output Tensor of DT_FLOAT.  Got: {values.dtype}")
    if values.shape[0] != num_examples:
        raise invalid_argument(f"Input batch size did not match output batch size: {num_examples} vs. "
                               f"{values.shape[0]}")
    result = regression_pb2.RegressionResult()
    for value in values.reshape(-1).tolist():
        result.regressions.add(value=value)
    return result


def _run_on_examples(servable: Servable, signature: Signature, examples: np.ndarray):
    return servable.run(signature, {CLASSIFY_INPUT: examples})


def classify(servable: Servable, request: classification_pb2.ClassificationRequest):
    signature = _classification_signature(servable, request.model_spec.signature_name)
    examples = serialize_examples(request.input)
    result = _classification_result(_run_on_examples(servable, signature, examples), len(examples))
    return classification_pb2.ClassificationResponse(model_spec=model_spec(servable, signature.name), result=result)


def regress(servable: Servable, request: regression_pb2.RegressionRequest):
    signature = _regression_signature(servable, request.model_spec.signature_name)
    examples = serialize_examples(request.input)
    result = _regression_result(_run_on_examples(servable, signature, examples), len(examples))
    return regression_pb2.RegressionResponse(model_spec=model_spec(servable, signature.name), result=result)


# ---- MultiInference -----------------------------------------------------------------------------------------------
def multi_inference(servable: Servable, request: inference_pb2.MultiInferenceRequest):
    """Several classify/regress tasks on one shared Input; all tasks must name the same model."""
    if not request.tasks:
        raise invalid_argument("MultiInferenceRequest must contain at least one task.")
    model_name = request.tasks[0].model_spec.name
    seen, plans = set(), []
    for task in request.tasks:
        if task.model_spec.name != model_name:
            raise invalid_argument("All ModelSpecs in a MultiInferenceRequest must access the same model name.")
        key = task.model_spec.signature_name or DEFAULT_SIGNATURE
        if key in seen:
            raise invalid_argument(f"Duplicate evaluation of signature: {key}")
        seen.add(key)
        if key not in servable.signatures:
            raise invalid_argument(f"Requested signature not found in model graph: {key}")
        if task.method_name == CLASSIFY_METHOD:
            plans.append((task, _classification_signature(servable, key)))
        elif task.method_name == REGRESS_METHOD:
            plans.append((task, _regression_signature(servable, key)))
        else:
            raise invalid_argument(f"Unsupported signature method_name: {task.method_name}")
    examples = serialize_examples(request.input)
    response = inference_pb2.MultiInferenceResponse()
    for task, signature in plans:
        outputs = _run_on_examples(servable, signature, examples)
        result = response.results.add(model_spec=model_spec(servable, signature.name))
        if task.method_name == CLASSIFY_METHOD:
            result.classification_result.CopyFrom(_classification_result(outputs, len(examples)))
        else:
            result.regression_result.CopyFrom(_regression_result(outputs, len(examples)))
    return response


# ---- GetModelMetadata ---------------------------------------------------------------------------------------------
def check_metadata_request(request: get_model_metadata_pb2.GetModelMetadataRequest) -> None:
    if not request.metadata_field:
        raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
    for field in request.metadata_field:
        if field != SIGNATURE_DEF_FIELD:
            raise invalid_argument(f"Metadata field {field} is not supported")


def get_model_metadata(servable: Servable, request: get_model_metadata_pb2.GetModelMetadataRequest):
    check_metadata_request(request)
    response = get_model_metadata_pb2.GetModelMetadataResponse(model_spec=model_spec(servable))
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for key, signature_def in servable.signature_defs.items():
        signature_map.signature_def[key].CopyFrom(signature_def)
    response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_map)
    return response

