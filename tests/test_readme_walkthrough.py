"""The README's "Your own data" walkthrough, run as written (issue 33): its code blocks in order, in one shell.

Python blocks run with this interpreter, shell blocks in the same bash process (the server the second block starts
in the background is the job the last block kills). Only the ports change: 8500/8501 become free ones, as tests
run side by side.
"""

import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
SECTION = "### Your own data"
MARKER = "=== block {} ==="


def walkthrough_blocks():
    """[(language, code)] of the section's fenced blocks, in order."""
    with open(README, encoding="utf-8") as f:
        text = f.read()
    start = text.index(SECTION)
    end = text.index("\n#", start + len(SECTION))
    return re.findall(r"```(python|bash)\n(.*?)```", text[start:end], flags=re.S)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_section_fine_tunes_exports_serves_and_queries_in_order():
    assert [language for language, _ in walkthrough_blocks()] == ["python", "bash", "python", "bash"]


@pytest.mark.e2e
def test_your_own_data_walkthrough_runs_as_written(tmp_path):
    grpc_port, rest_port = free_port(), free_port()
    lines = ["set -euo pipefail"]
    for index, (language, code) in enumerate(walkthrough_blocks()):
        code = code.replace("8500", str(grpc_port)).replace("8501", str(rest_port))
        lines.append(f"echo '{MARKER.format(index)}'")
        if language == "python":
            (tmp_path / f"block_{index}.py").write_text(code, encoding="utf-8")
            lines.append(f"{sys.executable} block_{index}.py")
        else:
            lines.append(code)
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(["bash", "-c", "\n".join(lines)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=600)
    finally:  # the background server, whatever happened
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    (tmp_path / "output.txt").write_text(output, encoding="utf-8")
    assert process.returncode == 0, output[-5000:]
    outputs = re.split(r"=== block \d ===\n", output)[1:]

    # Fine-tune: the held-out accuracy beats always answering the majority label of those 150 rows.
    accuracy = float(re.search(r"held out: \{.*'\w*accuracy': (?:np\.float\d+\()?([\d.]+)", outputs[0]).group(1))
    with open(tmp_path / "reviews.csv", newline="", encoding="utf-8") as f:
        test_labels = np.array([int(row["label"]) for row in csv.DictReader(f)][450:])
    majority = max(test_labels.mean(), 1 - test_labels.mean())
    assert accuracy > majority + 0.05, (accuracy, majority)
    assert os.path.isfile(tmp_path / "models" / "reviews" / "1" / "saved_model.pb")

    # REST and the stock gRPC client get the same answers from the served model.
    # The server's log lines share the shell's output; the answer is the JSON object after them.
    rest, _ = json.JSONDecoder().raw_decode(outputs[1], re.search(r'\{\s*"predictions"', outputs[1]).start())
    rest = rest["predictions"]
    assert [p["label_name"] for p in rest] == ["positive", "negative"], rest
    labels, probabilities = re.search(r"\[(b'.*?)\] \[\[(.*?)\]\]", outputs[2], flags=re.S).groups()
    assert re.findall(r"b'(\w+)'", labels) == [p["label_name"] for p in rest]
    grpc_probabilities = np.array([float(v) for v in re.findall(r"[-\d.e]+", probabilities)]).reshape(2, 2)
    np.testing.assert_allclose(grpc_probabilities, [p["probabilities"] for p in rest], atol=1e-4)
