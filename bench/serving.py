"""Benchmark: the serving.server model server against direct in-process calls of the same SavedModel signature.

One run measures, on one SavedModel -- an MLP built here, 1024 -> 4096 x 4 -> 16 (55M parameters, about half of
BERT-base), so that as with a real model the model, not the ~1-2 ms of Python gRPC overhead, dominates a batch-1
call (with a toy model such as half_plus_two the overhead is the whole latency and the ratio is far above 1):
  - latency at batch 1: p50/p99 of sequential single-row calls, direct vs. one gRPC client;
  - throughput: direct calls one at a time vs. 16 concurrent gRPC clients against the server with batching on;
  - REST: p50/p99 of sequential batch-1 Predicts on one kept-alive HTTP/1.1 connection, and a burst of 200
    connections opened at once, each sending one status request (`burst_200_failed`: those not answered 200).
The server runs in its own process (`python -m serving.server`, via serving.process.ServerProcess), as in
deployment. The last line printed is one JSON object with `latency_ratio_p50` (server/direct),
`throughput_ratio` (server/direct), `rest_keepalive_p50_ms` and `burst_200_failed`.

    .venv/bin/python bench/serving.py [--clients 16] [--requests 600] [--hidden 4096 --layers 4]
"""

import argparse
import http.client
import json
import os
import socket
import sys
import tempfile
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from serving.client import GrpcClient  # noqa: E402
from serving.process import ServerProcess  # noqa: E402

MODEL_NAME = "mlp"


class MLP(tf.Module):
    def __init__(self, inputs: int, hidden: int, layers: int, outputs: int):
        super().__init__()
        rng = np.random.default_rng(0)
        sizes = [inputs] + [hidden] * layers + [outputs]
        self.weights = [tf.Variable(rng.normal(0, 1 / np.sqrt(a), (a, b)).astype(np.float32))
                        for a, b in zip(sizes, sizes[1:], strict=False)]

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)])
    def predict(self, x):
        for w in self.weights[:-1]:
            x = tf.nn.relu(tf.matmul(x, w))
        return {"y": tf.matmul(x, self.weights[-1])}


def build_model(base: str, args) -> tuple:
    """Save the MLP as version 1 under base/mlp; returns (version path, parameter count)."""
    module = MLP(args.inputs, args.hidden, args.layers, 16)
    path = os.path.join(base, MODEL_NAME, "1")
    tf.saved_model.save(module, path, signatures={"serving_default": module.predict})
    return path, sum(int(np.prod(w.shape)) for w in module.weights)


def percentiles(seconds):
    ms = np.asarray(seconds) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def start_server(base: str, params_file: str) -> ServerProcess:
    """`python -m serving.server` with batching on and REST, in its own process, once the model is AVAILABLE."""
    return ServerProcess([f"--model_name={MODEL_NAME}", f"--model_base_path={os.path.join(base, MODEL_NAME)}",
                          "--enable_batching", f"--batching_parameters_file={params_file}",
                          "--file_system_poll_wait_seconds=0"], model_name=MODEL_NAME, rest=True).start()


