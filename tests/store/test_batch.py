"""The batched trial path: standard Optuna rows plus cosearch's, many trials per transaction.

Checks that Optuna, cosearch and optuna-dashboard read batched trials exactly as trials written
by Optuna itself, and that batches, Optuna's own trials and cosearch workers keep trial numbers
unique and gapless when they write to one study at the same time (SQLite and PostgreSQL).
"""

from __future__ import annotations

import dataclasses
import json
import math
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import optuna
import pytest
import sqlalchemy as sa
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from cosearch import Campaign, load_config, open_store
from cosearch.errors import StoreError, StoreInputError
from cosearch.store.batch import (
    BatchWriter,
    TrialRecord,
    campaign_record,
)

from ..conftest import ROOT

optuna.logging.set_verbosity(optuna.logging.WARNING)

TOML = """\
name = "{name}"
seed = 0
trials = {trials}

[space]
network = "nb201"
hardware = "systolic"

[objectives]
accuracy = "maximize"
latency_ms = "minimize"
energy_mj = "minimize"
constraints = ["area_mm2 <= 4"]

[evaluate]
accuracy = "benchmark:nb201/cifar10"
cost = "analytical:systolic"
artifacts = "none"

[strategy]
name = "random"
"""


def _campaign(tmp_path, url, name="b", trials=20) -> Campaign:
    cfg = tmp_path / f"{name}.toml"
    cfg.write_text(TOML.format(name=name, trials=trials))
    c = Campaign.from_config(load_config(cfg), storage=url)
    c.study  # noqa: B018 - creates the study and the campaign row
    return c


def _records(c: Campaign, n: int, seed: int = 0) -> list[TrialRecord]:
    rng = np.random.default_rng(seed)
    known: set[str] = set()
    archs = [c.network.sample(rng) for _ in range(3)]  # repeated digests: insert-or-ignore
    return [
        campaign_record(c, {**archs[i % 3], **c.hardware.sample(rng)}, known_archs=known)
        for i in range(n)
    ]


def _numbers(url: str, study_name: str) -> list[int]:
    eng = sa.create_engine(url)
    with eng.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT t.number FROM trials t JOIN studies s ON s.study_id = t.study_id "
                "WHERE s.study_name = :n ORDER BY t.trial_id"
            ),
            {"n": study_name},
        ).all()
    eng.dispose()
    return [r[0] for r in rows]


def test_batched_trials_read_back_identical(tmp_path):
    url = f"sqlite:///{tmp_path / 'b.db'}"
    c = _campaign(tmp_path, url)
    recs = _records(c, 10)
    w = BatchWriter(c.store, c.study, c.campaign_id)
    assert w.write(recs[:4]) == [0, 1, 2, 3]
    assert w.write(recs[4:]) == list(range(4, 10))
    study = optuna.load_study(study_name="b", storage=url)
    trials = study.trials
    assert [t.number for t in trials] == list(range(10))
    for t, r in zip(trials, recs):
        assert t.state == TrialState.COMPLETE
        assert t.params == dict(r.params)
        assert t.distributions == {k: r.distributions[k] for k in r.params}
        assert t.values == list(r.values)
        assert t.user_attrs == json.loads(json.dumps(dict(r.user_attrs)))
        assert t.system_attrs == {"constraints": r.system_attrs["constraints"]}
        assert t.constraints == {str(i): v for i, v in enumerate(r.system_attrs["constraints"])}
        assert t.datetime_start is not None and t.datetime_complete >= t.datetime_start
        # cosearch's rows: architecture, accelerator, one measurement per metric
        ev = c.store.evaluation(t._trial_id)
        assert ev["arch_digest"] == r.architecture.digest
        assert ev["accelerator"] == dict(r.accelerator.config)
        assert {m["metric"]: m["value"] for m in ev["measurements"]} == {
            k: m.value for k, m in r.measurements.items()
        }
    counts = c.store.query(
        "SELECT (SELECT COUNT(*) FROM architectures) AS ar, (SELECT COUNT(*) FROM evaluations) "
        "AS ev, (SELECT COUNT(*) FROM accelerators) AS ac"
    ).iloc[0]
    assert counts.ar == 3 and counts.ev == 10 and counts.ac == 10
    # a sampler reads the batched history like its own
    study.sampler = optuna.samplers.TPESampler(seed=0, multivariate=True)
    study.ask(c.distributions)
    c.store.close()


