"""What every task's Trainer code shares: the run's tf.distribute strategy, Transform's output as batches, and
the compile-and-fit of a run."""

import tempfile

import attr
import tensorflow as tf
from tfx_bsl.public import tfxio


def distribution_strategy(name: str) -> tf.distribute.Strategy:
    """The strategy `hparams.strategy` names: "default" (one device), "mirrored" (`MirroredStrategy` over this
    machine's GPUs, or its CPU) or "multi_worker" (`tfmodels.distribute.multi_worker_strategy`: the workers in
    `TF_CONFIG`, which Vertex AI sets for each worker pool replica)."""
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        from tfmodels.distribute import multi_worker_strategy

        return multi_worker_strategy()
    if name != "default":
        raise ValueError(f"unknown strategy {name!r}")
    return tf.distribute.get_strategy()


def chief_fn_args(fn_args, strategy: tf.distribute.Strategy):
    """`fn_args` on the chief; elsewhere a copy whose `serving_model_dir` is a scratch folder. Every worker
    takes part in saving a multi-worker model (its variables are collective), but only the chief's export is
    the Trainer's output."""
    from tfmodels.distribute import is_chief

    if is_chief(strategy):
        return fn_args
    return attr.evolve(fn_args, serving_model_dir=tempfile.mkdtemp(prefix="non_chief_export_"))


def transformed_dataset(fn_args, files, tf_transform_output, batch_size: int, shuffle: bool,
                        label_key=None) -> tf.data.Dataset:
    """Batches of Transform's output through TFX's data accessor (a feature dict, or `(features, label)` with
    `label_key`); repeats forever. Full batches only: XLA then compiles one shape."""
    return fn_args.data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=label_key, shuffle=shuffle, shuffle_seed=0,
                                       num_epochs=None, drop_final_batch=True),
        tf_transform_output.transformed_metadata.schema).prefetch(2)


def fine_tune(model, fn_args, hparams, dataset, callbacks, optimizer=None, **compile_args):
    """Compiles `model` (XLA unless `hparams.jit_compile` is off; `optimizer` default:
    `tfmodels.optimizers.fine_tuning_optimizer`, BERT's AdamW with warmup and linear decay over the run) and fits
    it for `fn_args.train_steps`, validating on `fn_args.eval_steps` batches. `dataset(files, shuffle)` gives the
    batches."""
    from tfmodels.optimizers import fine_tuning_optimizer

    optimizer = optimizer or fine_tuning_optimizer(hparams.learning_rate, fn_args.train_steps)
    model.compile(optimizer=optimizer, jit_compile=hparams.jit_compile, **compile_args)
    model.fit(dataset(fn_args.train_files, True), steps_per_epoch=fn_args.train_steps, epochs=1,
              validation_data=dataset(fn_args.eval_files, False), validation_steps=fn_args.eval_steps,
              callbacks=callbacks, verbose=0)


def compressed(model, fn_args, options, dataset):
    """What the run exports: `model`, or the compression `options` (`tasks.bert.CompressibleOptions`) ask for.
    Distillation trains a `options.distill_layers`-layer student started from the teacher's layers
    (`tfmodels.compress.make_student`) for `options.distill_steps` steps (default: the training steps) on the
    training split (soft targets + labels); quantization is Keras' `model.quantize`. The Evaluator then scores
    and gates this model, not the uncompressed one."""
    from tfmodels import compress

    if options.distill_layers:
        student = compress.make_student(model, options.distill_layers)
        compress.distill(model, student, dataset(fn_args.train_files, True), epochs=1,
                         steps_per_epoch=options.distill_steps or int(fn_args.train_steps))
        model = student
    if options.quantize:
        model.quantize(options.quantize)
    return model
