"""nb201 against the published NAS-Bench-201 table: every arch string, the accuracy lookup."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest

from cosearch.errors import ConfigError
from cosearch.spaces.nb201 import NB201Space, benchmark_accuracy

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
TABLE = SHARED / "nb201" / "nb201_accuracy_latency.csv"
SHIPPED = Path(__file__).resolve().parents[2] / "spaces" / "data" / "nb201_accuracy.csv.gz"
needs_shared = pytest.mark.skipif(
    not TABLE.is_file(), reason=f"shared reference data not found at {TABLE}"
)

BEST = {  # NAS-Bench-201 index -> (dataset, published best test accuracy, percent)
    6111: ("cifar10", 94.37),
    9930: ("cifar100", 73.51),
    857: ("imagenet16_120", 47.31),
}
IDX_6111 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"  # noqa: E501


def _shared_rows() -> list[dict[str, str]]:
    with open(TABLE, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@needs_shared
def test_every_arch_str_parses_round_trips_and_builds() -> None:
    space = NB201Space()
    rows = _shared_rows()
    assert len(rows) == 15_625
    digests = set()
    for row in rows:
        params = space.from_string(row["arch_str"])
        assert space.to_string(params) == row["arch_str"]
        digests.add(space.build(params).digest)
    # 8,765 canonical classes. NAS-Bench-201 reports 6,466 "unique" cells, a coarser notion:
    # its string form also treats skip_connect as the identity (conv(skip(x)) == conv(x)) and
    # compares the sums at each node as expressions. Our canonical form only drops dead edges
    # (none edges, edges out of zero nodes, edges into nodes that never reach the output),
    # maps the 341 cells with a disconnected output to one zero cell, and swaps nodes 1 and 2
    # when node 2 does not read node 1; it stays a labelled cell of the space.
    assert len(digests) == 8_765


@needs_shared
def test_shipped_table_matches_shared_data() -> None:
    rows = _shared_rows()
    with gzip.open(SHIPPED, "rt", newline="", encoding="utf-8") as fh:
        shipped = list(csv.DictReader(fh))
    assert list(shipped[0]) == ["arch_str", "cifar10", "cifar100", "imagenet16_120"]
    assert len(shipped) == len(rows)
    for ours, theirs in zip(shipped, sorted(rows, key=lambda r: int(r["idx"]))):
        assert ours["arch_str"] == theirs["arch_str"]
        for d in ("cifar10", "cifar100", "imagenet16_120"):
            assert ours[d] == theirs[f"{d}_test_acc"]


@needs_shared
@pytest.mark.parametrize("idx", sorted(BEST))
def test_published_best_accuracies(idx: int) -> None:
    dataset, acc = BEST[idx]
    row = next(r for r in _shared_rows() if int(r["idx"]) == idx)
    space = NB201Space()
    assert benchmark_accuracy(space.from_string(row["arch_str"]), dataset) == pytest.approx(
        acc, abs=0.005
    )


def test_lookup_without_shared_data() -> None:
    space = NB201Space()
    params = space.from_string(IDX_6111)
    assert space.benchmark_accuracy(params, "cifar10") == pytest.approx(94.37, abs=0.005)
    assert benchmark_accuracy(params, "nb201/cifar10", space=space) == pytest.approx(
        94.37, abs=0.005
    )
    # batch does not change the network, so the table still applies
    assert benchmark_accuracy(params, "cifar10", space=NB201Space(batch=8)) == pytest.approx(
        94.37, abs=0.005
    )


def test_lookup_is_by_exact_string_not_canonical_form() -> None:
    space = NB201Space()
    a = space.from_string(
        "|nor_conv_3x3~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"
    )
    b = space.from_string(
        "|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    )
    assert space.build(a).digest == space.build(b).digest
    assert benchmark_accuracy(a, "cifar10") != benchmark_accuracy(b, "cifar10")


def test_lookup_errors() -> None:
    params = NB201Space().from_string(IDX_6111)
    with pytest.raises(ConfigError, match="option 'channels' is 32"):
        benchmark_accuracy(params, "cifar10", space=NB201Space(channels=32))
    with pytest.raises(ConfigError, match="valid datasets: cifar10, cifar100, imagenet16_120"):
        benchmark_accuracy(params, "mnist")


def test_each_table_needs_the_network_it_was_trained_with() -> None:
    # ImageNet16-120 accuracies were paired with the 32x32, 10-class CIFAR-10 network (about
    # 4x its MACs), and the right network was refused
    params = NB201Space().from_string(IDX_6111)
    with pytest.raises(ConfigError, match=r"option 'input_size' is 32 .*has 16"):
        NB201Space().check_benchmark("nb201/imagenet16_120")
    with pytest.raises(ConfigError, match=r"option 'num_classes' is 10 .*has 100"):
        benchmark_accuracy(params, "cifar100", space=NB201Space())
    in16 = NB201Space(input_size=16, num_classes=120)
    in16.check_benchmark("nb201/imagenet16_120")
    assert in16.benchmark_accuracy(params, "imagenet16_120") == benchmark_accuracy(
        params, "imagenet16_120"
    )
    with pytest.raises(ConfigError, match="'input_size' is 16"):
        in16.check_benchmark("nb201/cifar10")
    NB201Space(num_classes=100, batch=4).check_benchmark("nb201/cifar100")
