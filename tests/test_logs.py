"""tfmodels.utils.logs: TensorFlow's known CPU start-up noise is dropped from stderr, everything else kept."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOISE = ("cuFFT", "cuDNN", "cuBLAS", "Could not find cuda drivers", "absl::InitializeLog",
         "Compiled cluster using XLA")
# What TF prints on a machine without a GPU at import: TF 2.16 registers the CUDA factories, TF 2.21 only looks for
# the drivers.
CUDA_START_UP = ("Unable to register cuFFT factory", "Could not find cuda drivers")


def _python(script, **env):
    base = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                            env={**base, "PYTHONPATH": REPO, **env}, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr


def test_a_jit_fit_under_quiet_shows_real_warnings_and_no_noise():
    stderr = _python(
        "from tfmodels.utils import logs\nlogs.quiet()\n"
        "import warnings, keras, numpy as np\n"
        "m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])\n"
        "m.compile('sgd', 'mse', jit_compile=True)\n"
        "m.fit(np.ones((8, 4)), np.ones((8, 1)), verbose=0)\n"
        "warnings.warn('a real warning')\n"
        "import os; os.write(2, b'a C++ error line\\n')\n")
    for noise in NOISE:
        assert noise not in stderr, stderr
    assert "UserWarning: a real warning" in stderr and "a C++ error line" in stderr


def test_import_is_quiet_and_verbose_brings_the_lines_back():
    quiet = _python("import tfmodels")  # once: inside the generator it would start a process per noise
    assert not any(noise in quiet for noise in NOISE), quiet[-2000:]
    verbose = _python("import tfmodels", TF_CPP_MIN_LOG_LEVEL="0")
    assert any(line in verbose for line in CUDA_START_UP), verbose[-2000:]


def test_filter_lines():
    from tfmodels.utils.logs import filter_lines

    text = ("E0 cuda_fft.cc:479] Unable to register cuFFT factory: ...\nkeep me\n"
            "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\nlast")
    assert filter_lines(text) == "keep me\nlast"
