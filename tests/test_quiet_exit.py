"""Issue 33, point 8: scripts that trace or export functions end without TF's `Exception ignored in:
<function AtomicFunction.__del__ ...> TypeError` lines (one per traced function alive at interpreter teardown)."""

import os
import subprocess
import sys
import textwrap

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Interpreter teardown clears `atomic_function`'s globals before the functions still referenced are freed; the
# script does the same to the one global `AtomicFunction.__del__` reads, after the exit handlers ran, as Python
# does at exit.
SCRIPT = textwrap.dedent("""
    import atexit, gc
    import tfmodels
    import tensorflow as tf
    from tensorflow.python.eager.polymorphic_function import atomic_function

    add_one = tf.function(lambda x: x + 1)
    assert float(add_one(tf.constant(1.0))) == 2.0
    assert not getattr(atomic_function.AtomicFunction.__del__, "tolerates_teardown", False)  # only at exit
    atexit._run_exitfuncs()
    atomic_function.RUNTIME_FUNCTION_REFS = None
    del add_one
    gc.collect()
    print("exited cleanly")
""")


def test_functions_freed_at_teardown_print_nothing():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "PYTHONWARNINGS"))}
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300,
                            env={**env, "PYTHONPATH": REPO}, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "exited cleanly"
    assert "Exception ignored" not in result.stderr and "AtomicFunction" not in result.stderr, result.stderr
