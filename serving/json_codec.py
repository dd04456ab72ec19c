"""JSON <-> tensors and request protos for the REST API, following TF Serving's util/json_tensor.cc.

Predict takes row format (`"instances"`, answered as `"predictions"`) or columnar format (`"inputs"`, answered
as `"outputs"`); binary strings travel as `{"b64": "..."}`. Classify/Regress take `"examples"` (and an optional
`"context"`) of feature dicts and answer `"results"`.
"""

import base64
import json
import re
from typing import Any, Dict, List, Mapping, Tuple

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import classification_pb2, predict_pb2, regression_pb2

from serving.errors import ServingError, invalid_argument
from serving.servable import Signature
from serving.tensors import to_tensor_proto, type_name

_FLOAT_TYPES = {types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE, types_pb2.DT_HALF, types_pb2.DT_BFLOAT16}
_INT_TYPES = {types_pb2.DT_INT8, types_pb2.DT_INT16, types_pb2.DT_INT32, types_pb2.DT_INT64, types_pb2.DT_UINT8,
              types_pb2.DT_UINT16, types_pb2.DT_UINT32, types_pb2.DT_UINT64}


# A \\uD800-\\uDFFF escape: JSON text can spell a lone surrogate, which no UTF-8 string holds.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(value) -> bool:
    """Whether a string (key or value) anywhere in the parsed document is not valid Unicode text."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def parse_body(body: bytes) -> Dict[str, Any]:
    """The request body as a JSON object (strings valid Unicode: a lone surrogate escape is refused, as
    RapidJSON refuses it in TF Serving)."""
    try:
        document = json.loads(body.decode("utf-8")) if body.strip() else None
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise invalid_argument(f"JSON Parse error: {type(e).__name__}: {e}"[:200]) from None
    # Only bodies that spell a surrogate escape are walked: the check costs nothing on ordinary requests.
    if _SURROGATE_ESCAPE.search(body) and _has_lone_surrogate(document):
        raise invalid_argument("JSON Parse error: The surrogate pair in string is invalid.")
    if document is None:
        raise invalid_argument("JSON Parse error: The document is empty.")
    if not isinstance(document, dict):
        raise invalid_argument("JSON Value not an object")
    return document


def signature_name(document: Mapping[str, Any]) -> str:
    name = document.get("signature_name", "")
    if not isinstance(name, str):
        raise invalid_argument("'signature_name' key must be a string value.")
    return name


def _is_b64(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and "b64" in value


# Standard base64, padded to a multiple of 4 with exactly the padding its length needs.
_CANONICAL_B64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def _decode_b64(value) -> bytes:
    if not isinstance(value["b64"], str):
        raise invalid_argument("'b64' value must be a string")
    try:
        if not _CANONICAL_B64.fullmatch(value["b64"]):  # b64decode takes extra padding ("YWJj=")
            raise ValueError("not canonical base64")
        return base64.b64decode(value["b64"], validate=True)
    except ValueError:
        raise invalid_argument(f"Unable to base64 decode: {value['b64'][:64]}") from None


# numpy's (and so our) maximum rank; deeper nesting is a client error, not a crash in the codec.
MAX_TENSOR_RANK = 32


def _flatten(value, shape: List[int], leaves: list, depth: int = 0) -> None:
    """Walk nested lists, checking they are rectangular; collect the leaves in row-major order."""
    if isinstance(value, list):
        if depth >= MAX_TENSOR_RANK:
            raise invalid_argument(f"JSON tensor nested deeper than the maximum rank {MAX_TENSOR_RANK}")
        if depth == len(shape):
            if leaves:  # a list where an earlier element had a scalar
                raise invalid_argument("Tensor values are not rectangular: mixed nesting depths")
            shape.append(len(value))
        elif shape[depth] != len(value):
            raise invalid_argument(f"Expecting tensor size: {shape[depth]} but got: {len(value)} at depth {depth}")
        for item in value:
            _flatten(item, shape, leaves, depth + 1)
    else:
        if depth != len(shape):
            raise invalid_argument("Tensor values are not rectangular: mixed nesting depths")
        leaves.append(value)


def _json_type(value) -> str:
    return {bool: "Bool", int: "Int", float: "Double", str: "String", dict: "Object",
            type(None): "Null"}.get(type(value), type(value).__name__)


def _convert_leaf(value, dtype: int):
    if dtype == types_pb2.DT_STRING:
        if isinstance(value, str):
            return value.encode("utf-8")
        if _is_b64(value):
            return _decode_b64(value)
    elif dtype in _FLOAT_TYPES:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                return float(value)  # ints too: half/bfloat16 arrays take no Python int beyond int64
            except OverflowError:
                raise _out_of_range(value, dtype) from None
        if value in ("NaN", "Infinity", "-Infinity"):
            return float(value.replace("Infinity", "inf"))
    elif dtype in _INT_TYPES:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif dtype == types_pb2.DT_BOOL:
        if isinstance(value, bool):
            return value
    raise invalid_argument(f"JSON Value: {json.dumps(value)[:100]} Type: {_json_type(value)} is not of expected "
                           f"type: {type_name(dtype)}")


def json_to_array(value, dtype: int) -> np.ndarray:
    """A JSON value (scalar or nested lists) as an array of the signature input's dtype."""
    shape, leaves = [], []
    _flatten(value, shape, leaves)
    if not leaves and 0 not in shape:
        raise invalid_argument("Tensor has no values")
    converted = [_convert_leaf(v, dtype) for v in leaves]
    if dtype == types_pb2.DT_STRING:
        array = np.empty(len(converted), dtype=object)
        array[:] = converted
        return array.reshape(shape)
    np_dtype = tf.as_dtype(dtype).as_numpy_dtype
    if dtype in _INT_TYPES:
        _check_int_range(converted, np_dtype, dtype)
    try:
        array = np.array(converted, dtype=np_dtype).reshape(shape)
    except OverflowError:
        raise invalid_argument(f"Value out of range for type {type_name(dtype)}") from None
    if dtype in _FLOAT_TYPES and converted:
        _check_float_range(converted, array, dtype)
    return array


