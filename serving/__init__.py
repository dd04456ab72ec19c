"""A model server that speaks the TF Serving protocol, its clients, and configs for real TF Serving.

`serving` depends only on TensorFlow, SavedModels and the `tensorflow-serving-api` protos:

- `serving.server`   -- `ModelServer` (in-process) and the `tfmodels-serve` / `python -m serving.server` CLI.
- `serving.client`   -- gRPC and REST clients plus tf.Example / TensorProto helpers.
- `serving.config`   -- generates models.config, batching_parameters.txt, monitoring.config, docker-compose and
  Kubernetes manifests for a real `tensorflow_model_server`.
"""