def test_rows_are_byte_identical_to_optunas(tmp_path):
    """The same trial written by Optuna (``study.add_trial``) and by a batch."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    store = open_store(url)
    dists = {
        "c": CategoricalDistribution([None, True, 2, 1.5, "x"]),
        "f": FloatDistribution(1e-4, 1.0, log=True),
        "s": FloatDistribution(0.0, 1.0, step=0.25),
        "i": IntDistribution(1, 64, log=True),
        "j": IntDistribution(0, 30, step=3),
    }
    params = {"c": "x", "f": 0.0123, "s": 0.75, "i": 17, "j": 9}
    user = {"metrics": {"a": 1.5}, "nested": [1, {"k": None}], "s": "é"}
    system = {"constraints": [-0.5, 0.0, 2.0]}
    values = [float("inf"), -1.25, float("-inf")]
    dirs = ["maximize", "minimize", "minimize"]
    for name in ("optuna", "batch"):
        optuna.create_study(study_name=name, storage=store.optuna_storage, directions=dirs)
    optuna.load_study(study_name="optuna", storage=url).add_trial(
        optuna.trial.create_trial(
            params=params,
            distributions=dists,
            values=values,
            user_attrs=user,
            system_attrs=system,
        )
    )
    BatchWriter(store, "batch").write(
        [TrialRecord(params, dists, values, user_attrs=user, system_attrs=system)]
    )

    def rows(study: str) -> dict[str, list[tuple]]:
        sid = "(SELECT study_id FROM studies WHERE study_name = ?)"
        ids = f"trial_id IN (SELECT trial_id FROM trials WHERE study_id = {sid})"
        out = {}
        with store.engine.connect() as conn:
            for table, cols, where in (
                ("trials", "number, state", f"study_id = {sid}"),
                ("trial_params", "param_name, param_value, distribution_json", ids),
                ("trial_values", "objective, value, value_type", ids),
                ("trial_user_attributes", "key, value_json", ids),
                ("trial_system_attributes", "key, value_json", ids),
            ):
                sql = f"SELECT {cols} FROM {table} WHERE {where} ORDER BY 1"
                out[table] = conn.exec_driver_sql(sql, (study,)).all()
        return out

    assert rows("batch") == rows("optuna")
    store.close()


def test_bad_records_are_refused_and_nothing_is_written(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    c = _campaign(tmp_path, url)
    good = _records(c, 2)
    w = BatchWriter(c.store, c.study, c.campaign_id)
    r = good[0]
    p = dict(r.params)
    bad = {
        "NaN": dataclasses.replace(r, values=[math.nan, 1.0, 1.0]),
        "needs 3 values": dataclasses.replace(r, values=[1.0]),
        "no distribution": dataclasses.replace(r, params={**p, "extra": 1}),
        "outside": dataclasses.replace(r, params={**p, "hw.pe_rows": 10**6}),
        "invalid": dataclasses.replace(r, params={**p, "net.edge_1_0": "conv_9x9"}),
        "not stored": dataclasses.replace(
            r, architecture=dataclasses.replace(r.architecture, digest="f" * 64, onnx=None)
        ),
        "both": dataclasses.replace(r, accelerator=None),
    }
    for match, rec in bad.items():
        with pytest.raises(StoreInputError, match=match):
            w.write([good[1], rec])
    incompatible = dict(r.distributions, **{"hw.pe_rows": FloatDistribution(0.0, 1.0)})
    with pytest.raises(StoreInputError, match="hw.pe_rows"):
        w.write(
            [
                good[1],
                dataclasses.replace(r, distributions=incompatible, params={**p, "hw.pe_rows": 0.5}),
            ]
        )
    # a failure inside the transaction (an unknown campaign id) rolls the whole batch back
    with pytest.raises(StoreError):
        BatchWriter(c.store, c.study, campaign_id=999).write(good)
    assert _numbers(url, "b") == []
    assert c.store.query("SELECT COUNT(*) AS n FROM evaluations").n[0] == 0
    assert w.write(good) == [0, 1]
    c.store.close()


def test_buffered_writer_flushes_every_batch_size(tmp_path):
    url = f"sqlite:///{tmp_path / 'f.db'}"
    c = _campaign(tmp_path, url)
    recs = _records(c, 7)
    written: list[int] = []
    with BatchWriter(c.store, c.study, c.campaign_id, batch_size=3) as w:
        for r in recs:
            written += w.add(r)
        assert written == list(range(6))
    assert w.written == 7 and _numbers(url, "b") == list(range(7))
    c.store.close()


def test_batches_and_per_trial_runs_interleave(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    c = _campaign(tmp_path, url, trials=5)
    w = BatchWriter(c.store, c.study, c.campaign_id)
    c.run(3)  # cosearch's per-trial path (slot claims, Optuna tell)
    w.write(_records(c, 4, seed=1))
    c.run(10)
    w.write(_records(c, 2, seed=2))
    trials = optuna.load_study(study_name="b", storage=url).trials
    assert [t.number for t in trials] == list(range(12))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert c.count() == 12
    c.store.close()


# A process that writes batches of synthetic records (with cosearch rows whose digests
# collide across processes) into the campaign "conc", from the given start time on.
WRITER = """
import sys, time
import numpy as np
from optuna.distributions import FloatDistribution, IntDistribution
from cosearch.evaluate import Measurement
from cosearch.store import open_store
from cosearch.store.batch import AcceleratorRow, ArchitectureRow, BatchWriter, TrialRecord

