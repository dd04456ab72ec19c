"""The pipeline commands' flags: --help documents every flag and its default without TensorFlow's start-up
noise; a wrong value fails at once (exit 1) naming the flag."""

import os
import re
import subprocess
import sys

import pytest

from tfx_pipeline.__main__ import main

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOISE = ("cuFFT", "cuDNN", "cuBLAS", "absl::InitializeLog", "Compiled cluster using XLA")


def _flag_helps(help_text: str) -> dict:
    """`--flag` -> its help text, from argparse's "options:" section."""
    options = help_text[help_text.index("options:"):]
    blocks = re.split(r"\n  (?=-)", options)[1:]
    return {re.match(r"(-[-\w]+)", block).group(1): " ".join(block.split()) for block in blocks}


@pytest.mark.parametrize("command", [["-m", "tfx_pipeline", "run"], ["-m", "tfx_pipeline", "compile"],
                                     ["-m", "tfx_pipeline.demo"]])
def test_help_documents_every_flag_and_its_default_without_tensorflow_noise(command):
    env = dict(os.environ, PYTHONPATH=REPO)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    result = subprocess.run([sys.executable, *command, "--help"], capture_output=True, text=True, timeout=120,
                            env=env, cwd=REPO)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    for noise in NOISE:
        assert noise not in output
    helps = _flag_helps(result.stdout)
    assert "--train-steps" in helps and "--min-accuracy" in helps and "--verbose" in helps
    for flag, text in helps.items():
        if flag in ("-h", "--verbose", "--skip-infra-validation", "--reuse") or "(required)" in text:
            continue  # on/off switches, and flags with no default
        assert "default" in text, (flag, text)
    assert "(default: 0.6)" in helps.get("--min-accuracy", "") or "(default: 0.7)" in helps["--min-accuracy"]


def test_help_does_not_import_tensorflow():
    script = ("import sys\nfrom tfx_pipeline.__main__ import main\n"
              "try:\n    main(['run', '--help'])\nexcept SystemExit:\n    pass\n"
              "print('tensorflow' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, PYTHONPATH=REPO), cwd=REPO)
    assert result.stdout.strip().splitlines()[-1] == "False", result.stdout + result.stderr


@pytest.mark.parametrize("flags, named", [
    (["--train-steps", "0"], "--train-steps"),
    (["--batch-size", "-4"], "--batch-size"),
    (["--min-accuracy", "7"], "--min-accuracy"),
    (["--learning-rate", "0"], "--learning-rate"),
    (["--data-root", "/no/such/folder"], "--data-root"),
    (["--encoder", "no-such-encoder"], "--encoder"),
    (["--beam-arg", "direct_num_workers=2"], "--beam-arg"),
    (["--precision", "fp8"], "--precision"),
    (["--class-name", "only-one"], "--class-name"),
    (["--text-feature", "a", "--text-feature", "b", "--text-feature", "c"], "--text-feature"),
    (["--task", "ner"], "--task"),
    (["--task", "token_classification", "--input-format", "tfrecord", "--data-root", "."], "--tag"),
    (["--task", "translate", "--encoder", "minilm"], "--encoder"),
    (["--task", "span_qa", "--encoder", "small"], "--encoder"),
    (["--task", "translate", "--source-vocab", __file__], "--source-vocab/--target-vocab"),
    (["--task", "translate", "--input-format", "tfrecord", "--data-root", "."], "--source-vocab"),
    (["--task", "translate", "--source-vocab", "/no/such/vocab.txt"], "--source-vocab"),
    (["--task", "translate", "--min-bleu", "250"], "--min-bleu"),
    (["--quantize", "int4"], "--quantize"),
    (["--distill-into", "0"], "--distill-into"),
    (["--task", "span_qa", "--quantize", "int8"], "--distill-into/--quantize"),
    (["--distill-steps", "5"], "--distill-steps"),
])
def test_a_wrong_flag_value_fails_at_once_naming_the_flag(flags, named, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--root", str(tmp_path), *flags])
    assert exit_info.value.code == 1  # 2 means "data anomalies" for these commands
    assert f"argument {named}" in capsys.readouterr().err
    assert not os.listdir(tmp_path)  # nothing started


def test_help_shows_the_defaults_it_used_to_hide():
    """Issue 33 point 5: `--root` and `--strategy` said "default" in their text, so argparse's default was never
    appended; a required flag showed "(default: None)"."""
    from tfx_pipeline.__main__ import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    run, compile_ = (_flag_helps(commands[name].format_help()) for name in ("run", "compile"))
    assert "(default: artifacts/pipeline)" in run["--root"]
    assert "(default: default)" in run["--strategy"]
    assert "(required)" in compile_["--output"] and "default" not in compile_["--output"]
