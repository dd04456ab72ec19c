"""One loaded SavedModel version: its SignatureDefs, callable signatures and input validation."""

import os
import time
from typing import Callable, Dict, Mapping, Optional, Sequence

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2

from serving import deadlines
from serving.errors import (
    ServingError,
    deadline_exceeded,
    failed_precondition,
    internal,
    invalid_argument,
    not_found,
    unavailable,
)
from serving.tensors import dtype_enum, type_name

SERVE_TAG = "serve"
DEFAULT_SIGNATURE = "serving_default"


def compiles_with_xla(meta_graph: meta_graph_pb2.MetaGraphDef) -> bool:
    """Whether any function of the graph must be compiled by XLA (`tf.function(jit_compile=True)`)."""
    return any(function.attr["_XlaMustCompile"].b for function in meta_graph.graph_def.library.function)


def read_serve_meta_graph(path: str) -> meta_graph_pb2.MetaGraphDef:
    """The `serve` MetaGraph of the SavedModel at `path`."""
    pb_path = os.path.join(path, "saved_model.pb")
    if not tf.io.gfile.exists(pb_path):
        raise not_found(
            f"Could not find SavedModel .pb or .pbtxt at supplied export directory path: {path}")
    saved_model = saved_model_pb2.SavedModel()
    try:
        saved_model.ParseFromString(tf.io.gfile.GFile(pb_path, "rb").read())
    except Exception as e:  # a truncated or garbage saved_model.pb
        raise internal(f"Could not parse {pb_path}: {e}") from None
    for meta_graph in saved_model.meta_graphs:
        if SERVE_TAG in meta_graph.meta_info_def.tags:
            return meta_graph
    raise internal("Could not find meta graph def matching supplied tags: { serve }. To inspect available "
                   "tag-sets in the SavedModel, please use the SavedModel CLI: `saved_model_cli`")


class Signature:
    """A callable SignatureDef: validates request arrays against the def, then runs the concrete function."""

    def __init__(self, name: str, signature_def: meta_graph_pb2.SignatureDef, function: Callable):
        self.name = name
        self.signature_def = signature_def
        self._function = function
        self.input_aliases = sorted(signature_def.inputs)
        self.output_aliases = sorted(signature_def.outputs)

    def check_inputs(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Dtype and shape checks the TF runtime makes when it is fed (arg order = sorted aliases)."""
        for index, alias in enumerate(self.input_aliases):
            info = self.signature_def.inputs[alias]
            array = arrays[alias]
            got = dtype_enum(array)
            if got != info.dtype:
                raise invalid_argument(
                    f"Expects arg[{index}] to be {type_name(info.dtype)} but {type_name(got)} is provided")
            if info.tensor_shape.unknown_rank:
                continue
            expected = [d.size for d in info.tensor_shape.dim]
            if len(expected) != array.ndim or any(e not in (-1, g) for e, g in zip(expected, array.shape, strict=True)):
                wanted = "[" + ",".join("?" if e == -1 else str(e) for e in expected) + "]"
                raise invalid_argument(
                    f"Expects arg[{index}] ('{alias}') to have shape {wanted} but "
                    f"[{','.join(map(str, array.shape))}] is provided")

    def __call__(self, arrays: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Run the signature on validated arrays and return every output as numpy."""
        try:
            outputs = deadlines.cancellable_run(
                self._function, {alias: tf.convert_to_tensor(arrays[alias]) for alias in self.input_aliases},
                deadlines.current_deadline())
        except deadlines.RunCanceled as e:  # the client's deadline passed, or the server's grace period is over
            if e.reason == "deadline":
                raise deadline_exceeded("Deadline exceeded while the model ran; its work was cancelled") from None
            raise unavailable("The server is shutting down; the request was cancelled") from None
        except tf.errors.OpError as e:  # runtime failures keep TF's own code (e.g. INVALID_ARGUMENT from an op)
            raise ServingError(_GRPC_CODE_BY_VALUE.get(e.error_code, grpc.StatusCode.UNKNOWN), e.message) from None
        except UnicodeDecodeError as e:
            # An op's error message quoting the client's bytes (ParseExample on garbage) is not UTF-8, and TF
            # fails to turn that status into an OpError; the op refused the input, so the client is at fault.
            raise invalid_argument(f"Could not parse the input: the model refused it with a message that is "
                                   f"not UTF-8 ({e.reason} at byte {e.start})") from None
        return {alias: tensor.numpy() for alias, tensor in outputs.items()}


# TF's OpError codes are the canonical codes, numbered as grpc.StatusCode's.
_GRPC_CODE_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}


class Servable:
    """A model version loaded from `path`, ready to answer requests.

    `runner` executes a signature on a dict of arrays; the server swaps in a batching runner when batching is on.
    """

    def __init__(self, name: str, version: int, path: str, loaded, signature_defs, load_seconds: float):
        self.name = name
        self.version = version
        self.path = path
        self.load_seconds = load_seconds
        self.signature_defs = signature_defs
        self._loaded = loaded  # keeps the variables alive as long as the servable
        self.signatures = {
            key: Signature(key, signature_defs[key], fn)
            for key, fn in loaded.signatures.items() if key in signature_defs
        }
        self.runner: Callable[[Signature, Mapping[str, np.ndarray]], Dict[str, np.ndarray]] = (
            lambda signature, arrays: signature(arrays))

    @classmethod
    def load(cls, name: str, version: int, path: str, xla_cpu_compilation_enabled: bool = False) -> "Servable":
        """Load the SavedModel at `path` (raises ServingError when it cannot).

        As in TF Serving, a model with XLA-compiled functions runs on CPU only when
        `xla_cpu_compilation_enabled` (TF Serving then fails its first compilation; we fail the load and say why).
        The server turns it on by default, TF Serving does not: `serving.config` passes the flag.
        """
        start = time.monotonic()
        meta_graph = read_serve_meta_graph(path)
        signature_defs = dict(meta_graph.signature_def)
        if (not xla_cpu_compilation_enabled and compiles_with_xla(meta_graph)
                and not tf.config.list_physical_devices("GPU")):
            raise failed_precondition(
                f"The SavedModel at {path} compiles functions with XLA (jit_compile) and XLA:CPU JIT is "
                "disabled: start the server with --xla_cpu_compilation_enabled=true")
        try:
            loaded = tf.saved_model.load(path, tags=[SERVE_TAG])
        except ServingError:
            raise
        except Exception as e:
            raise internal(f"Failed to load SavedModel at {path}: {type(e).__name__}: {e}") from None
        return cls(name, version, path, loaded, signature_defs, time.monotonic() - start)

    def signature(self, name: str, missing: Callable[[str], ServingError]) -> Signature:
        """The signature called `name` ("" means serving_default); `missing` builds the API-specific error."""
        key = name or DEFAULT_SIGNATURE
        signature = self.signatures.get(key)
        if signature is None:
            raise missing(key)
        return signature

    def run(self, signature: Signature, arrays: Mapping[str, np.ndarray],
            output_aliases: Optional[Sequence[str]] = None) -> Dict[str, np.ndarray]:
        """Check and run `signature`, returning the outputs in `output_aliases` (all when None)."""
        signature.check_inputs(arrays)
        outputs = self.runner(signature, arrays)
        if output_aliases is None:
            return outputs
        return {alias: outputs[alias] for alias in output_aliases}


def predict_signature_missing(key: str) -> ServingError:
    return failed_precondition(f'Serving signature key "{key}" not found.')


def inference_signature_missing(key: str) -> ServingError:
    return invalid_argument(f"No signature was found with the name: {key}")
