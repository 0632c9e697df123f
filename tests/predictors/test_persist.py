"""Predictors in the store: save, load (refit or tensors), list, never unpickle; and the
evaluator's ``predictor:<id>`` sources."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
import sqlalchemy as sa

from cosearch.errors import ConfigError, StoreInputError
from cosearch.predictors._encodings import encode_genotypes_as
from cosearch.predictors.accuracy import EnsembleAccuracyPredictor, GPAccuracyPredictor
from cosearch.predictors.fewshot import FewShotLatencyPredictor
from cosearch.predictors.hybrid import HybridLatencyPredictor, analytical_features
from cosearch.predictors.latency import GBRTLatencyPredictor, GNNLatencyPredictor
from cosearch.predictors.persist import (
    delete_predictor,
    list_predictors,
    load_predictor,
    save_predictor,
)
from cosearch.predictors.tables import load_table
from cosearch.spaces.nb201 import NB201Space
from cosearch.store import open_store, schema

REF = {"source": "test"}


@pytest.fixture
def store(db_url):
    with open_store(db_url) as s:
        yield s


@pytest.fixture(scope="module")
def small_archs():
    space = NB201Space(channels=4, cells_per_stage=1, input_size=8)
    rng = np.random.default_rng(1)
    return [space.build(space.sample(rng)) for _ in range(10)]


def _paths_data(n: int = 60):
    space = NB201Space()
    rng = np.random.default_rng(0)
    genotypes = [space.sample(rng) for _ in range(n)]
    x = encode_genotypes_as("paths", "nb201", genotypes)
    y = 85 + 2 * x[:, -1] - 3 * x[:, 60] + rng.normal(0, 0.3, n)  # deep cells do better
    return genotypes, x, y


def test_refit_kinds_round_trip(store) -> None:
    _, x, y = _paths_data()
    cases = {
        "gp": GPAccuracyPredictor(n_restarts_optimizer=1),
        "ens": EnsembleAccuracyPredictor(n_members=3, max_iter=30),
        "gbrt": GBRTLatencyPredictor(max_iter=30),
    }
    for pid, est in cases.items():
        target = np.abs(y) if pid == "gbrt" else y
        est.fit(x[:40], target[:40])
        saved = save_predictor(
            store,
            pid,
            est,
            encoding="paths",
            space="nb201",
            target="cifar10",
            training_ref=REF,
            scores={"spearman": 0.9},
            X_train=x[:40],
            y_train=target[:40],
        )
        loaded = load_predictor(store, pid)
        assert loaded.kind == saved.kind and loaded.encoding == "paths"
        assert loaded.scores == {"spearman": 0.9} and loaded.training_ref == REF
        np.testing.assert_allclose(
            loaded.estimator.predict(x[40:]), est.predict(x[40:]), rtol=1e-9, atol=1e-9
        )
        if pid != "gbrt":
            s1 = est.predict(x[40:], return_std=True)[1]
            s2 = loaded.estimator.predict(x[40:], return_std=True)[1]
            np.testing.assert_allclose(s2, s1, rtol=1e-6, atol=1e-9)
    assert [r["predictor_id"] for r in list_predictors(store)] == ["gp", "ens", "gbrt"]


def test_hybrid_round_trip_from_features(store, small_archs) -> None:
    f = analytical_features(small_archs)
    y = 0.1 + 0.01 * f[:, 0] + 0.001 * f[:, 1]
    est = HybridLatencyPredictor().fit(small_archs[:6], y[:6])
    save_predictor(
        store,
        "hyb",
        est,
        encoding="analytical",
        space="nb201",
        target="lat",
        training_ref=REF,
        X_train=est.features(small_archs[:6]),
        y_train=y[:6],
    )
    loaded = load_predictor(store, "hyb")
    np.testing.assert_allclose(loaded.predict(small_archs[6:]), est.predict(small_archs[6:]))
    assert loaded.source == "predictor:hyb" and loaded.fidelity == 0.5


def test_torch_kinds_round_trip(store, small_archs, tiny_nb201_csv) -> None:
    gnn = GNNLatencyPredictor(hidden=8, layers=1, epochs=2).fit(small_archs[:6], np.arange(1, 7))
    save_predictor(store, "gnn", gnn, encoding="graph", space=None, target="lat", training_ref=REF)
    loaded = load_predictor(store, "gnn")
    np.testing.assert_allclose(loaded.predict(small_archs[6:]), gnn.predict(small_archs[6:]))

    table = load_table(tiny_nb201_csv, "nb201")
    lat = table.latencies()
    for embedding in ("none", "mlp"):
        meta = FewShotLatencyPredictor(embedding=embedding, epochs=2, meta_episodes=1)
        meta.fit(table.features, lat[:, :5])
        adapted = meta.adapt(table.features[:10], lat[:10, 5])
        for pid, est in ((f"meta-{embedding}", meta), (f"dev5-{embedding}", adapted)):
            save_predictor(
                store, pid, est, encoding="table", space="nb201", target="x", training_ref=REF
            )
            back = load_predictor(store, pid).estimator
            assert type(back) is type(est)
            np.testing.assert_allclose(back.predict(table.features), est.predict(table.features))
    with pytest.raises(ConfigError, match="devices at once"):
        load_predictor(store, "meta-none").predict(small_archs[:2])
    assert load_predictor(store, "dev5-none").predict(small_archs[:2]).shape == (2,)
    back = load_predictor(store, "dev5-mlp").estimator
    np.testing.assert_allclose(
        back.predict(table.features, return_std=True)[1],
        adapted.predict(table.features, return_std=True)[1],
    )


def test_ids_duplicates_and_listing(store) -> None:
    _, x, y = _paths_data(20)
    est = GPAccuracyPredictor(n_restarts_optimizer=0).fit(x, y)
    kw = dict(encoding="paths", space="nb201", target="acc", training_ref=REF, X_train=x, y_train=y)
    save_predictor(store, "a", est, **kw)
    with pytest.raises(StoreInputError, match="already exists"):
        save_predictor(store, "a", est, **kw)
    save_predictor(store, "a", est, scores={"spearman": 0.5}, replace=True, **kw)
    assert load_predictor(store, "a").scores == {"spearman": 0.5}
    with pytest.raises(ConfigError, match="predictor id"):
        save_predictor(store, "bad id!", est, **kw)
    with pytest.raises(ConfigError, match="unknown predictor encoding"):
        save_predictor(store, "b", est, **{**kw, "encoding": "words"})
    with pytest.raises(ConfigError, match="cannot store"):
        save_predictor(store, "b", object(), **kw)
    with pytest.raises(ValueError, match="training X and y"):
        save_predictor(store, "b", est, **{**kw, "X_train": None})
    with pytest.raises(
        StoreInputError,
        match=r"no predictor 'zzz'.*predictors: a \(`cosearch predictor train --id zzz \.\.\.`",
    ):
        load_predictor(store, "zzz")
    (row,) = list_predictors(store)
    assert row["kind"] == "gp" and row["target"] == "acc" and "weights" not in row
    assert isinstance(row["params"]["kernel_theta"], list)
    assert delete_predictor(store, "a") and not delete_predictor(store, "a")


def test_weights_are_tensors_and_pickles_are_refused(store, tmp_path) -> None:
    import torch

    _, x, y = _paths_data(20)
    est = GPAccuracyPredictor(n_restarts_optimizer=0).fit(x, y)
    save_predictor(
        store, "g", est, encoding="paths", space="nb201", target="a", training_ref=REF,
        X_train=x, y_train=y,
    )  # fmt: skip
    t = schema.predictors
    with store.engine.connect() as conn:
        blob = conn.execute(sa.select(t.c.weights).where(t.c.predictor_id == "g")).scalar_one()
    tensors = torch.load(io.BytesIO(blob), weights_only=True)
    assert set(tensors) == {"train.X", "train.y"}
    assert all(isinstance(v, torch.Tensor) for v in tensors.values())

    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with store.engine.begin() as conn:
        conn.execute(
            t.update()
            .where(t.c.predictor_id == "g")
            .values(weights=pickle.dumps(Evil(), protocol=2))
        )
    # one clear line (exit 2), not torch's advice to load it with weights_only=False
    with pytest.raises(StoreInputError, match="not a plain set of tensors") as err:
        load_predictor(store, "g")
    assert not marker.exists() and "weights_only" not in str(err.value)
    with store.engine.begin() as conn:
        conn.execute(t.update().where(t.c.predictor_id == "g").values(weights=b"damaged"))
    with pytest.raises(StoreInputError, match="not a plain set of tensors"):
        load_predictor(store, "g")


def test_evaluator_predictor_sources(store, small_archs) -> None:
    from cosearch.evaluate import Evaluator
    from cosearch.spaces import get_hardware_space, get_space

    genotypes, x, y = _paths_data()
    gp = GPAccuracyPredictor(n_restarts_optimizer=0).fit(x, y)
    save_predictor(
        store, "acc", gp, encoding="paths", space="nb201", target="cifar10",
        training_ref=REF, scores={"spearman": 0.8}, X_train=x, y_train=y,
    )  # fmt: skip
    f = analytical_features(small_archs)
    lat = 0.5 + f[:, 0]
    hyb = HybridLatencyPredictor().fit(f, lat)
    save_predictor(
        store, "lat", hyb, encoding="analytical", space="nb201", target="lat_ms",
        training_ref=REF, X_train=f, y_train=lat,
    )  # fmt: skip
    net = get_space("nb201", channels=4, cells_per_stage=1, input_size=8)
    hw = get_hardware_space("systolic")
    ev = Evaluator(
        net, hw, accuracy="predictor:acc", cost="analytical:systolic", latency="predictor:lat",
        store=store,
    )  # fmt: skip
    assert "accuracy" in ev.metric_names()
    arch = small_archs[0]
    out = ev.evaluate(arch, hw.default()).metrics
    assert out["accuracy"].source == "predictor:acc" and out["accuracy"].fidelity == 0.8
    expected, std = gp.predict(encode_genotypes_as("paths", "nb201", [arch.genotype]), True)
    assert out["accuracy"].value == pytest.approx(expected[0])
    assert out["accuracy_std"].value == pytest.approx(std[0])
    assert out["latency_ms"].source == "predictor:lat" and out["latency_ms"].fidelity == 0.5
    assert out["latency_ms"].value == pytest.approx(hyb.predict([arch])[0])
    assert out["energy_mj"].source.startswith("analytical:systolic")

    lazy = Evaluator(net, hw, accuracy="predictor:acc", cost="analytical:systolic")
    with pytest.raises(ConfigError, match="needs a store"):
        lazy.evaluate(arch, hw.default())
    lazy.store = store
    assert lazy.evaluate(arch, hw.default()).metrics["accuracy"].value == out["accuracy"].value
    with pytest.raises(StoreInputError, match="no predictor 'nope'"):
        Evaluator(net, hw, accuracy="predictor:nope", cost="analytical:systolic", store=store)
    darts = get_space("darts")
    with pytest.raises(ConfigError, match="encodes 'nb201' genotypes.*'darts'"):
        Evaluator(darts, hw, accuracy="predictor:acc", cost="analytical:systolic", store=store)
    with pytest.raises(ConfigError, match="not available for latency"):
        Evaluator(net, hw, accuracy=None, cost="analytical:systolic", latency="analytical:x")


def test_config_accepts_predictor_sources() -> None:
    from cosearch.config import parse_config

    text = """
