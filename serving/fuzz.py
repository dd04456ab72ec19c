"""A seeded fuzzer for the REST JSON -> tensor codec and request TensorProto decoding.

Each case is a random (often mutated) REST predict/classify body (lone surrogates and non-canonical base64
among the values), a TensorProto, or serialized tf.Examples (valid, mutated, garbage) fed to a real
ParseExample signature; the only acceptable outcomes
are an answer or a ServingError with INVALID_ARGUMENT. Anything else (another exception, another code) is a
crash and is printed with the seed and case index that reproduce it.

    python -m serving.fuzz --iterations 200000 --seed 1      # the longer run; CI runs a few thousand cases

No new dependency (atheris needs a clang-built CPython extension that is not in the working set).
"""

import argparse
import base64
import json
import random
import sys
from typing import Callable, List, Tuple

import grpc
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2

from serving import json_codec
from serving.errors import ServingError
from serving.servable import Signature
from serving.tensors import to_ndarray

_DTYPES = [types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE, types_pb2.DT_HALF, types_pb2.DT_INT8, types_pb2.DT_INT16,
           types_pb2.DT_INT32, types_pb2.DT_INT64, types_pb2.DT_UINT8, types_pb2.DT_UINT16, types_pb2.DT_UINT32,
           types_pb2.DT_UINT64, types_pb2.DT_BOOL, types_pb2.DT_STRING, types_pb2.DT_BFLOAT16,
           types_pb2.DT_COMPLEX64]
_EDGE_NUMBERS = [0, -1, 1, 2 ** 7, 2 ** 8, 2 ** 15, 2 ** 16, 2 ** 31, -2 ** 31 - 1, 2 ** 32, 2 ** 63, -2 ** 63 - 1,
                 2 ** 64, 10 ** 30, 1e39, -1e39, 1e308, 5e-324, 0.5, float("nan")]


def _signature(dtypes) -> Signature:
    signature_def = meta_graph_pb2.SignatureDef()
    for alias, dtype in dtypes.items():
        signature_def.inputs[alias].dtype = dtype
    return Signature("serving_default", signature_def, lambda **_: {})


# Issue 36's input kinds: lone surrogates (JSON can spell them, UTF-8 cannot hold them) and base64 that is not
# canonical (over-padded, misplaced padding).
_SURROGATE_STRINGS = ["\ud800", "a\udfffb", "\udbff\udbff", "\ud83d\ude00"]
_ODD_BASE64 = ["YWJj=", "YWJj==", "YQ=", "Y===", "YW=Jj", "=", "YWJj\n"]


def _leaf(rng: random.Random):
    kind = rng.randrange(10)
    if kind == 8:
        return rng.choice(_SURROGATE_STRINGS)
    if kind == 9:
        return {"b64": rng.choice(_ODD_BASE64)}
    if kind == 0:
        return rng.choice(_EDGE_NUMBERS)
    if kind == 1:
        return rng.uniform(-1e6, 1e6)
    if kind == 2:
        return rng.randrange(-300, 300)
    if kind == 3:
        return "".join(rng.choice("ab\u00e9\u00b2\x00 ") for _ in range(rng.randrange(5)))
    if kind == 4:
        return {"b64": base64.b64encode(rng.randbytes(rng.randrange(6))).decode() if rng.random() < 0.8 else "!!"}
    if kind == 5:
        return rng.choice([True, False, None, "NaN", "Infinity", "-Infinity"])
    if kind == 6:
        return {}
    return rng.choice([[], {"b64": 3}, {"x": 1}])


def _value(rng: random.Random, depth: int = 0):
    if depth > 40 or rng.random() < 0.35:
        return _leaf(rng)
    width = rng.choice([0, 1, 1, 2, 3])
    if rng.random() < 0.15:  # very deep, narrow nesting
        value = _leaf(rng)
        for _ in range(rng.randrange(20, 60)):
            value = [value]
        return value
    item = _value(rng, depth + 1)
    return [item if rng.random() < 0.8 else _value(rng, depth + 1) for _ in range(width)]


def json_case(rng: random.Random) -> Tuple[bytes, Signature]:
    """A REST predict body (bytes, sometimes not even JSON) and the signature it is typed against."""
    dtypes = {alias: rng.choice(_DTYPES) for alias in rng.sample(["x", "y", "z"], rng.randrange(1, 3))}
    aliases = list(dtypes) + ["w"]
    shape = rng.randrange(6)
    if shape == 0:
        document = {"instances": _value(rng)}
    elif shape == 1:
        document = {"inputs": _value(rng)}
    elif shape == 2:
        document = {"inputs": {rng.choice(aliases): _value(rng) for _ in range(rng.randrange(1, 3))}}
    elif shape == 3:
        document = {"instances": [{rng.choice(aliases): _value(rng) for _ in range(rng.randrange(1, 3))}
                                  for _ in range(rng.randrange(1, 4))]}
    elif shape == 4:
        document = {"examples": [{"f": _value(rng, 38)} for _ in range(rng.randrange(3))], "context": _value(rng)}
    else:
        document = _value(rng)
    if rng.random() < 0.2:
        document = {"signature_name": _leaf(rng), **(document if isinstance(document, dict) else {})}
    if rng.random() < 0.05 and isinstance(document, dict):  # a key no UTF-8 text holds
        document = {rng.choice(_SURROGATE_STRINGS): 1, **document}
    body = json.dumps(document, allow_nan=True).encode()
    if rng.random() < 0.1:  # byte-level mutation: truncation, bad UTF-8
        cut = rng.randrange(len(body) + 1)
        body = body[:cut] + rng.choice([b"", b"\xff", b"\xc3", b"]]]", b"{"]) + body[cut:]
    return body, _signature(dtypes)