def rest_keepalive_latencies(port: int, rows, requests: int):
    """Batch-1 REST Predicts one after another on one kept-alive connection; raises on any non-200."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    path = f"/v1/models/{MODEL_NAME}:predict"
    bodies = [json.dumps({"instances": [row.tolist()]}).encode() for row in rows]
    seconds = []
    try:
        for i in range(requests):
            start = time.perf_counter()
            connection.request("POST", path, body=bodies[i % len(bodies)],
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            data = response.read()
            seconds.append(time.perf_counter() - start)
            if response.status != 200:
                raise RuntimeError(f"REST predict answered {response.status}: {data[:200]!r}")
    finally:
        connection.close()
    return seconds


def connection_burst(port: int, connections: int = 200) -> int:
    """Open `connections` TCP connections at once, then send one status request on each; returns how many
    were refused, reset, or not answered 200."""
    request = f"GET /v1/models/{MODEL_NAME} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    failed = [0]
    lock = threading.Lock()
    barrier = threading.Barrier(connections)

    def one():
        try:
            barrier.wait(timeout=60)
            with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
                s.sendall(request)
                data = b""
                while chunk := s.recv(65536):
                    data += chunk
            ok = data.startswith(b"HTTP/1.1 200")
        except (OSError, threading.BrokenBarrierError):
            ok = False
        if not ok:
            with lock:
                failed[0] += 1

    threads = [threading.Thread(target=one) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return failed[0]


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def measure_latency(direct, client, rows, requests):
    """Batch-1 latencies, direct and through the server, interleaved call by call so that both see the same
    background load (the machine is shared)."""
    direct_s, server_s = [], []
    for i in range(requests):
        row = rows[i % len(rows)][None]
        direct_s.append(timed(lambda row=row: direct(row)))
        server_s.append(timed(lambda row=row: client.predict(MODEL_NAME, {"x": row})))
    return direct_s, server_s


def server_throughput(port, rows, requests, clients):
    """Requests/s of `clients` concurrent gRPC clients sending batch-1 requests; also returns the errors."""
    per_client = max(1, requests // clients)
    errors = []

    def worker(index):
        with GrpcClient(f"127.0.0.1:{port}", timeout=60, max_attempts=1) as own:
            for i in range(per_client):
                try:
                    own.predict(MODEL_NAME, {"x": rows[(index + i) % len(rows)][None]})
                except Exception as e:  # counted; the run reports them and exits non-zero
                    errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    elapsed = timed(lambda: ([t.start() for t in threads], [t.join() for t in threads]))
    return (per_client * clients - len(errors)) / elapsed, errors


def direct_throughput(direct, rows, requests):
    """Requests/s of direct calls one at a time."""
    return requests / timed(lambda: [direct(rows[i % len(rows)][None]) for i in range(requests)])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--requests", type=int, default=600, help="requests per measurement")
    p.add_argument("--inputs", type=int, default=1024)
    p.add_argument("--hidden", type=int, default=4096)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--max_batch_size", type=int, default=16)
    p.add_argument("--batch_timeout_micros", type=int, default=0)
    p.add_argument("--num_batch_threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=3, help="alternating direct/server throughput rounds")
    args = p.parse_args(argv)

    rows = np.random.default_rng(1).normal(size=(64, args.inputs)).astype(np.float32)
    with tempfile.TemporaryDirectory() as base:
        path, params = build_model(base, args)
        batching = (f"max_batch_size {{ value: {args.max_batch_size} }}\n"
                    f"batch_timeout_micros {{ value: {args.batch_timeout_micros} }}\n"
                    f"num_batch_threads {{ value: {args.num_batch_threads} }}\n"
                    f"max_enqueued_batches {{ value: {args.clients} }}\n")
        params_file = os.path.join(base, "batching_parameters.txt")
        with open(params_file, "w") as f:
            f.write(batching)
        signature = tf.saved_model.load(path).signatures["serving_default"]

        def direct(batch):
            return signature(x=tf.constant(batch))["y"].numpy()

        server = start_server(base, params_file)
        port = server.grpc_port
        try:
            with GrpcClient(f"127.0.0.1:{port}", timeout=60) as client:
                for row in rows[:20]:  # warm up both paths
                    direct(row[None])
                    client.predict(MODEL_NAME, {"x": row[None]})
                direct_latencies, server_latencies = measure_latency(direct, client, rows, args.requests)
            # throughput in alternating rounds, so that load from other processes hits both sides alike
            direct_rates, server_rates, errors = [], [], []
            for _ in range(args.rounds):
                direct_rates.append(direct_throughput(direct, rows, args.requests // args.rounds))
                rate, round_errors = server_throughput(port, rows, args.requests // args.rounds, args.clients)
                server_rates.append(rate)
                errors += round_errors
            direct_rps, server_rps = float(np.mean(direct_rates)), float(np.mean(server_rates))
            rest_keepalive_latencies(server.rest_port, rows, 20)  # warm-up
            rest_latencies = rest_keepalive_latencies(server.rest_port, rows, args.requests)
            burst_failed = connection_burst(server.rest_port, 200)
        finally:
            server.stop()
    d50, d99 = percentiles(direct_latencies)
    s50, s99 = percentiles(server_latencies)
    print(f"model: MLP {args.inputs}->{args.hidden}x{args.layers}->16, {params / 1e6:.1f}M params; "
          f"CPUs: {os.cpu_count()}")
    print(f"batch-1 latency  direct p50 {d50:.2f} ms p99 {d99:.2f} ms | server p50 {s50:.2f} ms p99 {s99:.2f} ms")
    r50, r99 = percentiles(rest_latencies)
    print(f"REST keep-alive  p50 {r50:.2f} ms p99 {r99:.2f} ms | 200-connection burst: {burst_failed} failed")
    print(f"throughput       direct {direct_rps:.0f} req/s (one at a time) | server {server_rps:.0f} req/s "
          f"({args.clients} clients, batching, {len(errors)} errors)")
    result = {
        "model": f"mlp_{args.inputs}_{args.hidden}x{args.layers}", "params": params, "clients": args.clients,
        "requests": args.requests, "batching": {"max_batch_size": args.max_batch_size,
                                               "batch_timeout_micros": args.batch_timeout_micros,
                                               "num_batch_threads": args.num_batch_threads},
        "direct_p50_ms": round(d50, 3), "direct_p99_ms": round(d99, 3),
        "server_p50_ms": round(s50, 3), "server_p99_ms": round(s99, 3),
        "direct_rps": round(direct_rps, 1), "server_rps": round(server_rps, 1), "errors": len(errors),
        "latency_ratio_p50": round(s50 / d50, 3), "latency_ratio_p99": round(s99 / d99, 3),
        "throughput_ratio": round(server_rps / direct_rps, 3),
        "rest_keepalive_p50_ms": round(r50, 3), "rest_keepalive_p99_ms": round(r99, 3),
        "burst_200_failed": burst_failed,
    }
    print(json.dumps(result))
    return 0 if not errors and not burst_failed else 1


if __name__ == "__main__":
    sys.exit(main())
