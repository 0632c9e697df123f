"""Fast read paths (store/queries.py) against Optuna's own reading of the same trials."""

from __future__ import annotations

import shutil
import time
from collections import Counter

import numpy as np
import optuna
import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from cosearch import open_store
from cosearch._pareto import _nondominated_mask_quadratic as nondominated_mask
from cosearch._report import _pareto_trials_loaded, campaign_status, is_feasible, pareto_trials
from cosearch.store import migrations, queries, schema
from cosearch.store.batch import BatchWriter, TrialRecord

optuna.logging.set_verbosity(optuna.logging.WARNING)

DIRS: list = ["maximize", "minimize", "minimize"]
DISTS = {
    "c": CategoricalDistribution(["a", "b", None]),
    "x": FloatDistribution(0.0, 1.0),
    "n": IntDistribution(0, 9),
}


# -- the non-dominated filter --------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 5).flatmap(
        lambda m: st.tuples(
            st.lists(
                st.lists(
                    st.one_of(st.integers(0, 3), st.sampled_from([np.inf, -np.inf])),
                    min_size=m,
                    max_size=m,
                ),
                min_size=0,
                max_size=40,
            ),
            st.lists(st.sampled_from(["minimize", "maximize"]), min_size=m, max_size=m),
        )
    )
)
def test_pareto_mask_matches_the_quadratic_reference(case):
    rows, dirs = case
    v = np.array(rows, dtype=float).reshape(len(rows), len(dirs))
    assert (queries.pareto_mask(v, dirs) == nondominated_mask(v, dirs)).all()


def test_an_infinite_value_in_the_best_row_of_two_objectives():
    # the best accuracy with latency +inf: nothing dominates it, but the 2-D filter dropped it
    v = np.array([[95.0, np.inf], [90.0, 1.0], [80.0, 0.5]])
    assert queries.pareto_mask(v, ["maximize", "minimize"]).tolist() == [True, True, True]


@pytest.mark.parametrize("m", [2, 3, 4])
def test_pareto_mask_on_thousands_of_rows_with_ties_and_infinities(m):
    rng = np.random.default_rng(m)
    v = rng.integers(0, 12, size=(1500, m)).astype(float)  # many ties and duplicates
    v[rng.integers(0, 1500, 20), rng.integers(0, m, 20)] = np.inf
    v[rng.integers(0, 1500, 5), 0] = -np.inf
    dirs = ["minimize", "maximize", "minimize", "maximize"][:m]
    assert (queries.pareto_mask(v, dirs) == nondominated_mask(v, dirs)).all()


def test_pareto_mask_is_fast_at_100k():
    v = np.random.default_rng(0).random((100_000, 3))
    t0 = time.process_time()
    mask = queries.pareto_mask(v, ["minimize"] * 3)
    assert time.process_time() - t0 < 2.0 and 10 < mask.sum() < 1000


# -- SQL reads against Optuna's -------------------------------------------------------------------
def _study_with_every_kind_of_trial(url: str) -> optuna.Study:
    """COMPLETE trials (feasible, infeasible by list or by named constraint, NaN constraint,
    no constraints, infinite values, intermediate values), plus RUNNING / FAIL / PRUNED."""
    store = open_store(url)
    study = optuna.create_study(
        study_name="q", storage=store.optuna_storage, directions=DIRS, load_if_exists=True
    )
    rng = np.random.default_rng(0)
    for i in range(60):
        system: dict = {"constraints": [float(rng.normal()), -1.0]}
        if i % 7 == 0:
            system = {}
        elif i % 11 == 0:
            system = {"constraints:area": float(rng.normal()), "constraints:power": -0.5}
        elif i % 13 == 0:
            system = {"constraints": [float("nan")]}
        elif i % 17 == 0:
            system = {"constraints": []}
        values = [round(float(rng.random()), 1) for _ in DIRS]
        if i == 5:
            values = [float("inf"), 0.0, 0.0]
        if i == 6:
            values = [1.0, float("-inf"), 2.0]
        study.add_trial(
            create_trial(
                params={"c": ["a", "b", None][i % 3], "x": float(rng.random()), "n": i % 10},
                distributions=DISTS,
                values=values,
                user_attrs={"metrics": {"accuracy": values[0]}, "i": i},
                system_attrs=system,
                intermediate_values={0: 0.5, 3: float("-inf")} if i == 8 else {},
            )
        )
    study.add_trial(
        create_trial(state=TrialState.FAIL, params={"n": 1}, distributions={"n": DISTS["n"]})
    )
    study.add_trial(create_trial(state=TrialState.PRUNED))
    study.enqueue_trial({"n": 3})
    study.ask()  # RUNNING
    store.close()
    return optuna.load_study(study_name="q", storage=url)