def run_json_case(body: bytes, signature: Signature) -> None:
    document = json_codec.parse_body(body)
    if "examples" in document or "context" in document:
        json_codec.fill_examples(_classification_request(), document)
        return
    json_codec.predict_inputs(document, signature)


def _classification_request():
    from tensorflow_serving.apis import classification_pb2
    return classification_pb2.ClassificationRequest()


def tensor_case(rng: random.Random) -> tensor_pb2.TensorProto:
    """A random, often malformed, request TensorProto."""
    proto = tensor_pb2.TensorProto(dtype=rng.choice(_DTYPES + [0, 99, types_pb2.DT_RESOURCE]))
    for _ in range(rng.randrange(5)):
        proto.tensor_shape.dim.add(size=rng.choice([0, 1, 2, 3, -1, 2 ** 20, 2 ** 40, 2 ** 62]))
    if rng.random() < 0.05:
        proto.tensor_shape.unknown_rank = True
    kind = rng.randrange(6)
    if kind == 0:
        proto.tensor_content = rng.randbytes(rng.choice([0, 1, 3, 4, 8, 16, 17]))
    elif kind == 1:
        proto.float_val.extend(rng.uniform(-9, 9) for _ in range(rng.randrange(5)))
    elif kind == 2:
        proto.int_val.extend(rng.randrange(-2 ** 31, 2 ** 31) for _ in range(rng.randrange(5)))
    elif kind == 3:
        proto.string_val.extend(rng.randbytes(rng.randrange(4)) for _ in range(rng.randrange(5)))
    elif kind == 4:
        proto.int64_val.extend(rng.randrange(-2 ** 63, 2 ** 63) for _ in range(rng.randrange(5)))
    else:
        proto.half_val.extend(rng.randrange(0, 2 ** 16) for _ in range(rng.randrange(5)))
    return proto


_example_signature = None


def example_signature() -> Signature:
    """A real tf.Example-parsing signature (as classify/regress and the exporters' `serving_default` have),
    built once: ParseExample on garbage quotes the bytes in a non-UTF-8 error message."""
    global _example_signature
    if _example_signature is None:
        import tensorflow as tf

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def parse(inputs):
            features = tf.io.parse_example(inputs, {"text": tf.io.FixedLenFeature([], tf.string, default_value=""),
                                                    "x": tf.io.VarLenFeature(tf.float32)})
            return {"length": tf.strings.length(features["text"])}

        signature_def = meta_graph_pb2.SignatureDef()
        signature_def.inputs["inputs"].dtype = types_pb2.DT_STRING
        signature_def.inputs["inputs"].tensor_shape.dim.add(size=-1)
        _example_signature = Signature("classify", signature_def, lambda inputs: parse(inputs))
    return _example_signature


def example_case(rng: random.Random) -> list:
    """Serialized tf.Examples: valid, mutated bytes, or garbage (as `{"b64": ...}` REST values reach them)."""
    import tensorflow as tf

    example = tf.train.Example()
    example.features.feature["text"].bytes_list.value.append(rng.randbytes(rng.randrange(8)))
    example.features.feature["x"].float_list.value.extend([rng.uniform(-1, 1)] * rng.randrange(3))
    data = bytearray(example.SerializeToString())
    kind = rng.randrange(4)
    if kind == 1 and data:
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 2:
        data = bytearray(rng.randbytes(rng.randrange(1, 24)))
    elif kind == 3:
        data = bytearray(b"\xff\x00") + data
    return [bytes(data)]


def run_example_case(values: list) -> None:
    import numpy as np

    example_signature()({"inputs": np.array(values, dtype=object)})


def _outcome(call: Callable[[], object]):
    """None when `call` answered or refused cleanly; else the unexpected exception."""
    try:
        call()
    except ServingError as e:
        if e.code != grpc.StatusCode.INVALID_ARGUMENT:
            return e
    except Exception as e:  # noqa: BLE001 -- exactly what the fuzzer looks for
        return e
    return None


def fuzz(iterations: int, seed: int = 0) -> List[str]:
    """Run `iterations` JSON cases and as many TensorProto cases; returns the crashes found (empty: none)."""
    crashes = []
    for index in range(iterations):
        rng = random.Random(f"{seed}:{index}")
        body, signature = json_case(rng)
        error = _outcome(lambda body=body, signature=signature: run_json_case(body, signature))
        if error is not None:
            crashes.append(f"json seed={seed} case={index} {body[:200]!r}: {type(error).__name__}: {error}")
        proto = tensor_case(rng)
        error = _outcome(lambda proto=proto: to_ndarray(proto, "x"))
        if error is not None:
            crashes.append(f"tensor seed={seed} case={index} {proto}: {type(error).__name__}: {error}")
        if index % 10 == 0:  # a TF run per case: one in ten
            values = example_case(rng)
            error = _outcome(lambda values=values: run_example_case(values))
            if error is not None:
                crashes.append(f"example seed={seed} case={index} {values!r}: {type(error).__name__}: {error}")
    return crashes


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=100_000, help="cases of each kind")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    crashes = fuzz(args.iterations, args.seed)
    for crash in crashes[:50]:
        print(crash)
    print(f"{len(crashes)} crashes in {args.iterations} JSON and {args.iterations} TensorProto cases")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
