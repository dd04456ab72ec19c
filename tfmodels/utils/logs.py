"""Hide TensorFlow's known start-up noise on CPU machines; every other line of stderr still shows.

TensorFlow's C++ side writes lines like `Unable to register cuFFT factory` (at `import tensorflow`) and, at the
first XLA compile, `All log messages before absl::InitializeLog() ...` / `Compiled cluster using XLA!` straight
to file descriptor 2, before and outside Python's logging. `TF_CPP_MIN_LOG_LEVEL=3` would hide real errors too,
and the absl lines ignore it. So stderr is passed through a filter that drops exactly the lines in `NOISE`.

This module imports only the standard library: it must be usable before TensorFlow is imported.
"""

import atexit
import contextlib
import os
import sys
import tempfile
import threading
import warnings
from typing import Optional, Sequence

# Substrings of the lines dropped; each is a known-harmless message of TF 2.16 / XLA on a machine without a GPU.
NOISE = (
    "Unable to register cuFFT factory",
    "Unable to register cuDNN factory",
    "Unable to register cuBLAS factory",
    "absl::InitializeLog",
    "Compiled cluster using XLA",
    "] XLA service 0x",  # "XLA service ... initialized for platform Host" (absl INFO at the first compile)
    "]   StreamExecutor device (",
    "Could not find cuda drivers on your machine",
    "TF-TRT Warning: Could not find TensorRT",
    "failed call to cuInit",  # TF 2.21's GPU wheel probing for a driver on a CPU-only machine
    "oneDNN custom operations are on",  # TF 2.21 logs it through absl, which ignores TF_CPP_MIN_LOG_LEVEL
)

# Python warnings that `import tensorflow` raises from other packages' modules, not from ours or TF's: TF 2.16
# imports googleapiclient when it is installed (the pipeline's Beam[gcp] brings it), whose google.api_core warns
# that Python 3.10 is old (FutureWarning) and whose httplib2 uses deprecated pyparsing names.
IMPORT_WARNINGS = (
    (FutureWarning, r"google\.api_core(\..*)?$"),
    (DeprecationWarning, r"httplib2(\..*)?$"),
)


def is_noise(line: str, patterns: Sequence[str] = NOISE) -> bool:
    return any(pattern in line for pattern in patterns)


def filter_lines(text: str, patterns: Sequence[str] = NOISE) -> str:
    """`text` without its noise lines."""
    return "".join(line for line in text.splitlines(keepends=True) if not is_noise(line, patterns))


def _flush_python_stderr() -> None:
    for stream in (sys.stderr, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


@contextlib.contextmanager
def filtered_fd2(patterns: Sequence[str] = NOISE):
    """Within the block, fd 2 goes to a temporary file; on leaving, its lines but the noise are written to the
    real stderr. Synchronous and thread-free: for short blocks such as `import tensorflow`."""
    _flush_python_stderr()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            _flush_python_stderr()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = filter_lines(capture.read().decode("utf-8", "replace"), patterns)
            if kept:
                os.write(2, kept.encode("utf-8"))


def import_tensorflow_quietly() -> None:
    """`import tensorflow` without its start-up noise (a no-op once it is imported, or when the user asked for
    TF's logs by setting TF_CPP_MIN_LOG_LEVEL=0). Sets TF_CPP_MIN_LOG_LEVEL=1 (hide INFO, keep warnings)."""
    if "tensorflow" in sys.modules:
        return
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        import tensorflow  # noqa: F401
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    with filtered_fd2(), warnings.catch_warnings():
        for category, module in IMPORT_WARNINGS:
            warnings.filterwarnings("ignore", category=category, module=module)
        import tensorflow  # noqa: F401


class StderrFilter:
    """Process-wide: fd 2 goes through a pipe; a thread writes every line but the noise to the real stderr.

    For commands (the later XLA lines come at the first compile, long after the import). `stop()` drains and
    restores fd 2; it runs at exit, and must be called before `os._exit`.
    """

    def __init__(self, patterns: Sequence[str] = NOISE):
        self.patterns = tuple(patterns)
        self._saved: Optional[int] = None
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "StderrFilter":
        _flush_python_stderr()
        read_fd, write_fd = os.pipe()
        self._saved = os.dup(2)
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self._thread = threading.Thread(target=self._pump, args=(read_fd, self._saved), name="stderr-filter", daemon=True)
        self._thread.start()
        atexit.register(self.stop)
        return self

    def _pump(self, read_fd: int, out_fd: int) -> None:
        pending = b""
        with os.fdopen(read_fd, "rb", buffering=0) as pipe:
            while True:
                chunk = pipe.read(65536)
                if not chunk:
                    break
                *lines, pending = (pending + chunk).split(b"\n")
                kept = [line + b"\n" for line in lines if not is_noise(line.decode("utf-8", "replace"),
                                                                       self.patterns)]
                if kept:
                    os.write(out_fd, b"".join(kept))
        if pending and not is_noise(pending.decode("utf-8", "replace"), self.patterns):
            os.write(out_fd, pending)

    def stop(self) -> None:
        if self._saved is None:
            return
        _flush_python_stderr()
        os.dup2(self._saved, 2)  # closes our pipe end: the pump drains what is left, then sees EOF
        self._thread.join(timeout=5)
        if not self._thread.is_alive():  # else a child still holds the pipe: leave the pump its output fd
            os.close(self._saved)
        self._saved = None


_active: Optional[StderrFilter] = None


def quiet(verbose: bool = False) -> None:
    """For a command's `main`: unless `verbose`, filter stderr from now on (TF imported or not yet) and keep TF's
    C++ INFO lines off (TF_CPP_MIN_LOG_LEVEL=1, when TF is not imported yet). `verbose`: TF logs everything."""
    global _active
    if verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    if _active is None:
        _active = StderrFilter().start()


def stop() -> None:
    """Drain and remove the filter `quiet` installed (call before `os._exit`)."""
    global _active
    if _active is not None:
        _active.stop()
        _active = None


def quiet_function_teardown() -> None:
    """At exit, keep TF from printing `Exception ignored in: <function AtomicFunction.__del__ ...> TypeError:
    'NoneType' object is not subscriptable` for each traced function still alive when the interpreter tears down
    modules (a script's exported model, its kept decode functions): by then `atomic_function`'s globals are None
    and its `__del__` fails. Installed by `import tfmodels`; from the first exit handler on, that `__del__`
    swallows those two errors (the process is ending: nothing is left to release)."""
    atexit.register(_tolerate_teardown_in_function_del)


def _tolerate_teardown_in_function_del() -> None:
    try:
        from tensorflow.python.eager.polymorphic_function import atomic_function
    except ImportError:  # another TF layout: nothing to patch
        return
    cls = atomic_function.AtomicFunction
    release = cls.__del__
    if getattr(release, "tolerates_teardown", False):
        return

    def __del__(self):
        try:
            release(self)
        except (TypeError, AttributeError):
            pass  # module globals already cleared at interpreter exit

    __del__.tolerates_teardown = True
    cls.__del__ = __del__
