"""Training throughput benchmark: images/s per model, strategy and precision, side by side.

Every case is built once, warmed up for one epoch, then timed one epoch at a time in
interleaved rounds (see :mod:`fer_edge.train.throughput`); the report gives the median, the
spread and the ratio to the first case of each model, with the machine record and the load.

Usage (from the repository root, with the dev extra installed)::

    python benchmarks/train_throughput.py --models edge,resnet --precision float32,mixed \\
        --json benchmarks/results/train-throughput.json \\
        --markdown benchmarks/results/train-throughput.md
    # mirrored over two logical CPU devices (only shows the overhead on a CPU):
    python benchmarks/train_throughput.py --models edge --strategy one,mirrored --logical-cpus 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def _csv(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="edge,resnet", help="registry names, comma-separated")
    parser.add_argument("--precision", default="float32,mixed", help="float32 and/or mixed")
    parser.add_argument("--strategy", default="one", help="one and/or mirrored")
    parser.add_argument("--jit", action="store_true", help="also time an XLA twin of each case")
    parser.add_argument("--width", type=float, default=None, help="edge width (default: 1)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=25, help="batches per timed epoch")
    parser.add_argument("--rounds", type=int, default=5, help="timed epochs per case")
    parser.add_argument(
        "--logical-cpus", type=int, default=0, help="split the CPU into N logical devices"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="TensorFlow inter- and intra-op threads (0: one per core); 1 measures the work per "
        "image with the least noise on a shared machine",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the results as JSON")
    parser.add_argument("--markdown", type=Path, default=None, help="write the table as Markdown")
    return parser.parse_args(argv)


def _configure(logical_cpus: int, threads: int) -> None:
    # Must run before TensorFlow creates its devices, hence before any other TF call.
    from fer_edge.tfcompat import tf_and_keras

    tf, _ = tf_and_keras()
    if threads:
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    if logical_cpus > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(logical_cpus)]
        )


def markdown_table(results: list[Any]) -> str:
    """Return the results as a Markdown table."""
    lines = [
        "| model | precision | strategy | replicas | XLA | images/s (median) | min-max | x "
        "| images per CPU-s | x CPU |",
        "| --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        case = r.case
        opts = ",".join(f"{k}={v}" for k, v in case.model_options.items())
        lines.append(
            f"| {case.model}{f' ({opts})' if opts else ''} | {case.precision} | {case.strategy} "
            f"| {r.replicas} | {'yes' if case.jit else 'no'} | {r.median:.0f} "
            f"| {min(r.rounds):.0f}-{max(r.rounds):.0f} | {r.ratio:.2f}x "
            f"| {r.cpu_median:.0f} | {r.cpu_ratio:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table; return the exit code."""
    args = parse_args(argv)
    _configure(args.logical_cpus, args.threads)
    from fer_edge.atomic import write_json, write_text
    from fer_edge.bench.environment import collect_environment
    from fer_edge.runtime import load_average
    from fer_edge.train.precision import BF16_CPU_FLAGS, cpu_flags
    from fer_edge.train.throughput import ThroughputCase, measure_throughput

    cases = []
    for model in _csv(args.models):
        options = {"width": args.width} if model == "edge" and args.width else {}
        for strategy in _csv(args.strategy):
            for precision in _csv(args.precision):
                for jit in (False, True) if args.jit else (False,):
                    cases.append(ThroughputCase(model, precision, strategy, jit, options))
    environment = collect_environment().to_dict()
    environment["bf16_cpu_flags"] = sorted(cpu_flags() & BF16_CPU_FLAGS)
    print(f"{len(cases)} cases, load {environment['load_1m']}", file=sys.stderr)
    results = measure_throughput(
        cases,
        batch_size=args.batch_size,
        steps=args.steps,
        rounds=args.rounds,
        log=lambda line: print(line, file=sys.stderr),
    )
    load_after = load_average()
    table = markdown_table(results)
    print(table)
    print(f"load average (1 min): {environment['load_1m']} before, {load_after} after")
    if args.json:
        write_json(
            args.json,
            {
                "environment": environment,
                "load_1m_after": load_after,
                "config": {
                    "batch_size": args.batch_size,
                    "steps": args.steps,
                    "rounds": args.rounds,
                    "logical_cpus": args.logical_cpus,
                    "threads": args.threads or "one per core",
                    "data": "generated 48x48 faces through make_dataset, augmentation + erase 0.25",
                },
                "results": [r.to_dict() for r in results],
            },
        )
    if args.markdown:
        write_text(args.markdown, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