def _out_of_range(value, dtype: int) -> ServingError:
    # TF Serving's wording (util/json_tensor.cc WriteScalar...): the value is not of the expected type.
    return invalid_argument(f"JSON Value: {json.dumps(value)[:100]} Type: Number is not of expected type: "
                            f"{type_name(dtype)} (out of range)")


def _check_int_range(values: list, np_dtype, dtype: int) -> None:
    """Refuse integers the dtype cannot hold (numpy would wrap 300 into uint8 44, 2**40 into int32 0)."""
    if not values:
        return
    info = np.iinfo(np_dtype)
    low, high = min(values), max(values)
    if low < info.min:
        raise _out_of_range(low, dtype)
    if high > info.max:
        raise _out_of_range(high, dtype)


def _check_float_range(values: list, array: np.ndarray, dtype: int) -> None:
    """Refuse finite numbers that overflow to infinity in the dtype (1e39 as float32)."""
    overflowed = np.isinf(array.ravel().astype(np.float64))
    if overflowed.any():
        for value, inf in zip(values, overflowed, strict=True):
            if inf and np.isfinite(float(value)):
                raise _out_of_range(value, dtype)


def _named_input_value(instance: Mapping[str, Any], alias: str, index: int):
    if alias not in instance:
        raise invalid_argument(f"Failed to process element: {index} key: {alias} of 'instances' list. Error: "
                               f"Invalid argument: JSON object: does not have named input: {alias}")
    return instance[alias]


def predict_inputs(document: Mapping[str, Any], signature: Signature) -> Tuple[Dict[str, np.ndarray], bool]:
    """(input arrays, row format?) from a REST predict body, typed by the signature's inputs."""
    if "instances" in document and "inputs" in document:
        raise invalid_argument("Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist")
    dtypes = {alias: signature.signature_def.inputs[alias].dtype for alias in signature.input_aliases}
    if "inputs" in document:
        value = document["inputs"]
        if isinstance(value, dict) and not _is_b64(value):
            unknown = sorted(set(value) - set(dtypes))
            if unknown:
                raise invalid_argument(f"input tensor alias not found in signature: {unknown[0]}. Inputs expected "
                                       f"to be in the set {{{','.join(sorted(dtypes))}}}.")
            return {alias: json_to_array(v, dtypes[alias]) for alias, v in value.items()}, False
        if len(dtypes) != 1:
            raise invalid_argument("'inputs' must be an object naming each input since the signature has "
                                   f"{len(dtypes)} inputs")
        alias = next(iter(dtypes))
        return {alias: json_to_array(value, dtypes[alias])}, False
    if "instances" not in document:
        raise invalid_argument("Missing 'inputs' or 'instances' key")
    instances = document["instances"]
    if not isinstance(instances, list):
        raise invalid_argument("Expecting 'instances' to be an list/array")
    if not instances:
        raise invalid_argument("No values in 'instances' list")
    named = isinstance(instances[0], dict) and not _is_b64(instances[0])
    if named:
        columns = {}
        for index, instance in enumerate(instances):
            if not isinstance(instance, dict) or _is_b64(instance):
                raise invalid_argument(f"Failed to process element: {index} of 'instances' list. Error: "
                                       "Invalid argument: expecting an object like every other element")
            if set(instance) != set(instances[0]):
                raise invalid_argument(f"Failed to process element: {index} of 'instances' list. JSON object: "
                                       "keys differ from the first element's")
        for alias in instances[0]:
            if alias not in dtypes:
                raise invalid_argument(f"input tensor alias not found in signature: {alias}. Inputs expected to "
                                       f"be in the set {{{','.join(sorted(dtypes))}}}.")
            columns[alias] = json_to_array([_named_input_value(i, alias, n) for n, i in enumerate(instances)],
                                           dtypes[alias])
        return columns, True
    if len(dtypes) != 1:
        raise invalid_argument("Expecting 'instances' to be a list of objects since the signature has "
                               f"{len(dtypes)} inputs")
    alias = next(iter(dtypes))
    return {alias: json_to_array(instances, dtypes[alias])}, True


