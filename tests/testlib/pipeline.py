"""Running `python -m tfx_pipeline run` as a user does, in a fresh process, for the pipeline e2e tests."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_cli(work_dir, *flags, timeout=600):
    """`python -m tfx_pipeline run --root work_dir FLAGS...`; returns (exit code, stdout + stderr)."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-m", "tfx_pipeline", "run", "--root", str(work_dir), *flags],
                            capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    return result.returncode, result.stdout + result.stderr


def latest_summary(work_dir, pipeline_name):
    """The newest run of `pipeline_name` recorded under `work_dir` (tfx_pipeline.run_summary)."""
    from tfx_pipeline.run_summary import latest_run_summary

    return latest_run_summary(os.path.join(work_dir, "metadata.sqlite"), pipeline_name)


def eval_split_examples(work_dir, features):
    """(serialized tf.Examples, per example the tuple of its `features`' string values) of the CsvExampleGen
    eval split under `work_dir`."""
    import glob

    import tensorflow as tf

    files = glob.glob(os.path.join(work_dir, "root", "CsvExampleGen", "examples", "*", "Split-eval", "*"))
    records = list(tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator())
    examples = [tf.train.Example.FromString(r) for r in records]
    rows = [tuple(e.features.feature[name].bytes_list.value[0].decode() for name in features) for e in examples]
    return records, rows