url, cid, seed, batches, size = sys.argv[1], *map(int, sys.argv[2:6])
rng = np.random.default_rng(seed)
dists = {"x": FloatDistribution(0.0, 1.0), "n": IntDistribution(0, 9)}
store = open_store(url)
w = BatchWriter(store, "conc", cid)
time.sleep(max(0.0, float(sys.argv[6]) - time.time()))
for b in range(batches):
    recs = []
    for _ in range(size):
        d = int(rng.integers(4))
        recs.append(TrialRecord(
            {"x": float(rng.random()), "n": int(rng.integers(10))}, dists,
            [float(rng.random()), float(rng.random()), float(rng.random())],
            user_attrs={"writer": seed}, system_attrs={"constraints": [-1.0]},
            architecture=ArchitectureRow(f"{d:064d}", "fake", {"d": d}, b"onnx"),
            accelerator=AcceleratorRow(f"{d + 10:064d}", "fake", {"d": d}),
            measurements={"m": Measurement(1.0, "test:x")},
        ))
    w.write(recs)
    time.sleep(0.2)
store.close()
"""

# Plain Optuna trials (its own create_new_trial and tell) in the same study.
OPTIMIZER = """
import sys, time, optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.load_study(study_name="conc", storage=sys.argv[1])
def objective(t):
    t.set_user_attr("writer", "optuna")
    return t.suggest_float("x", 0.0, 1.0), float(t.suggest_int("n", 0, 9)), 0.0