@pytest.fixture(scope="module")
def study_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("q") / "q.db"
    _study_with_every_kind_of_trial(f"sqlite:///{path}")
    return path


@pytest.fixture
def study(study_db):
    return optuna.load_study(study_name="q", storage=f"sqlite:///{study_db}")


def test_counts_values_and_feasibility_match_optuna(study):
    _check_reads(study)


def test_reads_match_optuna_on_postgresql(pg_url):
    study = _study_with_every_kind_of_trial(pg_url)
    _check_reads(study)
    engine = queries.rdb_engine(study)
    trials = study.get_trials()
    assert queries.load_trials(engine, [t._trial_id for t in trials]) == trials
    slow = _pareto_trials_loaded(study, DIRS)
    slow.sort(key=lambda t: t.values[0], reverse=True)
    assert pareto_trials(study) == slow


def _check_reads(study: optuna.Study) -> None:
    engine = queries.rdb_engine(study)
    assert engine is not None
    with engine.connect() as conn:
        sid = queries.study_id_of(conn, "q")
    trials = study.get_trials()
    assert queries.state_counts(engine, sid) == {
        s.name: sum(t.state == s for t in trials) for s in TrialState
    }
    table = queries.objective_table(engine, sid, len(DIRS))
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert table.trial_ids.tolist() == [t._trial_id for t in complete]
    assert np.array_equal(table.values, np.array([t.values for t in complete]))
    assert table.feasible.tolist() == [is_feasible(t) for t in complete]
    assert 0 < table.feasible.sum() < len(complete)


def test_load_trials_builds_what_optuna_builds(study):
    engine = queries.rdb_engine(study)
    trials = study.get_trials()
    ids = [t._trial_id for t in reversed(trials)]
    assert queries.load_trials(engine, ids) == list(reversed(trials))
    with pytest.raises(KeyError):
        queries.load_trials(engine, [10**6])


def test_pareto_trials_fast_path_equals_the_loaded_one(study):
    fast = pareto_trials(study)
    slow = _pareto_trials_loaded(study, DIRS)
    slow.sort(key=lambda t: t.values[0], reverse=True)
    assert fast == slow and len(fast) >= 2
    # an in-memory Optuna storage takes the loaded path
    mem = optuna.create_study(directions=DIRS)
    for t in study.trials:
        mem.add_trial(t)
    assert [t.number for t in pareto_trials(mem)] == [t.number for t in fast]


def test_campaign_status_counts_from_sql(tmp_path, study_db):
    shutil.copy(study_db, tmp_path / "s.db")
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.load_study(study_name="q", storage=url)
    store = open_store(url)
    config = '{"objectives": [], "constraints": [], "network": "n", "hardware": "h", ' + (
        '"strategy": "s"}'
    )
    with store.engine.begin() as conn:
        conn.execute(
            schema.campaigns.insert().values(
                name="q",
                study_name="q",
                config_toml="",
                config_json=config,
                versions_json="{}",
                created_at=sa.func.current_timestamp(),
            )
        )
    status = campaign_status(store, "q")
    trials = study.get_trials()
    counts = Counter(t.state.name for t in trials)
    assert status["trials"] == {s.name: counts.get(s.name, 0) for s in TrialState}
    assert status["feasible"] == sum(
        t.state == TrialState.COMPLETE and is_feasible(t) for t in trials
    )
    assert status["front_size"] == len(_pareto_trials_loaded(study, DIRS))
    store.close()


