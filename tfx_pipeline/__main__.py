"""`python -m tfx_pipeline run|compile`: run the pipeline on a folder of CSVs (default: IMDB), or compile it.

Exit status of `run`: 0 when a model was blessed, pushed and answered a request from a fresh server process;
2 when ExampleValidator found data anomalies (nothing trained); 3 when the model was not blessed (nothing
pushed); 1 on any other failure (a wrong flag value included).
"""

import sys
import time

from tfx_pipeline.cli import (
    EXIT_FAILED,
    EXIT_OK,
    ArgumentParser,
    add_pipeline_args,
    check_args,
    config_from_args,
    finish,
    quiet_logs,
    run_and_summarise,
)

SAMPLE_COUNT = 4


def cmd_run(args) -> int:
    from tfx_pipeline import token_classification
    from tfx_pipeline.infra_validation import (
        InfraValidationError,
        query_pushed_model,
        query_pushed_tagger,
    )

    start = time.monotonic()
    config = config_from_args(args)
    print(f"tfx_pipeline: data {config.data_root}, encoder {config.encoder}, {config.train_steps} steps "
          f"x batch {config.batch_size}, seq {config.max_seq_length}, runner {args.runner}", flush=True)
    outcome = run_and_summarise(config, args.runner)
    result = outcome.as_dict()
    if outcome.exit_code != EXIT_OK or args.skip_infra_validation:
        return finish(result, outcome.exit_code, args.summary_json, start)
    texts = args.sample_text or _sample_texts(args, config)
    try:
        if config.task == token_classification.TASK:
            answers = query_pushed_tagger(config.model_base_path(), config.model_name, texts)
        else:
            answers = query_pushed_model(config.model_base_path(), config.model_name, config.text_features[0],
                                         texts)
    except InfraValidationError as e:
        print(f"INFRA-VALIDATION FAILED: {e}", file=sys.stderr)
        return finish(result, EXIT_FAILED, args.summary_json, start)
    if config.task == token_classification.TASK:
        print(f"Infra-validation: version {answers['version']} served by a fresh ModelServer process; "
              f"gRPC Predict on extract_entities ({len(texts)} texts) answered:")
        for text, entities in zip(texts, answers["entities"]):
            found = ", ".join(f"{e['text']!r}/{e['type']}" for e in entities) or "(no entity)"
            print(f"  {text[:60]!r}: {found}")
    else:
        print(f"Infra-validation: version {answers['version']} served by a fresh ModelServer process; "
              f"gRPC Predict ({len(texts)} texts) and Classify answered:")
        for text, label, probabilities in zip(texts, answers["labels"], answers["probabilities"]):
            print(f"  {label:>8}  p={max(probabilities):.3f}  {text[:90]}")
    result["answers"] = answers
    return finish(result, EXIT_OK, args.summary_json, start)


def _sample_texts(args, config) -> list:
    """Texts for the post-push requests: unseen IMDB reviews for the default classifier data, else the first
    texts of the data (for a tagger, its words joined by spaces)."""
    from tfx_pipeline import data

    if args.data_root is None and config.task == "classify":
        return data.heldout_imdb_reviews(SAMPLE_COUNT, skip_rows=args.imdb_rows)
    return data.sample_texts(config.data_root, config.text_features[0], SAMPLE_COUNT)


def cmd_compile(args) -> int:
    from tfx_pipeline import runners
    from tfx_pipeline.data_checks import DataError

    try:
        path = runners.compile_kubeflow_v2(config_from_args(args), args.output, image=args.image)
    except DataError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return EXIT_FAILED
    print(f"Kubeflow V2 pipeline spec written to {path}")
    return EXIT_OK


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m tfx_pipeline", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    run = commands.add_parser("run", help="run the pipeline (LocalDagRunner by default)",
                              description="Run the pipeline, then serve the pushed model once in a fresh process.")
    add_pipeline_args(run)
    run.add_argument("--runner", choices=("local", "beam"), default="local",
                     help="LocalDagRunner (local) or BeamDagRunner (beam)")
    run.add_argument("--skip-infra-validation", action="store_true",
                     help="do not serve the pushed model in a fresh process to check it answers")
    run.add_argument("--sample-text", action="append",
                     help="text for the post-push requests, repeatable (default: unseen IMDB reviews, or the "
                          "first texts of --data-root)")
    run.add_argument("--summary-json", help="also write the summary as JSON here (default: none)")
    run.set_defaults(handler=cmd_run)
    compile_ = commands.add_parser("compile", help="compile the pipeline for an orchestrator",
                                   description="Write the pipeline as an orchestrator's spec (nothing runs).")
    add_pipeline_args(compile_)
    compile_.add_argument("--engine", choices=("kubeflow-v2",), default="kubeflow-v2", help="orchestrator")
    compile_.add_argument("--output", required=True, help="the pipeline JSON file to write (required)")
    compile_.add_argument("--image", default="tfmodels-pipeline:latest",
                          help="container image with TFX and this package")
    compile_.set_defaults(handler=cmd_compile)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)
    quiet_logs(args, argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
