"""TF Serving config messages that the tensorflow-serving-api wheel does not ship.

Also the text-proto parsing every config file goes through.

`BatchingParameters` (servables/tensorflow/session_bundle_config.proto) and `MonitoringConfig`
(config/monitoring_config.proto) are declared here with TF Serving's package, names and field numbers, so that
text written for `--batching_parameters_file` / `--monitoring_config_file` parses the same way in both servers.
"""

import tensorflow as tf
from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    text_format,
    wrappers_pb2,
)

from serving.errors import invalid_argument

_F = descriptor_pb2.FieldDescriptorProto


def _file() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(name="serving/tf_serving_configs.proto", package="tensorflow.serving",
                                               syntax="proto3", dependency=["google/protobuf/wrappers.proto"])

    def field(message, name, number, kind, type_name=None, repeated=False):
        f = message.field.add(name=name, number=number, type=kind,
                              label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
        if type_name:
            f.type_name = type_name

    batching = proto.message_type.add(name="BatchingParameters")
    for number, name in enumerate(["max_batch_size", "batch_timeout_micros", "max_enqueued_batches",
                                   "num_batch_threads"], start=1):
        field(batching, name, number, _F.TYPE_MESSAGE, ".google.protobuf.Int64Value")
    field(batching, "thread_pool_name", 5, _F.TYPE_MESSAGE, ".google.protobuf.StringValue")
    field(batching, "allowed_batch_sizes", 6, _F.TYPE_INT64, repeated=True)
    field(batching, "pad_variable_length_inputs", 7, _F.TYPE_BOOL)

    prometheus = proto.message_type.add(name="PrometheusConfig")
    field(prometheus, "enable", 1, _F.TYPE_BOOL)
    field(prometheus, "path", 2, _F.TYPE_STRING)
    monitoring = proto.message_type.add(name="MonitoringConfig")
    field(monitoring, "prometheus_config", 1, _F.TYPE_MESSAGE, ".tensorflow.serving.PrometheusConfig")
    return proto


def _classes():
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(_file())
    # protobuf >= 4.21 has GetMessageClass, and protobuf 6 removed MessageFactory.GetPrototype; 3.20 has only that.
    get_class = getattr(message_factory, "GetMessageClass", None) or message_factory.MessageFactory(pool).GetPrototype
    return tuple(get_class(pool.FindMessageTypeByName(f"tensorflow.serving.{name}"))
                 for name in ("BatchingParameters", "MonitoringConfig"))


BatchingParameters, MonitoringConfig = _classes()


def parse_text(text: str, message_class, error_prefix: str):
    """Parse text-format `message_class`; a syntax error is INVALID_ARGUMENT "<error_prefix>: <details>"."""
    message = message_class()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as e:
        raise invalid_argument(f"{error_prefix}: {e}") from None
    return message


def read_text(path: str) -> str:
    with tf.io.gfile.GFile(path, "r") as f:
        return f.read()
