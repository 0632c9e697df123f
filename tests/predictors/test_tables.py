"""Benchmark tables: encodings, columns, genotypes, MACs, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import cosearch
from cosearch.errors import ConfigError
from cosearch.hwmodels.layers import extract_layers
from cosearch.predictors import encode_genotypes, load_table
from cosearch.predictors._fbnet import BLOCK_NAMES, N_LAYERS


def test_tiny_table(tiny_nb201_csv) -> None:
    t = load_table(tiny_nb201_csv, "nb201")
    assert len(t) == 120 and t.features.shape == (120, 62)
    assert t.latency_columns == tuple(f"lat_dev{j}" for j in range(6))
    assert "cifar10_test_acc" in t.columns and "arch_str" not in t.columns
    assert t.latencies().shape == (120, 6)
    assert t.latencies(["lat_dev2"]).shape == (120, 1)
    # two one-hots of 6 edges x 5 ops: each row has 6 ones in each block
    assert (t.features[:, :30].sum(axis=1) == 6).all()
    assert (t.features[:, 30:60].sum(axis=1) == 6).all()
    np.testing.assert_array_equal(t.features[:, 60], t.degenerate)
    space = cosearch.get_space("nb201")
    frame = pd.read_csv(tiny_nb201_csv)
    assert [space.to_string(g) for g in t.genotypes] == list(frame["arch_str"])
    features, names = encode_genotypes("nb201", t.genotypes[:7])
    np.testing.assert_array_equal(features, t.features[:7])
    assert names == t.feature_names
    with pytest.raises(ConfigError, match="no numeric column 'lat_x'.*lat_dev0"):
        t.column("lat_x")


def test_errors(tmp_path, tiny_nb201_csv) -> None:
    with pytest.raises(ConfigError, match="no table reader for space 'darts'"):
        load_table(tiny_nb201_csv, "darts")
    with pytest.raises(ConfigError, match="cannot read table"):
        load_table(tmp_path / "missing.csv", "nb201")
    with pytest.raises(ConfigError, match="lacks the column 'op_idx'"):
        load_table(tiny_nb201_csv, "fbnet")
    bad = tmp_path / "bad.csv"
    bad.write_text("arch_str,lat_a\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,1\nxyz,2\n")
    with pytest.raises(ConfigError, match="row 1: nb201 arch string 'xyz'"):
        load_table(bad, "nb201")
    fb = tmp_path / "fb.csv"
    fb.write_text("op_idx,lat_a\n" + "-".join(["9"] * 22) + ",1\n")
    with pytest.raises(ConfigError, match="row 0: fbnet op_idx must be 22 ints in"):
        load_table(fb, "fbnet")
    with pytest.raises(ConfigError, match="no table encoding for space"):
        encode_genotypes("darts", [])


def test_nb201_table(nb201_csv) -> None:
    t = load_table(nb201_csv, "nb201")
    assert t.features.shape == (15_625, 62)
    assert len(t.latency_columns) == 21
    # cells whose output is disconnected from the input: every near-zero pixel3 row is one
    assert t.degenerate.sum() == 341
    pixel3 = t.column("lat_pixel3")
    assert t.degenerate[pixel3 < 1].all() and (pixel3 < 1).sum() == 283
    # MACs equal the sum over the layers of cosearch's own network
    space = cosearch.get_space("nb201")
    for i in np.random.default_rng(0).choice(len(t), 3, replace=False):
        layers = extract_layers(space.build(t.genotypes[i]).onnx())
        assert t.macs[i] == sum(la.macs for la in layers)


def test_fbnet_table(fbnet_csv) -> None:
    t = load_table(fbnet_csv, "fbnet")
    assert t.features.shape == (5000, N_LAYERS * 9 + N_LAYERS + 1)
    assert len(t.latency_columns) == 21
    # the op_idx -> block name order matches the table's own `ops` column on every row
    frame = pd.read_csv(fbnet_csv)
    names = ["|".join(BLOCK_NAMES[o] for o in g["op_idx"]) for g in t.genotypes]
    assert names == list(frame["ops"])
    assert (t.features[:, : N_LAYERS * 9].sum(axis=1) == N_LAYERS).all()
    assert (t.macs > 0).all() and not t.degenerate.any()


@pytest.mark.slow
def test_ofa_table(ofa_csv) -> None:
    t = load_table(ofa_csv, "ofa_mbv3")
    assert t.features.shape == (5000, 157)
    assert len(t.latency_columns) == 9
    space = cosearch.get_space("ofa_mbv3")
    layers = extract_layers(space.build(t.genotypes[0]).onnx())
    assert t.macs[0] == sum(la.macs for la in layers)
    features, _ = encode_genotypes("ofa_mbv3", t.genotypes[:4])
    np.testing.assert_array_equal(features, t.features[:4])
