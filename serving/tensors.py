"""TensorProto <-> numpy conversion with the checks TF Serving applies when it parses request tensors."""

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2

from serving.errors import invalid_argument

# A request tensor may not claim more than this many bytes once materialised: a shape such as [2**40] with no
# values must be refused, not allocated (TF Serving fails the allocation and answers "tensor parsing error").
# The server's --max_request_bytes bounds the sum over a request's tensors (`request_tensor_bytes`) below this.
MAX_TENSOR_BYTES = 1 << 30
# What one string element costs once decoded, besides its bytes: a tf.string (tstring) is 24 bytes, a numpy
# object slot 8 plus the bytes object's ~33-byte header; 16 is a floor, not the worst case.
STRING_ELEMENT_BYTES = 16

# TF's DataTypeString names ("float", not "float32"), used in runtime error messages.
_TF_TYPE_NAMES = {
    types_pb2.DT_FLOAT: "float", types_pb2.DT_DOUBLE: "double", types_pb2.DT_HALF: "half",
    types_pb2.DT_BFLOAT16: "bfloat16", types_pb2.DT_INT8: "int8", types_pb2.DT_INT16: "int16",
    types_pb2.DT_INT32: "int32", types_pb2.DT_INT64: "int64", types_pb2.DT_UINT8: "uint8",
    types_pb2.DT_UINT16: "uint16", types_pb2.DT_UINT32: "uint32", types_pb2.DT_UINT64: "uint64",
    types_pb2.DT_STRING: "string", types_pb2.DT_BOOL: "bool", types_pb2.DT_COMPLEX64: "complex64",
    types_pb2.DT_COMPLEX128: "complex128",
}


def type_name(dtype_enum: int) -> str:
    """TF's short name of a DataType enum value ("float", "string", ...)."""
    return _TF_TYPE_NAMES.get(dtype_enum, types_pb2.DataType.Name(dtype_enum) if dtype_enum in
                              types_pb2.DataType.values() else str(dtype_enum))


def dtype_enum(array: np.ndarray) -> int:
    """The DataType enum of a numpy array (object / bytes arrays are DT_STRING)."""
    if array.dtype.kind in ("O", "S", "U"):
        return types_pb2.DT_STRING
    return tf.as_dtype(array.dtype).as_datatype_enum


def claimed_bytes(proto: tensor_pb2.TensorProto) -> float:
    """The bytes `proto` takes once decoded, from its shape and dtype alone (before anything is allocated);
    a shape of [2**24] with one value costs what 2**24 values cost. Strings: their bytes plus a per-element
    overhead. Float, so that absurd shapes cannot overflow."""
    dims = [max(d.size, 0) for d in proto.tensor_shape.dim]
    elements = float(np.prod(dims, dtype=np.float64)) if dims else 1.0
    if proto.dtype == types_pb2.DT_STRING:
        return elements * STRING_ELEMENT_BYTES + sum(len(v) for v in proto.string_val)
    try:
        item = tf.as_dtype(proto.dtype).size
    except TypeError:
        item = 1
    return elements * item


def to_ndarray(proto: tensor_pb2.TensorProto, alias: str) -> np.ndarray:
    """Parse a request TensorProto; any malformation is INVALID_ARGUMENT "tensor parsing error: ALIAS"."""
    error = invalid_argument(f"tensor parsing error: {alias}")
    if proto.dtype not in _TF_TYPE_NAMES or proto.tensor_shape.unknown_rank:
        raise error
    dims = [d.size for d in proto.tensor_shape.dim]
    if any(d < 0 for d in dims):
        raise error
    if claimed_bytes(proto) > MAX_TENSOR_BYTES:
        raise error
    num_elements = int(np.prod(dims, dtype=np.float64)) if dims else 1
    try:
        array = tf.make_ndarray(proto)
    except Exception:  # malformed content (wrong byte count, too many values, ...) is the client's fault
        raise error from None
    if array.size != num_elements:
        raise error
    return array


# Typed value field per DataType, as Tensor::AsProtoField fills them.
_VALUE_FIELDS = {
    types_pb2.DT_FLOAT: "float_val", types_pb2.DT_DOUBLE: "double_val", types_pb2.DT_INT32: "int_val",
    types_pb2.DT_INT16: "int_val", types_pb2.DT_INT8: "int_val", types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_UINT16: "int_val", types_pb2.DT_INT64: "int64_val", types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val", types_pb2.DT_BOOL: "bool_val",
}


def to_tensor_proto(array) -> tensor_pb2.TensorProto:
    """Serialize an output array as TF Serving does by default (Tensor::AsProtoField: typed value fields)."""
    array = np.asarray(array)
    dtype = dtype_enum(array)
    field = _VALUE_FIELDS.get(dtype)
    if dtype != types_pb2.DT_STRING and field is None:
        return tf.make_tensor_proto(array)  # half, bfloat16, complex: TF's own encoding
    proto = tensor_pb2.TensorProto(dtype=dtype)
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    if dtype == types_pb2.DT_STRING:
        proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode() for v in array.ravel())
    else:
        getattr(proto, field).extend(array.ravel().tolist())
    return proto
