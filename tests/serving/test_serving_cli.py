"""`python -m serving.server`: flags, listening, answering, and a clean exit on SIGTERM."""

import os

from serving_testlib import HALF_PLUS_TWO_VERSION, MODEL_NAME, start_cli_server

from serving.client import GrpcClient, RestClient
from serving.server import parse_args


def test_flags_match_tensorflow_model_server():
    args = parse_args(["--port=9000", "--rest_api_port=9001", "--model_name=m", "--model_base_path=/p",
                       "--enable_batching", "--file_system_poll_wait_seconds=5", "--enable_model_warmup=false"])
    assert (args.port, args.rest_api_port, args.model_name, args.model_base_path) == (9000, 9001, "m", "/p")
    assert args.enable_batching is True and args.enable_model_warmup is False
    assert args.file_system_poll_wait_seconds == 5 and args.host == "127.0.0.1"


def test_cli_serves_and_stops_on_sigterm(model_base):
    with start_cli_server(f"--model_name={MODEL_NAME}", f"--model_base_path={model_base}", "--enable_batching",
                          rest=True) as server:
        with GrpcClient(server.grpc_target) as client:
            assert client.predict(MODEL_NAME, {"x": [2.0]})["y"].tolist() == [3.0]
        assert RestClient(server.rest_url).status(MODEL_NAME)[0]["version"] == str(HALF_PLUS_TWO_VERSION)
    assert server.exit_code == 0
    assert "Shutting down" in server.log_tail()


def test_cli_fails_on_missing_base_path(tmp_path):
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-m", "serving.server", "--port=0", "--model_name=m",
                             f"--model_base_path={tmp_path / 'missing'}"], capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 1
    assert "Could not find base path" in result.stderr


def test_help_is_quiet_and_states_every_default():
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-m", "serving.server", "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and result.stderr == ""
    assert "tensorflow" not in result.stdout.lower().replace("tensorflow_model_server", "")
    from serving.flags import build_parser
    for action in build_parser()._actions:
        if action.dest != "help":
            assert action.help and "%(default)" not in action.help, action.dest
    text = " ".join(result.stdout.split())  # argparse wraps lines
    assert "(default: 8500)" in text and "(default: 33554432)" in text


def test_port_file_ready_path_and_grpc_health(model_base):
    import json
    import urllib.request

    import grpc
    with start_cli_server(f"--model_name={MODEL_NAME}", f"--model_base_path={model_base}",
                          "--enable_grpc_healthcheck_service", rest=True) as server:
        with open(server.log_path + ".ports.json") as f:
            ports = json.load(f)
        assert all(type(ports[key]) is int for key in ("grpc_port", "rest_port", "pid")), ports
        assert (ports["grpc_port"], ports["rest_port"], ports["pid"]) == (server.grpc_port, server.rest_port,
                                                                          server.pid)
        with urllib.request.urlopen(server.rest_url + "/v1/ready", timeout=10) as response:
            assert json.loads(response.read()) == {"ready": True}
        with grpc.insecure_channel(server.grpc_target) as channel:
            check = channel.unary_unary("/grpc.health.v1.Health/Check")
            assert check(b"", timeout=10) == b"\x08\x01"  # status: SERVING
            assert check(b"\x0a\x1ftensorflow.serving.ModelService", timeout=10) == b"\x08\x01"
            try:
                check(b"\x0a\x03foo", timeout=10)
                raise AssertionError("unknown service answered")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.NOT_FOUND
    assert server.exit_code == 0
    # a clean exit leaves no temporary log or port file behind, and the log is still readable
    assert not os.path.exists(server.log_path) and not os.path.exists(server.log_path + ".ports.json")
    assert "Running gRPC ModelServer" in server.log_tail()


def test_serving_names_match_the_export_contract():
    """serving/ may not import tfmodels, so it keeps its own copies of the names; they must agree."""
    from serving import inference, servable, warmup
    from tfmodels.export import signatures
    assert warmup.WARMUP_FILE == signatures.WARMUP_FILE
    assert servable.DEFAULT_SIGNATURE == signatures.DEFAULT_SIGNATURE
    assert inference.EXAMPLES_INPUT == signatures.EXAMPLES_INPUT
    assert inference.CLASSIFY_METHOD == signatures.CLASSIFY_METHOD_NAME
    assert (inference.CLASSIFY_INPUT, inference.CLASSIFY_OUTPUT_CLASSES, inference.CLASSIFY_OUTPUT_SCORES) == (
        signatures.CLASSIFY_INPUT, signatures.CLASSIFY_OUTPUT_CLASSES, signatures.CLASSIFY_OUTPUT_SCORES)


def test_server_process_starts_once_and_leaves_no_process(model_base):
    import os

    server = start_cli_server(f"--model_name={MODEL_NAME}", f"--model_base_path={model_base}",
                              "--file_system_poll_wait_seconds=0")
    pid = server.pid
    with server:  # entering a started ServerProcess must not start a second child
        assert server.pid == pid
    assert server.exit_code == 0
    try:
        os.kill(pid, 0)
        raise AssertionError(f"server process {pid} still runs")
    except ProcessLookupError:
        pass
