"""`python -m tfx_pipeline run|compile`: run the pipeline on a folder of CSVs (default: IMDB), or compile it.

Exit status of `run`: 0 when a model was blessed, pushed and answered a request from a fresh server process;
2 when ExampleValidator found data anomalies (nothing trained); 3 when the model was not blessed (nothing
pushed); 1 on any other failure (a wrong flag value included).
"""

import dataclasses
import sys
import time

from tfx_pipeline.cli import (
    EXIT_FAILED,
    EXIT_OK,
    ArgumentParser,
    add_pipeline_args,
    add_runner_args,
    check_args,
    config_from_args,
    finish,
    infra_validate,
    positive_int,
    quiet_logs,
    run_and_summarise,
    runner_master,
    sample_requests,
    stop_cleanly_on_sigterm,
)
from tfx_pipeline.data_checks import DataError


def cmd_run(args) -> int:
    start = time.monotonic()
    try:
        config = config_from_args(args)  # reads the data when the options derive from it (e.g. a tag set)
    except DataError as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return finish({}, EXIT_FAILED, args.summary_json, start)
    print(f"tfx_pipeline: task {config.task}, data {config.data_root}, {config.options.summary()}, "
          f"{config.train_steps} steps x batch {config.batch_size}, seq {config.max_seq_length}, runner "
          f"{args.runner}", flush=True)
    outcome = run_and_summarise(config, args.runner, runner_master(args))
    result = outcome.as_dict()
    if outcome.exit_code != EXIT_OK or args.skip_infra_validation:
        return finish(result, outcome.exit_code, args.summary_json, start)
    code, result["answers"] = infra_validate(config, sample_requests(args, config))
    return finish(result, code, args.summary_json, start)


def cmd_compile(args) -> int:
    from tfx_pipeline import runners

    try:
        config = config_from_args(args)
        if args.vertex_project or args.vertex_region:
            from tfx_pipeline.pipeline import VertexTraining

            config = dataclasses.replace(config, vertex_training=VertexTraining(
                project=args.vertex_project, region=args.vertex_region, image=args.image,
                workers=args.vertex_workers, machine_type=args.vertex_machine_type))
        path = runners.compile_kubeflow_v2(config, args.output, image=args.image)
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
    add_runner_args(run)
    run.add_argument("--skip-infra-validation", action="store_true",
                     help="do not serve the pushed model in a fresh process to check it answers")
    run.add_argument("--sample-text", action="append",
                     help="text for the post-push requests, repeatable (default: unseen IMDB reviews, or the "
                          "first texts of the data; span_qa always sends the data's first questions)")
    run.add_argument("--summary-json", help="also write the summary as JSON here (default: none)")
    run.set_defaults(handler=cmd_run)
    compile_ = commands.add_parser("compile", help="compile the pipeline for an orchestrator",
                                   description="Write the pipeline as an orchestrator's spec (nothing runs).")
    add_pipeline_args(compile_)
    compile_.add_argument("--engine", choices=("kubeflow-v2",), default="kubeflow-v2", help="orchestrator")
    compile_.add_argument("--output", required=True, help="the pipeline JSON file to write (required)")
    compile_.add_argument("--image", default="tfmodels-pipeline:latest",
                          help="container image with TFX and this package")
    compile_.add_argument("--vertex-project", help="train on Vertex AI Training in this Google Cloud project "
                          "(with --vertex-region; default: the Trainer trains in its own pipeline step)")
    compile_.add_argument("--vertex-region", help="the Vertex AI region, e.g. us-central1")
    compile_.add_argument("--vertex-workers", type=positive_int, default=1,
                          help="Vertex AI training replicas: a chief pool of 1 and a worker pool of the rest, each "
                               "with TF_CONFIG; more than 1 trains with --strategy multi_worker")
    compile_.add_argument("--vertex-machine-type", default="n1-standard-8", help="each replica's machine type")
    compile_.set_defaults(handler=cmd_compile)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)
    if args.command == "compile" and bool(args.vertex_project) != bool(args.vertex_region):
        parser.error("argument --vertex-project/--vertex-region: Vertex AI training needs both")
    quiet_logs(args, argv)
    return args.handler(args)


if __name__ == "__main__":
    stop_cleanly_on_sigterm()
    sys.exit(main())
