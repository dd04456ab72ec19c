"""One worker of a 2-worker `MultiWorkerMirroredStrategy` cluster (TF_CONFIG): an all-reduce across the
workers, then "ready" and a wait, so that a test can read which addresses the worker listens on."""

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

strategy = tf.distribute.MultiWorkerMirroredStrategy()
total = strategy.reduce("SUM", strategy.run(lambda: tf.constant(1.0)), axis=None)
print(f"ready {float(total)}", flush=True)
time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 60)
