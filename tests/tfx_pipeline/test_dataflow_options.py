"""The README's Dataflow command: its Beam arguments reach every Beam component and pass Beam's own Dataflow
validation, without submitting anything (no network: the two checks that call Google Cloud are stubbed)."""

import os
import re
import shlex

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "README.md")


def _readme_dataflow_beam_args():
    text = open(README, encoding="utf-8").read()
    command = re.search(r"### Dataflow\n\n```bash\n(.*?)```", text, re.S).group(1).replace("\\\n", " ")
    return [word[len("--beam-arg="):] for word in shlex.split(command) if word.startswith("--beam-arg=")]


def _validate(args):
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.options.pipeline_options_validator import PipelineOptionsValidator
    from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner

    return PipelineOptionsValidator(PipelineOptions(args), DataflowRunner()).validate()


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    from apache_beam.options.pipeline_options import GoogleCloudOptions

    # Both reach Google Cloud Storage: a soft-delete warning on the buckets, and a default bucket to create.
    monkeypatch.setattr(GoogleCloudOptions, "_warn_if_soft_delete_policy_enabled", lambda self, arg: None)
    monkeypatch.setattr(GoogleCloudOptions, "_create_default_gcs_bucket", lambda self: None)


def test_readme_dataflow_flags_validate_and_reach_the_pipeline(tmp_path):
    args = _readme_dataflow_beam_args()
    assert "--runner=DataflowRunner" in args and any(a.startswith("--setup_file=") for a in args)
    assert _validate(args) == []

    from tfx_pipeline.pipeline import PipelineConfig, create_pipeline

    data = tmp_path / "data"
    data.mkdir()
    (data / "reviews.csv").write_text("text,label\ngood,1\nbad,0\n")
    config = PipelineConfig(data_root=str(data), pipeline_root=str(tmp_path / "root"),
                            metadata_path=str(tmp_path / "m.sqlite"), serving_model_dir=str(tmp_path / "serving"),
                            beam_pipeline_args=args)
    assert create_pipeline(config).beam_pipeline_args == args


@pytest.mark.parametrize("change, error", [
    (("--project=my-project", "--project=My_Project"), "Invalid Project ID"),
    (("--temp_location=gs://my-bucket/tmp", "--temp_location=/local/tmp"), "temp_location"),
])
def test_a_wrong_dataflow_flag_is_named(change, error):
    old, new = change
    args = [new if arg == old else arg for arg in _readme_dataflow_beam_args()]
    assert new in args
    errors = _validate(args)
    assert any(error in message for message in errors), errors
