"""`python -m serving.server`: flags, listening, answering, and a clean exit on SIGTERM."""

import signal

from serving_testlib import HALF_PLUS_TWO_VERSION, MODEL_NAME, free_port, start_cli_server

from serving.client import GrpcClient, RestClient
from serving.server import parse_args


def test_flags_match_tensorflow_model_server():
    args = parse_args(["--port=9000", "--rest_api_port=9001", "--model_name=m", "--model_base_path=/p",
                       "--enable_batching", "--file_system_poll_wait_seconds=5", "--enable_model_warmup=false"])
    assert (args.port, args.rest_api_port, args.model_name, args.model_base_path) == (9000, 9001, "m", "/p")
    assert args.enable_batching is True and args.enable_model_warmup is False
    assert args.file_system_poll_wait_seconds == 5 and args.host == "127.0.0.1"


def test_cli_serves_and_stops_on_sigterm(model_base):
    rest_port = free_port()
    process, grpc_port = start_cli_server(f"--rest_api_port={rest_port}", f"--model_name={MODEL_NAME}",
                                          f"--model_base_path={model_base}", "--enable_batching")
    try:
        with GrpcClient(f"127.0.0.1:{grpc_port}") as client:
            assert client.predict(MODEL_NAME, {"x": [2.0]})["y"].tolist() == [3.0]
        assert RestClient(f"http://127.0.0.1:{rest_port}").status(MODEL_NAME)[0]["version"] == str(
            HALF_PLUS_TWO_VERSION)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    assert "Shutting down" in output


def test_cli_fails_on_missing_base_path(tmp_path):
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-m", "serving.server", "--port=0", "--model_name=m",
                             f"--model_base_path={tmp_path / 'missing'}"], capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 1
    assert "Could not find base path" in result.stderr
