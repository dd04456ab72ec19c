"""Worker processes on this machine, each with its own `TF_CONFIG`: what a cluster manager does, for examples
and tests (on a real cluster, Kubernetes or Vertex AI sets `TF_CONFIG` and restarts failed workers)."""

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Optional, Sequence

from tfmodels.distribute.multi_worker import tf_config_for
from tfmodels.utils.cache import cache_dir as default_cache_dir


def free_ports(count: int, host: str = "127.0.0.1") -> list:
    """`count` distinct TCP ports free on `host` now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


# TensorFlow's gRPC server binds every interface ("0.0.0.0:PORT" in grpc_server_lib.cc, no option) and has no
# authentication: whoever reaches the port can run graphs. The workers of a local cluster load this bind() shim
# (LD_PRELOAD), which turns a wildcard bind into loopback: IPv4 0.0.0.0 -> 127.0.0.1, IPv6 :: -> the IPv4-mapped
# ::ffff:127.0.0.1 (gRPC's dual-stack socket, so the 127.0.0.1 addresses of TF_CONFIG still connect).
_BIND_LOOPBACK_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
  static int (*real_bind)(int, const struct sockaddr *, socklen_t);
  if (!real_bind) real_bind = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
  if (addr && addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
    struct sockaddr_in a;
    memcpy(&a, addr, sizeof a);
    if (a.sin_addr.s_addr == htonl(INADDR_ANY)) {
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      return real_bind(fd, (const struct sockaddr *)&a, sizeof a);
    }
  } else if (addr && addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
    struct sockaddr_in6 a;
    memcpy(&a, addr, sizeof a);
    if (IN6_IS_ADDR_UNSPECIFIED(&a.sin6_addr)) {
      static const unsigned char mapped_loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
      memcpy(&a.sin6_addr, mapped_loopback, 16);
      return real_bind(fd, (const struct sockaddr *)&a, sizeof a);
    }
  }
  return real_bind(fd, addr, len);
}
"""


def loopback_bind_library(cache_dir: Optional[str] = None) -> str:
    """The bind() shim above as a shared library (compiled once with the system C compiler, cached by its
    source's hash). Raises RuntimeError naming the problem when it cannot be built."""
    cache_dir = cache_dir or default_cache_dir()
    digest = hashlib.sha256(_BIND_LOOPBACK_C.encode()).hexdigest()[:16]
    library = os.path.join(cache_dir, f"bind_loopback-{digest}.so")
    if os.path.exists(library):
        return library
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        raise RuntimeError("local workers must listen on 127.0.0.1 only, which needs a C compiler (cc) to build "
                           "the bind() shim; install one, or name the cluster yourself (TF_CONFIG)")
    os.makedirs(cache_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as build:
        source = os.path.join(build, "bind_loopback.c")
        with open(source, "w") as f:
            f.write(_BIND_LOOPBACK_C)
        partial = os.path.join(build, "bind_loopback.so")
        result = subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", partial, source, "-ldl"],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"could not build the loopback bind() shim: {result.stderr[-2000:]}")
        os.replace(partial, library)  # whole or not at all, also with workers starting at once
    return library


def start_workers(command: Sequence[str], workers: int, log_dir: str,
                  env: Optional[dict] = None) -> list:
    """Starts `workers` copies of `command`, worker `i` with the TF_CONFIG of index `i` (none for one worker).

    Each runs in its own process group (so `stop` also ends what it started) and appends its output to
    `log_dir/worker{i}.log`. Returns the `subprocess.Popen` objects. The workers listen on 127.0.0.1 only
    (`loopback_bind_library`): TensorFlow's gRPC runtime, unauthenticated, would listen on every interface.
    """
    addresses = [f"127.0.0.1:{port}" for port in free_ports(workers)]
    preload = loopback_bind_library() if workers > 1 else None
    processes = []
    for index in range(workers):
        worker_env = dict(os.environ if env is None else env, TF_CPP_MIN_LOG_LEVEL="2")
        if workers > 1:
            worker_env["TF_CONFIG"] = tf_config_for(addresses, index)
            worker_env["LD_PRELOAD"] = " ".join(p for p in (preload, worker_env.get("LD_PRELOAD")) if p)
        else:
            worker_env.pop("TF_CONFIG", None)
        with open(os.path.join(log_dir, f"worker{index}.log"), "a") as log:
            processes.append(subprocess.Popen(list(command), env=worker_env, stdout=log, stderr=log,
                                              start_new_session=True))
    return processes


def wait(processes: list, timeout: float) -> list:
    """Waits until every worker has exited or one has failed (the rest then hang in a collective); returns the
    exit codes, None for a worker still running. Raises TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while any(p.poll() is None for p in processes) and not any(p.poll() not in (None, 0) for p in processes):
        if time.monotonic() > deadline:
            raise TimeoutError(f"workers still running after {timeout:.0f} s")
        time.sleep(0.25)
    return [p.poll() for p in processes]


def stop(processes: list, grace: float = 10.0) -> None:
    """SIGTERM to each running worker's process group, SIGKILL after `grace` seconds."""
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
