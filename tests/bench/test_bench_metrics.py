"""Bench latency statistics and the environment record, on inputs with known answers."""

import numpy as np
import pytest

from fer_edge.bench.environment import collect_environment, parse_cpuinfo
from fer_edge.bench.latency import split_repeats
from fer_edge.bench.stats import difference, ratio
from fer_edge.timing import LatencyStats


def test_summary_of_known_samples():
    # 1..10 ms in ns: median 5.5, mean 5.5, p90 by linear interpolation 9.1.
    stats = LatencyStats.from_ns([i * 1_000_000 for i in range(10, 0, -1)])
    assert stats.count == 10 and stats.total_ms == pytest.approx(55.0)
    assert stats.median_ms == pytest.approx(5.5)
    assert stats.mean_ms == pytest.approx(5.5)
    assert stats.p90_ms == pytest.approx(9.1)
    assert (stats.min_ms, stats.max_ms) == (1.0, 10.0)
    assert stats.std_ms == pytest.approx(np.sqrt(8.25))


def test_median_resists_one_outlier_but_mean_does_not():
    stats = LatencyStats.from_ns([1_000_000] * 9 + [1_000_000_000])
    assert stats.median_ms == 1.0
    assert stats.mean_ms == pytest.approx(100.9)


def test_percentile_edges_and_errors():
    assert LatencyStats.from_ms([3.0]).p90_ms == 3.0
    # p90 of [0, 10] by linear interpolation: 9; of seconds [0, 0.01]: the same in ms.
    assert LatencyStats.from_ms([0.0, 10.0]).p90_ms == pytest.approx(9.0)
    assert LatencyStats.from_seconds([0.0, 0.01]).p90_ms == pytest.approx(9.0)
    # The loop's summary of a stage that never ran is all zeros; a bench that timed nothing fails.
    assert LatencyStats.from_seconds([]) == LatencyStats(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="no latency samples"):
        LatencyStats.from_ns([])


def test_ratio_and_difference_handle_missing_values():
    assert ratio(1.0, 4.0) == 0.25
    assert ratio(1.0, 0.0) is None
    assert ratio(None, 2.0) is None
    assert difference(0.6, 0.65) == pytest.approx(-0.05)
    assert difference(0.6, None) is None


def test_split_repeats_sums_to_repeats():
    assert split_repeats(10, 3) == [4, 3, 3]
    assert split_repeats(2, 5) == [1, 1]
    assert sum(split_repeats(201, 5)) == 201
    with pytest.raises(ValueError):
        split_repeats(0, 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: sse\n", "AMD EPYC 7B13"),
        ("processor\t: 0\nCPU implementer\t: 0x41\nCPU part\t: 0xd08\n", "Cortex-A72"),
        ("CPU part\t: 0xfff\n", "ARM part 0xfff"),
        ("Hardware\t: BCM2835\n", "BCM2835"),
        ("", ""),
    ],
)
def test_cpu_model_from_cpuinfo(text, expected):
    assert parse_cpuinfo(text) == expected


def test_environment_names_versions_without_importing_a_runtime():
    env = collect_environment()
    assert env.cores >= 1 and 1 <= env.usable_cores <= env.cores
    assert env.numpy == np.__version__
    assert env.cpu
    assert "numpy" in env.summary()


def test_noisy_rows_flag_a_wide_spread():
    from fer_edge.bench.latency import LatencyResult
    from fer_edge.bench.measure import noisy_rows
    from fer_edge.bench.results import ResultRow

    def row(samples_ms):
        stats = LatencyStats.from_ns([int(v * 1_000_000) for v in samples_ms])
        return ResultRow("m", "", "float32", "litert", "2", 1, 1, 1, LatencyResult(stats, stats))

    steady = row([1.0] * 10)
    busy = row([1.0] * 8 + [5.0, 9.0])
    assert noisy_rows([steady, busy]) == [busy]
