"""A text classifier as a LiteRT (TensorFlow Lite) flatbuffer, and a runner for it.

`export_litert(model, path, sequence_length=...)` writes a `.tflite` file with one signature,
`serving_default`: int32 `token_ids`, `segment_ids`, `padding_mask` `[batch, sequence_length]` in,
float32 `logits` `[batch, num_classes]` out. `LiteRTClassifier(path)` runs it on a dict of arrays
with any number of rows. `quantize="dynamic_int8"` stores the weights as int8 (dynamic-range
quantization: activations stay float, the matmuls quantize their inputs on the fly).

Tokenizer out. The tokenizer does not run in LiteRT; tried for real (TF 2.16.2, ai-edge-litert
2.3.0) on a `BertPreprocessor` + `BertClassifier`:

- builtins only: conversion fails, with 24 ops that have no LiteRT builtin: "TF Select ops:
  BitwiseAnd, ConcatV2, DenseBincount, Erf, HashTableV2, InvertPermutation, LookupTableFindV2,
  LookupTableImportV2, RaggedGather, RaggedRange, RaggedTensorToTensor, StaticRegexFullMatch,
  StaticRegexReplace, StringLength, StringLower, StringSplitV2, Substr, TensorListConcatV2,
  TensorListReserve, TensorListSetItem, UnicodeDecode, UnicodeDecodeWithOffsets, UnicodeEncode,
  UnsortedSegmentSum" (the string ops, the vocabulary hash table, ragged packing);
  `SELECT_TF_OPS` alone cannot work either (the WordPiece `while` loop is emitted as a builtin).
- with `TFLITE_BUILTINS + SELECT_TF_OPS` it converts (2.2 MB for a 64-token vocabulary; 41 of
  658 nodes go to the Flex delegate). The LiteRT runtime refuses it: "Select TensorFlow op(s),
  included in the given model, is(are) not supported by this interpreter. Make sure you
  apply/link the Flex delegate before inference. ... Node number 1 (FlexHashTableV2) failed to
  prepare." (In a Python process that has imported TensorFlow, LiteRT finds TF's Flex delegate;
  on a device or in a process without TensorFlow it has none.)
- even with the Flex delegate (`tf.lite.Interpreter`), the file fails on ordinary inputs: the
  tokenizer's data-dependent, often empty intermediate tensors (likely: no word left for the
  WordPiece loop when every word is a vocabulary entry) break LiteRT's shape propagation:
  "arg_min_max.cc:116 NumDimensions(input) >= 1 was not true. Node number 242 (ARG_MAX) failed
  to prepare" for
  ["a wonderful, moving film"], "Where op requires condition w/ rank > 0 Node number 167 (WHERE)
  failed to invoke" for ["x"], at dynamic and fixed batch alike; the next call on that
  interpreter can crash the process.

So the token-id model (no Flex op) is the LiteRT artifact; tokenize with
`tfmodels.text.BertPreprocessor` (or the TF Serving export) in front of it.
`export_litert(..., preprocessor=p, select_tf_ops=True)` still writes the text-in file (signature
`predict_text`) for experiments; `LiteRTClassifier` runs it with `tf.lite.Interpreter`.

How the token-id model is converted, and why:

- TF 2.16's converter aborts the whole process on Keras 3 variables ("ReadVariableOp ... error:
  missing attribute 'value'" / "LLVM ERROR: Failed to infer result type(s)", tensorflow#63987),
  with `from_keras_model`, `from_concrete_functions` and `from_saved_model` of a `tf.Module`
  alike. So the function is frozen first (`convert_variables_to_constants_v2`): the converter
  then sees constants, no variables.
- The exact GELU's `Erf` has no LiteRT builtin either (it would need Flex). Each `Erf` node of the
  frozen graph is replaced by Eigen's float32 rational approximation (the one TF's CPU kernel
  uses; |error| < 5e-7 against the true erf, the same as TF's kernel) made of Minimum, Maximum,
  Mul, Add and Div, all builtins.
- The frozen graph is re-imported in a `tf.function` with the named input signature, so the
  flatbuffer gets a real `serving_default` SignatureDef; the `_gradient_op_type` attributes that
  `tf.custom_gradient` leaves on the graph are dropped first (the converter otherwise falls back,
  silently, to a path that writes no signature).

Runtime: `ai_edge_litert` when it is installed and the model has no Flex op, else
`tf.lite.Interpreter` (which TF 2.16 still ships).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

from tfmodels.export.archive import write_archive
from tfmodels.export.signatures import DEFAULT_SIGNATURE, TEXT_SIGNATURE
from tfmodels.models.bert.encoder import INPUT_NAMES

TOKEN_INPUTS = INPUT_NAMES  # the encoder's inputs, the file's inputs
LOGITS_OUTPUT = "logits"
QUANTIZATIONS = (None, "dynamic_int8")
FLEX_PREFIX = "Flex"  # custom-op code of a TF Select op in a flatbuffer

# Eigen's generic_fast_erf_float: erf(x) = x * P(x^2) / Q(x^2) on x clamped to [-4, 4].
_ERF_CLAMP = 4.0
_ERF_NUMERATOR = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
                  -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
                  -1.60960333262415e-02)
_ERF_DENOMINATOR = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
                    -7.37332916720468e-03, -1.42647390514189e-02)


# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------


def export_litert(
    model: Callable,
    path: str,
    *,
    sequence_length: int,
    preprocessor: Optional[Callable] = None,
    text_features: Sequence[str] = ("text",),
    quantize: Optional[str] = None,
    batch_size: Optional[int] = None,
    select_tf_ops: bool = False,
) -> str:
    """Write `model` as a LiteRT flatbuffer at `path`.

    Args:
        model: a Keras classifier from the token-id dict (int32 `[batch, sequence_length]`
            `token_ids`, `segment_ids`, `padding_mask`) to logits `[batch, num_classes]`, e.g.
            `tfmodels.BertClassifier`.
        path: the `.tflite` file to write (its folder is created).
        sequence_length: the fixed length of every input row.
        preprocessor: with `select_tf_ops=True` only: the file then takes raw strings
            (signature `predict_text`, one DT_STRING `[batch]` input per text feature), needs
            the Flex delegate and fails on some inputs; see the module docstring.
        text_features: the string inputs' names with `preprocessor`: one, or two for text pairs.
        quantize: None (float32) or `"dynamic_int8"` (int8 weights, float activations).
        batch_size: a fixed batch dimension (e.g. 1 for a runtime that wants static shapes);
            None keeps it dynamic (the runner resizes the inputs per call).
        select_tf_ops: allow TF Select (Flex) ops; required with `preprocessor`.

    Returns:
        `path`.

    Raises:
        ValueError: for an unknown `quantize`, a bad `sequence_length` / `text_features`, a
            `preprocessor` without `select_tf_ops`, or one packing to another length than
            `sequence_length`.
    """
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be one of {QUANTIZATIONS}, got {quantize!r}")
    sequence_length = int(sequence_length)
    if sequence_length < 1:
        raise ValueError(f"sequence_length must be positive, got {sequence_length}")
    if preprocessor is not None and not select_tf_ops:
        raise ValueError(
            "the tokenizer needs TF Select (Flex) ops (string ops, its hash table, ragged "
            "packing), which the LiteRT runtime does not have: export the token-id model "
            "(preprocessor=None) and tokenize in front of it, or pass select_tf_ops=True for a "
            "file that only a Flex-enabled interpreter runs (see tfmodels.export.litert)")
    _check_model_length(model, sequence_length)
    with tempfile.TemporaryDirectory() as tmp:  # the text model's SavedModel, read by the converter
        if preprocessor is None:
            converter = _token_id_converter(model, sequence_length, batch_size)
            if select_tf_ops:
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS,
                                                       tf.lite.OpsSet.SELECT_TF_OPS]
        else:
            converter = _text_converter(model, preprocessor, tuple(text_features), sequence_length,
                                        batch_size, tmp)
        if quantize == "dynamic_int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        flatbuffer = converter.convert()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(flatbuffer)
    return path


def _check_model_length(model, sequence_length):
    """Fail early (not deep in the converter) when the model was built for another length."""
    for tensor in getattr(model, "inputs", None) or ():
        shape = tuple(tensor.shape)
        if len(shape) == 2 and shape[1] is not None and shape[1] != sequence_length:
            raise ValueError(f"the model's input {tensor.name!r} has sequence length {shape[1]}, "
                             f"not sequence_length={sequence_length}")


def _token_id_spec(sequence_length, batch_size):
    return {name: tf.TensorSpec([batch_size, sequence_length], tf.int32, name=name)
            for name in TOKEN_INPUTS}


def frozen_token_id_function(model, sequence_length, batch_size=None, *, builtins_only=True):
    """The classifier as a `tf.function` over constants: `serving_default({token_ids, segment_ids,
    padding_mask})` -> `{"logits": float32 [batch, num_classes]}`, int32 inputs `[batch_size,
    sequence_length]`, no variables (the graph holds the weights) and no custom-gradient marks.

    What `export_litert` converts, and what another runtime's converter (tf2onnx in
    `bench/onnx_peer.py`) can read from a plain SavedModel without tfmodels or Keras: save it with
    `tf.saved_model.save(module, path, signatures={"serving_default": function})`.

    Args:
        model: a classifier from the token-id dict to logits (e.g. `tfmodels.BertClassifier`).
        sequence_length, batch_size: the input shape (`batch_size` None: any batch).
        builtins_only: replace each `Erf` by its rational approximation (`replace_erf`), so the graph
            has no op that LiteRT runs only through Flex.

    Returns:
        `(function, module)`: the `tf.function` and a `tf.Module` that holds it.
    """
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    spec = _token_id_spec(sequence_length, batch_size)

    @tf.function(input_signature=[spec])
    def logits(inputs):
        return tf.cast(model(inputs, training=False), tf.float32)

    frozen = convert_variables_to_constants_v2(logits.get_concrete_function())
    graph_def = frozen.graph.as_graph_def()
    if builtins_only:
        replace_erf(graph_def)
    for node in graph_def.node:
        node.attr.pop("_gradient_op_type", None)  # custom-gradient marks, meaningless here
    input_names = {name: tensor.name for name, tensor in
                   zip(sorted(spec), sorted(frozen.inputs, key=lambda t: t.name))}
    if set(input_names.values()) != {f"{name}:0" for name in spec}:
        raise RuntimeError(f"unexpected frozen inputs {[t.name for t in frozen.inputs]}")
    output_name = frozen.outputs[0].name

    @tf.function(input_signature=[spec])
    def serving_default(inputs):
        (output,) = tf.graph_util.import_graph_def(
            graph_def, input_map={f"{name}:0": inputs[name] for name in spec},
            return_elements=[output_name], name="frozen")
        return {LOGITS_OUTPUT: output}

    holder = tf.Module()
    holder.serving_default = serving_default
    return serving_default, holder


def _token_id_converter(model, sequence_length, batch_size):
    """The frozen, builtin-only token-id function, with its named signature, as a converter."""
    function, holder = frozen_token_id_function(model, sequence_length, batch_size)
    return tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], holder)


def _text_converter(model, preprocessor, text_features, sequence_length, batch_size, export_dir):
    """Write the text-in SavedModel to `export_dir` and return its converter (TF Select on).

    The Keras `ExportArchive` form converts without the Keras-3 variable crash; the tokenizer's
    hash tables cannot be frozen, so the SavedModel route (resources kept) is the one that works.
    """
    import keras

    if len(text_features) not in (1, 2):
        raise ValueError(f"a text classifier reads one text or a text pair, got {text_features}")
    packed_length = getattr(preprocessor, "sequence_length", sequence_length)
    if packed_length != sequence_length:
        raise ValueError(f"the preprocessor packs to {packed_length} tokens, "
                         f"not sequence_length={sequence_length}")

    def predict_text(*texts):
        inputs = preprocessor(texts[0] if len(texts) == 1 else tuple(texts))
        return {LOGITS_OUTPUT: tf.cast(model(inputs, training=False), tf.float32)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    if isinstance(preprocessor, tf.__internal__.tracking.Trackable):
        archive.track(preprocessor)
    archive.add_endpoint(TEXT_SIGNATURE, predict_text, input_signature=[
        tf.TensorSpec([batch_size], tf.string, name=name) for name in text_features])
    write_archive(archive, export_dir)
    converter = tf.lite.TFLiteConverter.from_saved_model(export_dir, signature_keys=[TEXT_SIGNATURE])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS,
                                           tf.lite.OpsSet.SELECT_TF_OPS]
    return converter


def replace_erf(graph_def) -> int:
    """Replace every `Erf` node of a (frozen, flat) GraphDef by builtin arithmetic, in place.

    The replacement's last node keeps the `Erf` node's name, so its consumers are unchanged.
    Functions in the graph's library are not visited (a frozen graph has its calls inlined).

    Args:
        graph_def: a `tf.compat.v1.GraphDef`.

    Returns:
        How many nodes were replaced.
    """
    nodes, replaced = [], 0
    for node in graph_def.node:
        if node.op == "Erf":
            nodes.extend(_erf_approximation(node))
            replaced += 1
        else:
            nodes.append(node)
    del graph_def.node[:]
    graph_def.node.extend(nodes)
    return replaced


def _erf_approximation(erf_node):
    """NodeDefs computing `x * P(x^2) / Q(x^2)` on the clamped input of `erf_node`."""
    from tensorflow.core.framework import node_def_pb2

    dtype = erf_node.attr["T"].type
    prefix = erf_node.name + "/erf_approximation"
    nodes = []

    def const(name, value):
        node = node_def_pb2.NodeDef(name=f"{prefix}/{name}", op="Const")
        node.attr["dtype"].type = dtype
        node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value, tf.dtypes.as_dtype(dtype)))
        nodes.append(node)
        return node.name

    def binary(name, op, a, b):
        node = node_def_pb2.NodeDef(name=f"{prefix}/{name}", op=op, input=[a, b])
        node.attr["T"].type = dtype
        nodes.append(node)
        return node.name

    def horner(tag, coefficients, x2):
        acc = const(f"{tag}0", coefficients[0])
        for i, c in enumerate(coefficients[1:], 1):
            acc = binary(f"{tag}_add{i}", "AddV2", binary(f"{tag}_mul{i}", "Mul", acc, x2),
                         const(f"{tag}{i}", c))
        return acc

    data_inputs = [i for i in erf_node.input if not i.startswith("^")]
    x = binary("clamp_high", "Minimum", data_inputs[0], const("high", _ERF_CLAMP))
    x = binary("clamp_low", "Maximum", x, const("low", -_ERF_CLAMP))
    x2 = binary("x2", "Mul", x, x)
    numerator = binary("numerator", "Mul", horner("p", _ERF_NUMERATOR, x2), x)
    denominator = horner("q", _ERF_DENOMINATOR, x2)
    final = node_def_pb2.NodeDef(name=erf_node.name, op="RealDiv", input=[numerator, denominator])
    final.attr["T"].type = dtype
    final.input.extend(i for i in erf_node.input if i.startswith("^"))  # its control inputs
    return nodes + [final]


# ---------------------------------------------------------------------------------------------
# Inspection and running
# ---------------------------------------------------------------------------------------------


def litert_ops(path: str) -> List[str]:
    """The operator names a flatbuffer uses, sorted: builtins as `FULLY_CONNECTED`, ..., TF Select
    ops as `FlexStringSplitV2`, ... (custom codes).

    Args:
        path: a `.tflite` file.
    """
    from tensorflow.lite.python import schema_py_generated as schema

    with open(path, "rb") as f:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(f.read(), 0))
    builtin_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    names = set()
    for code in model.operatorCodes or ():
        if code.customCode:
            names.add(code.customCode.decode() if isinstance(code.customCode, bytes)
                      else str(code.customCode))
        else:
            # Codes past 127 live in builtinCode; deprecatedBuiltinCode holds the small ones.
            names.add(builtin_names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "?"))
    return sorted(names)


def flex_ops(path: str) -> List[str]:
    """The TF Select ops (names without the `Flex` prefix) a flatbuffer needs; empty when LiteRT
    alone can run it."""
    return [name[len(FLEX_PREFIX):] for name in litert_ops(path) if name.startswith(FLEX_PREFIX)]


def _litert_interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        return None
    return Interpreter


class LiteRTClassifier:
    """Runs a flatbuffer from `export_litert`: token-id dicts (or strings) in, logits out.

    Args:
        path: the `.tflite` file.
        num_threads: interpreter threads; None leaves the runtime's default.
        runtime: `"auto"` (LiteRT when installed and the file has no Flex op, else
            `tf.lite.Interpreter`), `"litert"` (`ai_edge_litert`) or `"tensorflow"`
            (`tf.lite.Interpreter`, which has the Flex delegate).

    Attributes:
        runtime: the runtime in use, `"litert"` or `"tensorflow"`.
        signature: `serving_default` (token ids in) or `predict_text` (strings in).
        sequence_length: the fixed row length of a token-id model (None for a text model).
        batch_size: the fixed batch of the file, or None when it is dynamic.

    Example:
        >>> classifier = LiteRTClassifier("model.tflite")  # doctest: +SKIP
        >>> classifier(preprocessor(tf.constant(["a fine film"])))  # doctest: +SKIP
        array([[ 0.12, -0.40]], dtype=float32)
    """

    def __init__(self, path: str, *, num_threads: Optional[int] = None, runtime: str = "auto"):
        if runtime not in ("auto", "litert", "tensorflow"):
            raise ValueError(f"runtime must be 'auto', 'litert' or 'tensorflow', got {runtime!r}")
        self.path = path
        needs_flex = flex_ops(path)
        litert = _litert_interpreter_class()
        if runtime == "auto":
            runtime = "litert" if litert is not None and not needs_flex else "tensorflow"
        if runtime == "litert":
            if needs_flex:  # first: no package would help
                raise ValueError(f"{path} needs TF Select (Flex) ops {needs_flex}, which the LiteRT "
                                 "runtime does not have; use runtime='tensorflow'")
            if litert is None:
                raise ImportError("runtime='litert' needs the ai-edge-litert package")
            interpreter_class = litert
        else:
            interpreter_class = tf.lite.Interpreter
        self.runtime = runtime
        self._interpreter = interpreter_class(model_path=path, num_threads=num_threads)
        signatures = self._interpreter.get_signature_list()
        if len(signatures) != 1:
            raise ValueError(f"{path}: expected one signature, found {sorted(signatures)}")
        (self.signature,) = signatures
        self._runner = self._interpreter.get_signature_runner(self.signature)
        details = self._runner.get_input_details()
        self.input_names = tuple(sorted(details))
        shapes = {name: tuple(int(d) for d in detail["shape_signature"])
                  for name, detail in details.items()}
        first = shapes[self.input_names[0]]
        self.batch_size = first[0] if first[0] > 0 else None
        self.sequence_length = first[1] if self.signature == DEFAULT_SIGNATURE else None

    def __call__(self, inputs: Mapping[str, Any]) -> np.ndarray:
        """Logits `[batch, num_classes]` of a token-id dict (numpy / tensors / lists, any batch).

        Raises:
            ValueError: a missing input, a row length other than the model's, or batches that
                differ between inputs.
        """
        if self.signature != DEFAULT_SIGNATURE:
            raise ValueError(f"{self.path} takes text ({self.input_names}); use predict_text()")
        arrays = self._token_arrays(inputs)
        return self._run(arrays)

    def predict_text(self, texts: Any) -> np.ndarray:
        """Logits of raw strings, for a file exported with a preprocessor.

        Args:
            texts: a sequence of strings for a one-feature model, or `{feature: strings}`.
        """
        if self.signature != TEXT_SIGNATURE:
            raise ValueError(f"{self.path} takes token ids, not text: tokenize first "
                             "(e.g. with tfmodels.text.BertPreprocessor)")
        if not isinstance(texts, Mapping):
            if len(self.input_names) != 1:
                raise ValueError(f"pass {{feature: texts}} for the features {self.input_names}")
            texts = {self.input_names[0]: texts}
        if set(texts) != set(self.input_names):
            raise ValueError(f"expected the text features {self.input_names}, got {sorted(texts)}")
        arrays = {name: np.asarray([t.encode() if isinstance(t, str) else t for t in values],
                                   dtype=object) for name, values in texts.items()}
        if len({len(v) for v in arrays.values()}) != 1:
            raise ValueError("the text features have different numbers of rows")
        try:
            return self._run(arrays)
        except RuntimeError as error:  # LiteRT's shape propagation on the tokenizer's graph
            raise RuntimeError(f"{self.path}: the tokenizer-in LiteRT model failed on these "
                               f"texts ({error}); this interpreter may be unusable now. The "
                               "token-id model does not have this problem (see "
                               "tfmodels.export.litert)") from error

    def _token_arrays(self, inputs) -> Dict[str, np.ndarray]:
        missing = [name for name in TOKEN_INPUTS if name not in inputs]
        if missing:
            raise ValueError(f"missing input(s) {missing}; the model takes {list(TOKEN_INPUTS)}")
        arrays, batch = {}, None
        for name in TOKEN_INPUTS:
            value = np.asarray(inputs[name])
            if value.ndim != 2:
                raise ValueError(f"{name} must be 2-D [batch, {self.sequence_length}], "
                                 f"got shape {value.shape}")
            if value.shape[1] != self.sequence_length:
                raise ValueError(
                    f"{name} has sequence length {value.shape[1]}, but {self.path} was exported "
                    f"for sequence_length={self.sequence_length} (inputs [batch, "
                    f"{self.sequence_length}]); pack the inputs to that length")
            if not np.issubdtype(value.dtype, np.integer):
                raise ValueError(f"{name} must hold integers, got dtype {value.dtype}")
            if batch is not None and value.shape[0] != batch:
                raise ValueError(f"inputs have different batch sizes: {batch} and "
                                 f"{value.shape[0]} ({name})")
            batch = value.shape[0]
            arrays[name] = value.astype(np.int32, copy=False)
        return arrays

    def _run(self, arrays: Dict[str, np.ndarray]) -> np.ndarray:
        rows = len(next(iter(arrays.values())))
        step = self.batch_size or rows
        if rows == 0:
            raise ValueError("empty batch")
        outputs = []
        for start in range(0, rows, step):
            chunk = {name: value[start:start + step] for name, value in arrays.items()}
            short = step - len(chunk[self.input_names[0]])
            if short:  # a fixed-batch file: pad the last chunk with copies of its first row
                chunk = {name: np.concatenate([value, np.repeat(value[:1], short, axis=0)])
                         for name, value in chunk.items()}
            logits = self._runner(**chunk)[LOGITS_OUTPUT]
            outputs.append(logits[:step - short])
        return np.concatenate(outputs).astype(np.float32, copy=False)