time.sleep(max(0.0, float(sys.argv[3]) - time.time()))
study.optimize(objective, n_trials=int(sys.argv[2]))
"""


def _concurrent(url, tmp_path, batches=6, size=5, plain=15):
    """Two batch writers, plain Optuna and a cosearch worker on one campaign at once."""
    c = _campaign(tmp_path, url, name="conc", trials=2 * batches * size + plain + 4)
    cid = c.campaign_id
    c.store.close()
    for name, text in (("writer.py", WRITER), ("optimizer.py", OPTIMIZER)):
        (tmp_path / name).write_text(text)
    start = str(time.time() + 8)  # after every interpreter has imported cosearch
    args = [str(batches), str(size), start]
    procs = [
        subprocess.Popen(
            [sys.executable, str(tmp_path / "writer.py"), url, str(cid), str(seed), *args],
            cwd=ROOT,
            stderr=subprocess.PIPE,
        )
        for seed in (1, 2)
    ]
    procs.append(
        subprocess.Popen(
            [sys.executable, str(tmp_path / "optimizer.py"), url, str(plain), start],
            cwd=ROOT,
            stderr=subprocess.PIPE,
        )
    )
    # cosearch's per-trial path: slot claims under the same lock, heartbeats, tell
    worker = [sys.executable, "-m", "cosearch.cli", "worker", "conc", "--storage", url]
    procs.append(subprocess.Popen(worker, cwd=ROOT, stderr=subprocess.PIPE))
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]
    numbers = _numbers(url, "conc")
    # unique and gapless, and ascending with trial ids (Optuna's count_past_trials)
    assert numbers == list(range(len(numbers)))
    trials = optuna.load_study(study_name="conc", storage=url).trials
    assert all(t.state == TrialState.COMPLETE for t in trials)
    who = [t.user_attrs.get("writer", "worker") for t in trials]
    assert who.count(1) == who.count(2) == batches * size and who.count("optuna") == plain
    assert who.count("worker") >= 1
    # the writers really ran side by side with the others: sources alternate
    assert sum(a != b for a, b in zip(who, who[1:])) >= 3, who
    store = open_store(url)
    n = store.query(
        "SELECT (SELECT COUNT(*) FROM evaluations) AS ev, (SELECT COUNT(*) FROM measurements "
        "WHERE metric = 'm') AS ms, (SELECT COUNT(*) FROM architectures WHERE space = 'fake') "
        "AS ar"
    ).iloc[0]
    assert (n.ev, n.ms, n.ar) == (2 * batches * size + who.count("worker"), 2 * batches * size, 4)
    store.close()


@pytest.mark.slow
def test_two_batch_writers_optuna_and_a_worker_concurrently_sqlite(tmp_path):
    _concurrent(f"sqlite:///{tmp_path / 'c.db'}", tmp_path)


@pytest.mark.slow
def test_two_batch_writers_optuna_and_a_worker_concurrently_postgresql(tmp_path, pg_url):
    _concurrent(pg_url, tmp_path)


def test_batched_round_trip_postgresql(tmp_path, pg_url):
    c = _campaign(tmp_path, pg_url)
    recs = _records(c, 5)
    assert BatchWriter(c.store, c.study, c.campaign_id).write(recs) == list(range(5))
    trials = optuna.load_study(study_name="b", storage=pg_url).trials
    for t, r in zip(trials, recs):
        assert (t.params, t.values) == (dict(r.params), list(r.values))
        assert t.user_attrs == json.loads(json.dumps(dict(r.user_attrs)))
        assert t.system_attrs == {"constraints": r.system_attrs["constraints"]}
    c.store.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_optuna_dashboard_serves_batched_trials(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    c = _campaign(tmp_path, url)
    recs = _records(c, 6)
    BatchWriter(c.store, c.study, c.campaign_id).write(recs)
    study_id = c.store.optuna_storage.get_study_id_from_name("b")
    c.store.close()
    port = _free_port()
    code = (
        "import sys, optuna_dashboard; "
        "optuna_dashboard.run_server(sys.argv[1], host='127.0.0.1', port=int(sys.argv[2]))"
    )
    server = subprocess.Popen(
        [sys.executable, "-c", code, url, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/studies/{study_id}", timeout=10
                ) as resp:
                    detail = json.loads(resp.read())
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert [t["number"] for t in detail["trials"]] == list(range(6))
    for t, r in zip(detail["trials"], recs):
        assert t["state"] == "Complete"
        assert t["values"] == list(r.values)
        assert {p["name"]: p["param_external_value"] for p in t["params"]} == {
            k: str(v) for k, v in r.params.items()
        }
        assert t["constraints"] == r.system_attrs["constraints"]
        assert {a["key"] for a in t["user_attrs"]} >= {"metrics", "sources", "accelerator"}
    assert detail["best_trials"]  # the dashboard's own Pareto front over batched trials