def test_metric_values_of_a_campaign(tmp_path):
    from cosearch.evaluate import Measurement
    from cosearch.store.batch import AcceleratorRow, ArchitectureRow

    store = open_store(f"sqlite:///{tmp_path / 'm.db'}")
    optuna.create_study(study_name="m", storage=store.optuna_storage, directions=["minimize"])
    cid = store.add_campaign("m", "m", "", {}, {})
    recs = [
        TrialRecord(
            {"n": i},
            DISTS,
            [float(i)],
            architecture=ArchitectureRow("a" * 64, "fake", {}, b"x"),
            accelerator=AcceleratorRow("b" * 64, "fake", {}),
            measurements={"latency_ms": Measurement(2.0 * i, "test:x"), "e": Measurement(1, "t")},
        )
        for i in range(5)
    ]
    BatchWriter(store, "m", cid).write(recs)
    ids, values, sources = queries.metric_values(store.engine, cid, "latency_ms")
    assert values.tolist() == [0.0, 2.0, 4.0, 6.0, 8.0] and sources == ["test:x"] * 5
    assert np.all(np.diff(ids) > 0)
    store.close()


# -- migration 3: indexes -----------------------------------------------------------------------
def _indexes(engine: sa.Engine) -> set[str]:
    insp = sa.inspect(engine)
    return {str(i["name"]) for t in ("trials", "evaluations") for i in insp.get_indexes(t)}


def test_migration_3_indexes_on_new_and_upgraded_stores(tmp_path):
    url = f"sqlite:///{tmp_path / 'i.db'}"
    wanted = {i.name for i in schema.V3_INDEXES}
    store = open_store(url)
    assert wanted <= _indexes(store.engine)
    # a store at version 2 (as cosearch before this migration left it) is upgraded
    with store.engine.begin() as conn:
        for index in schema.V3_INDEXES:
            index.drop(conn)
        conn.execute(schema.schema_version.delete().where(schema.schema_version.c.version >= 3))
    store.close()
    store = open_store(url)
    assert wanted <= _indexes(store.engine)
    with store.engine.connect() as conn:
        assert migrations.current_version(conn) == migrations.LATEST
    store.close()
    # Optuna still accepts the schema as its own, at its head revision
    storage = optuna.storages.RDBStorage(url)
    assert storage.get_current_version() == storage.get_head_version()


def test_status_plan_uses_the_covering_index(study):
    """EXPLAIN QUERY PLAN of the state counts behind `cosearch status`: index only."""
    engine = queries.rdb_engine(study)
    t = queries.optuna_tables().trials
    counts = sa.select(t.c.state, sa.func.count()).where(t.c.study_id == 1).group_by(t.c.state)
    with engine.connect() as conn:
        for stmt in (counts,):
            sql = str(stmt.compile(engine, compile_kwargs={"literal_binds": True}))
            plan = " | ".join(r[3] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
            assert "COVERING INDEX cosearch_ix_trials_study_state" in plan, plan
            assert "SCAN" not in plan.replace("COVERING INDEX", ""), plan


@pytest.mark.slow
def test_pareto_over_10k_batched_trials(tmp_path):
    url = f"sqlite:///{tmp_path / 'big.db'}"
    store = open_store(url)
    optuna.create_study(study_name="big", storage=store.optuna_storage, directions=DIRS)
    rng = np.random.default_rng(0)
    w = BatchWriter(store, "big")
    values = rng.random((10_000, 3))
    for lo in range(0, 10_000, 2000):
        w.write(
            [
                TrialRecord(
                    {"n": int(i % 10)},
                    DISTS,
                    values[i].tolist(),
                    system_attrs={"constraints": [float(values[i, 0] - 0.9)]},
                )
                for i in range(lo, lo + 2000)
            ]
        )
    study = optuna.load_study(study_name="big", storage=url)
    t0 = time.process_time()
    front = pareto_trials(study)
    cpu = time.process_time() - t0
    feasible = values[:, 0] <= 0.9
    expected = np.flatnonzero(feasible)[nondominated_mask(values[feasible], DIRS)]
    assert sorted(t.number for t in front) == expected.tolist()
    assert cpu < 5.0
    store.close()
