"""Small helpers for tfmodels' commands (no TensorFlow import here: `logs` must run before it)."""
