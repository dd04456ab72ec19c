"""`python -m serving.server`: flags, listening, answering, and a clean exit on SIGTERM."""

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
