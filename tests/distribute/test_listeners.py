"""Issue 36 items 1 and 2: the processes each multi-process mode starts listen on loopback only (TensorFlow's
gRPC runtime, our model server and Beam's LOOPBACK worker pool have no authentication). Sockets are read from
/proc/net/tcp{,6} and matched to the processes by their socket inodes."""

import glob
import ipaddress
import os
import sys
import time

import pytest

from tfmodels.distribute import local_cluster

PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "listener_probe.py")
TCP_LISTEN = "0A"


def _socket_inodes(pid: int) -> set:
    inodes = set()
    for fd in glob.glob(f"/proc/{pid}/fd/*"):
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _address(hex_address: str) -> str:
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    # /proc/net/tcp* prints each 32-bit word in host (little-endian) byte order.
    raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return f"{ipaddress.ip_address(raw)}:{int(port, 16)}"


def pids_running(marker: str) -> list:
    """Processes whose command line holds `marker` (found in /proc itself: a child's Popen pid need not be its
    pid there when the test runs in a PID namespace of its own)."""
    pids = []
    for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(cmdline, "rb") as f:
                if marker.encode() in f.read():
                    pids.append(int(cmdline.split("/")[2]))
        except OSError:
            continue
    return pids


def listening_addresses(pids) -> list:
    """"host:port" of every TCP socket in LISTEN state that one of `pids` holds."""
    inodes = set().union(*(_socket_inodes(pid) for pid in pids))
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == TCP_LISTEN and fields[9] in inodes:
                    found.append(_address(fields[1]))
    return found


def _is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address.rsplit(":", 1)[0])
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def _this_process() -> list:
    return [int(os.readlink("/proc/self"))]


def test_address_parsing_tells_loopback_from_every_interface():
    assert _address("0100007F:1F90") == "127.0.0.1:8080" and _is_loopback("127.0.0.1:8080")
    assert not _is_loopback(_address("00000000:1F90"))
    assert not _is_loopback(_address("00000000000000000000000000000000:1F90"))  # [::]
    assert _is_loopback(_address("0000000000000000FFFF00000100007F:1F90"))  # ::ffff:127.0.0.1


@pytest.mark.e2e  # two TensorFlow processes (~25 s)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_multi_worker_cluster_listens_on_loopback_only(tmp_path):
    processes = local_cluster.start_workers([sys.executable, PROBE, "60"], 2, str(tmp_path))
    try:
        deadline = time.monotonic() + 120
        logs = [tmp_path / f"worker{i}.log" for i in range(2)]
        while not all(log.exists() and "ready 2.0" in log.read_text() for log in logs):
            assert all(p.poll() is None for p in processes), [log.read_text()[-2000:] for log in logs]
            assert time.monotonic() < deadline, "the workers did not all-reduce"
            time.sleep(0.2)
        addresses = listening_addresses(pids_running(PROBE))
        assert len(addresses) >= 2  # each worker's gRPC server
        assert [a for a in addresses if not _is_loopback(a)] == []
    finally:
        local_cluster.stop(processes, grace=2)


@pytest.mark.e2e  # a server process (~10-40 s on a loaded machine)
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_model_server_listens_on_loopback_only(tmp_path):
    from serving.process import ServerProcess

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "serving"))
    from serving_testlib import build_half_plus_two

    build_half_plus_two(tmp_path / "hp" / "1")
    with ServerProcess([f"--model_base_path={tmp_path / 'hp'}", "--model_name=hp"], model_name="hp",
                       rest=True) as server:
        addresses = listening_addresses(pids_running(f"--model_base_path={tmp_path / 'hp'}"))
        assert {int(a.rsplit(":", 1)[1]) for a in addresses} >= {int(server.grpc_port), int(server.rest_port)}
        assert [a for a in addresses if not _is_loopback(a)] == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_beam_loopback_worker_pool_listens_on_loopback_only():
    # Beam comes with the pipeline extra (tfmodels[pipeline]); the newest-end venv has no pipeline.
    worker_pool_main = pytest.importorskip("apache_beam.runners.worker.worker_pool_main",
                                           reason="apache_beam (tfmodels[pipeline]) is not installed")

    from tfx_pipeline.beam_clusters import worker_pool_on_loopback

    with worker_pool_on_loopback():
        address, server = worker_pool_main.BeamFnExternalWorkerPoolServicer.start()
    try:
        port = int(address.rsplit(":", 1)[1])
        ours = [a for a in listening_addresses(_this_process()) if a.endswith(f":{port}")]
        assert ours and all(_is_loopback(a) for a in ours), ours
    finally:
        server.stop(0)
    # Beam's own default, outside a local cluster, is every interface: what the patch changes.
    address, server = worker_pool_main.BeamFnExternalWorkerPoolServicer.start()
    try:
        port = int(address.rsplit(":", 1)[1])
        theirs = [a for a in listening_addresses(_this_process()) if a.endswith(f":{port}")]
        assert theirs and not all(_is_loopback(a) for a in theirs)
    finally:
        server.stop(0)