name = "p"
[space]
network = "nb201"
hardware = "systolic"
[objectives]
accuracy = "maximize"
latency_ms = "minimize"
[evaluate]
accuracy = "predictor:acc"
cost = "analytical:systolic"
latency = "predictor:lat"
"""
    cfg = parse_config(text)
    assert cfg.accuracy_source == "predictor:acc" and cfg.latency_source == "predictor:lat"
    assert cfg.identity()["latency_source"] == "predictor:lat"
    with pytest.raises(ConfigError, match="line 12: .* not available for latency"):
        parse_config(text.replace('"predictor:lat"', '"measured:cpu"'))


def test_evaluator_refuses_predictors_that_do_not_fit_the_role(store, tiny_nb201_csv) -> None:
    from cosearch.evaluate import Evaluator
    from cosearch.spaces import get_hardware_space, get_space

    table = load_table(tiny_nb201_csv, "nb201")
    lat = table.latencies()
    x, y = table.features, lat[:, 0]
    gbrt = GBRTLatencyPredictor(max_iter=5).fit(x, y)
    from_table = {"source": "table", "path": "x.csv"}  # stored before options were recorded
    for pid, target, ref in (
        ("lat-table", "lat_pixel3", from_table),
        ("lat-small", "lat_pixel3", {"source": "table", "network_options": {"channels": 4}}),
        ("energy", "energy_mj", REF),
    ):
        save_predictor(store, pid, gbrt, encoding="table", space="nb201", target=target,
                       training_ref=ref, X_train=x, y_train=y)  # fmt: skip
    meta = FewShotLatencyPredictor(epochs=2, meta_episodes=1).fit(table.features, lat[:, :5])
    save_predictor(store, "meta", meta, encoding="table", space="nb201", target="lat_x",
                   training_ref=REF)  # fmt: skip
    hw = get_hardware_space("systolic")

    def evaluator(net, **sources):
        return Evaluator(net, hw, cost="analytical:systolic", store=store, **sources)

    default = get_space("nb201")
    small = get_space("nb201", channels=4)
    evaluator(default, accuracy=None, latency="predictor:lat-table")
    with pytest.raises(ConfigError, match="'lat_pixel3', which is not an accuracy"):
        evaluator(default, accuracy="predictor:lat-table")
    with pytest.raises(ConfigError, match="'energy_mj', which is not a latency in ms"):
        evaluator(default, accuracy=None, latency="predictor:energy")
    with pytest.raises(ConfigError, match="no device was adapted"):
        evaluator(default, accuracy=None, latency="predictor:meta")
    # a table encoding sees the genotype only: the network must be the one it was trained on
    with pytest.raises(ConfigError, match="trained on the network with channels = 16"):
        evaluator(small, accuracy=None, latency="predictor:lat-table")
    with pytest.raises(ConfigError, match="channels = 4; this campaign's has channels = 16"):
        evaluator(default, accuracy=None, latency="predictor:lat-small")
    small_options = {k: small.options[k] for k in small.options}
    save_predictor(store, "lat-small-all", gbrt, encoding="table", space="nb201",
                   target="lat_pixel3", training_ref={"network_options": small_options},
                   X_train=x, y_train=y)  # fmt: skip
    evaluator(small, accuracy=None, latency="predictor:lat-small-all")


def test_a_table_predictor_fits_the_network_of_its_column(store, tiny_nb201_csv) -> None:
    """A predictor of a table's CIFAR-100 accuracy or batch-256 latency column belongs to the
    network with 100 classes or batch 256. It used to be checked against the space's
    defaults: the right network was refused and the 10-class, batch-1 one accepted."""
    from cosearch.evaluate import Evaluator
    from cosearch.predictors.tables import network_options_of
    from cosearch.spaces import get_hardware_space, get_space

    table = load_table(tiny_nb201_csv, "nb201")
    x, y = table.features, table.latencies()[:, 0]
    gbrt = GBRTLatencyPredictor(max_iter=5).fit(x, y)
    defaults = dict(get_space("nb201").options)  # what train_from_table stored until now
    for pid, target in (
        ("acc100", "cifar100_test_acc"),
        ("lat256", "lat_1080ti_256"),
        ("gold", "lat_gold_6240"),
    ):
        ref = {"source": "table", "network_options": defaults}
        save_predictor(store, pid, gbrt, encoding="table", space="nb201", target=target,
                       training_ref=ref, X_train=x, y_train=y)  # fmt: skip
    hw = get_hardware_space("systolic")

    def evaluator(net, **sources):
        return Evaluator(net, hw, cost="analytical:systolic", store=store, **sources)

    with pytest.raises(ConfigError, match="num_classes = 100; this campaign's has num_classes"):
        evaluator(get_space("nb201"), accuracy="predictor:acc100")
    evaluator(get_space("nb201", num_classes=100), accuracy="predictor:acc100")
    with pytest.raises(ConfigError, match="batch = 256; this campaign's has batch = 1"):
        evaluator(get_space("nb201"), accuracy=None, latency="predictor:lat256")
    evaluator(get_space("nb201", batch=256), accuracy=None, latency="predictor:lat256")
    evaluator(get_space("nb201"), accuracy=None, latency="predictor:gold")  # a CPU, batch 1
    imagenet = network_options_of("nb201", "imagenet16_120_test_acc")
    assert imagenet is not None and (imagenet["input_size"], imagenet["num_classes"]) == (16, 120)
    assert network_options_of("ofa_mbv3", "lat_titan_xp_64")["batch"] == 64  # type: ignore[index]
    assert network_options_of("fbnet", "lat_pixel3") is None


def test_fewshot_transform_scores_survive_the_store(store, tiny_nb201_csv) -> None:
    table = load_table(tiny_nb201_csv, "nb201")
    meta = FewShotLatencyPredictor(epochs=2, meta_episodes=2).fit(
        table.features, table.latencies()[:, :5]
    )
    assert set(meta.transform_scores_) == {"relative", "log"}
    save_predictor(store, "m", meta, encoding="table", space="nb201", target="lat_x",
                   training_ref=REF)  # fmt: skip
    assert load_predictor(store, "m").estimator.transform_scores_ == meta.transform_scores_


def test_a_predictor_fitted_on_older_encoding_features_is_refused(store, small_archs) -> None:
    import json

    from cosearch.spaces.encoding import FEATURE_NAMES, onnx_features

    x = np.vstack([onnx_features(a.onnx()) for a in small_archs])
    y = np.linspace(1.0, 2.0, len(x))
    at = FEATURE_NAMES.index("layers.pool_max")
    old_names = [n for n in FEATURE_NAMES if n != "layers.pool_max"]
    t = schema.predictors
    for pid, names in (("now", None), ("named", old_names), ("unnamed", old_names)):
        xs = x if names is None else np.delete(x, at, axis=1)
        est = GBRTLatencyPredictor(max_iter=5).fit(xs, y)
        save_predictor(
            store, pid, est, encoding="onnx", space="nb201", target="lat", training_ref=REF,
            X_train=xs, y_train=y,
        )  # fmt: skip
        if names is None:
            continue
        # a row written when the encoding had one feature fewer (before layers.pool_max):
        # with the names it was fitted on, or (older rows) none recorded
        where = t.c.predictor_id == pid
        with store.engine.begin() as conn:
            params = json.loads(conn.execute(sa.select(t.c.params_json).where(where)).scalar_one())
            if pid == "named":
                params["encoding_features"] = names
            else:
                del params["encoding_features"]
            conn.execute(t.update().where(where).values(params_json=json.dumps(params)))
    assert load_predictor(store, "now").predict(small_archs[:2]).shape == (2,)
    for pid in ("named", "unnamed"):
        with pytest.raises(StoreInputError, match="train it again"):
            load_predictor(store, pid)
