"""A model server that speaks the TF Serving protocol, its clients, and configs for real TF Serving.

`serving` depends only on TensorFlow, SavedModels and the `tensorflow-serving-api` protos:

- `serving.server`   -- `ModelServer` (in-process) and the `tfmodels-serve` / `python -m serving.server` CLI.
- `serving.process`  -- `ServerProcess`: the server in a fresh process, awaited until AVAILABLE, stopped cleanly.
- `serving.flags`    -- the CLI flags (parsed before TensorFlow is imported).
- `serving.fuzz`     -- a seeded fuzzer for the REST JSON codec and TensorProto decoding.
- `serving.client`   -- gRPC and REST clients plus tf.Example / TensorProto helpers.
- `serving.config`   -- generates models.config, batching_parameters.txt, monitoring.config, docker-compose and
  Kubernetes manifests for a real `tensorflow_model_server`.
"""
