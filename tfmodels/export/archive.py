"""Writing a `keras.export.ExportArchive` with each weight stored once.

Keras 3.12's archive (TensorFlow backend) saves every weight twice: once as the Keras variable that
`track(model)` lists in `archive.variables`, and once as the `tf.Variable` inside it, which the endpoints
use and `write_out` lists again as `_all_variables` (keras/src/export/saved_model.py). The checkpoint
serialises the two objects separately, so a SavedModel is twice its weights (all-MiniLM-L6-v2: 181 MB for
90 MB of float32). Listing the `tf.Variable`s themselves makes both lists hold the same objects, which the
checkpoint then writes once; the loaded archive's `variables` are the same weights either way.

Every export is written with `SERVING_SAVE_OPTIONS`: without the gradient functions of the custom-gradient
ops (tfmodels.ops: GELU, bias, embedding, int8), which serving never runs. TensorFlow's default traces and
stores them, which cost a translator's export 3.5 of its 16 s and makes every load of it slower; training
continues from the `.keras` model, not from a served export.
"""

import tensorflow as tf

SERVING_SAVE_OPTIONS = tf.saved_model.SaveOptions(experimental_custom_gradients=False)
_VARIABLE_LISTS = ("variables", "trainable_variables", "non_trainable_variables")


def write_archive(archive, export_dir):
    """`archive.write_out(export_dir)`, each weight stored once, with `SERVING_SAVE_OPTIONS` (see the module
    docstring)."""
    trackable = archive._tf_trackable
    for name in _VARIABLE_LISTS:
        variables = []
        for variable in getattr(trackable, name):
            value = getattr(variable, "value", variable)
            variables.append(value if isinstance(value, tf.Variable) else variable)
        setattr(trackable, name, variables)
    archive.write_out(export_dir, options=SERVING_SAVE_OPTIONS, verbose=False)
    return export_dir