def predict_request(model_spec, document: Mapping[str, Any], signature: Signature) -> Tuple[
        predict_pb2.PredictRequest, bool]:
    """A PredictRequest for the REST body (and whether the answer is in row format)."""
    arrays, row_format = predict_inputs(document, signature)
    request = predict_pb2.PredictRequest()
    request.model_spec.CopyFrom(model_spec)
    for alias, array in arrays.items():
        request.inputs[alias].CopyFrom(to_tensor_proto(array))
    return request, row_format


# ---- responses ------------------------------------------------------------------------------------------------------
def array_to_json(alias: str, array: np.ndarray):
    """An output array as JSON values; strings decode as UTF-8, or as {"b64"} for `*_bytes` aliases."""
    if array.dtype == object or array.dtype.kind in "SU":
        as_b64 = alias.endswith("_bytes")

        def encode(v):
            v = v if isinstance(v, bytes) else str(v).encode()
            if not as_b64:
                try:
                    return v.decode("utf-8")
                except UnicodeDecodeError:
                    pass
            return {"b64": base64.b64encode(v).decode("ascii")}

        flat = [encode(v) for v in array.ravel()]
    elif array.dtype.kind == "f":
        # float32 values print in their shortest round-trip form (2.5, not 2.5000000001), as TF Serving does.
        flat = [float(s) for s in array.ravel().astype(str)]
    else:
        flat = array.ravel().tolist()
    return _nest(flat, array.shape)


def _nest(flat: list, shape) -> Any:
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return flat
    step = len(flat) // shape[0] if shape[0] else 0
    return [_nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def predict_response(outputs: Mapping[str, np.ndarray], row_format: bool) -> Dict[str, Any]:
    """{"predictions": rows} for row format, {"outputs": value(s)} for columnar (one output: no name)."""
    if not row_format:
        if len(outputs) == 1:
            (alias, array), = outputs.items()
            return {"outputs": array_to_json(alias, array)}
        return {"outputs": {alias: array_to_json(alias, array) for alias, array in outputs.items()}}
    batch = None
    for alias, array in outputs.items():
        size = array.shape[0] if array.ndim else None
        if batch is None:
            batch = size
        if size is None or size != batch:
            raise invalid_argument(f"Tensor name: {alias} has inconsistent batch size: {size} expecting: {batch}")
    columns = {alias: array_to_json(alias, array) for alias, array in outputs.items()}
    if len(columns) == 1:
        return {"predictions": next(iter(columns.values()))}
    return {"predictions": [{alias: column[i] for alias, column in columns.items()} for i in range(batch)]}


# ---- classify / regress ---------------------------------------------------------------------------------------------
def _feature(name: str, value) -> tf.train.Feature:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise invalid_argument(f"Feature: {name} has no values")
    if all(isinstance(v, bool) or not isinstance(v, (int, float, str, dict)) for v in values):
        raise invalid_argument(f"Feature: {name} has values of unsupported type: {_json_type(values[0])}")
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))
    if all(isinstance(v, str) or _is_b64(v) for v in values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[_decode_b64(v) if _is_b64(v) else v.encode("utf-8") for v in values]))
    raise invalid_argument(f"Feature: {name} mixes value types or has unsupported values")


def json_to_example(features) -> tf.train.Example:
    if not isinstance(features, dict):
        raise invalid_argument("Example must be JSON object but got JSON " + _json_type(features))
    example = tf.train.Example()
    for name, value in features.items():
        try:
            example.features.feature[name].CopyFrom(_feature(name, value))
        except (ValueError, TypeError) as e:  # e.g. an int beyond int64
            raise invalid_argument(f"Feature: {name}: {e}") from None
    return example


def fill_examples(request, document: Mapping[str, Any]) -> None:
    """Fill `request.input` from {"examples": [...], "context": {...}?}."""
    if "examples" not in document:
        raise invalid_argument("Missing 'examples' key")
    examples = document["examples"]
    if not isinstance(examples, list):
        raise invalid_argument("Expecting 'examples' to be an array")
    if "context" in document:
        target = request.input.example_list_with_context
        target.context.CopyFrom(json_to_example(document["context"]))
    else:
        target = request.input.example_list
    target.examples.extend(json_to_example(e) for e in examples)


def classification_request(model_spec, document) -> classification_pb2.ClassificationRequest:
    request = classification_pb2.ClassificationRequest(model_spec=model_spec)
    request.model_spec.signature_name = signature_name(document)
    fill_examples(request, document)
    return request


def regression_request(model_spec, document) -> regression_pb2.RegressionRequest:
    request = regression_pb2.RegressionRequest(model_spec=model_spec)
    request.model_spec.signature_name = signature_name(document)
    fill_examples(request, document)
    return request


def classification_results(response: classification_pb2.ClassificationResponse) -> Dict[str, Any]:
    return {"results": [[[c.label, _float32(c.score)] for c in row.classes]
                        for row in response.result.classifications]}


def regression_results(response: regression_pb2.RegressionResponse) -> Dict[str, Any]:
    return {"results": [_float32(r.value) for r in response.result.regressions]}


def _float32(value: float) -> float:
    return float(str(np.float32(value)))
