"""Store throughput: plain Optuna vs cosearch's per-trial path vs the batched path, worker
scale-out on SQLite and PostgreSQL, and query times at 100,000 trials (issues 10 and 11).

All parts run in one process, one after the other, on the same machine, each on a fresh
database (SQLite files in a temporary folder; PostgreSQL databases on a throwaway server that
``.ci/pg.sh`` starts, unless ``--pg-url`` names one or ``--no-pg`` skips it):

(a) plain Optuna ``study.optimize`` with RDB storage on a fresh SQLite file and the random
    sampler: a1 the trivial one-parameter objective of issue 11; a2 the same kind of trial
    cosearch stores (the 15 nb201 x systolic parameters, 3 values, the same user attributes and
    constraints, copied from evaluated candidates, so no evaluation runs);
(b) cosearch's per-trial path: ``Campaign.run`` on the quickstart spaces (nb201 x systolic,
    benchmark accuracy, analytical systolic costs) with the random strategy: real evaluation
    included; the same candidates are then re-evaluated alone to split evaluation from storage;
(c) the batched path (store/batch.py): evaluated candidates (same spaces, evaluated before the
    clock starts) persisted with every cosearch row, batch sizes 1, 100 and 1000;
(d) ``cosearch worker`` processes (1, 2, 4) finishing one campaign, rate from the database's
    trial timestamps (first start to last completion; interpreter start-up excluded);
(e) a 100,000-trial campaign (batched writes; evaluated candidates repeated to reach the size)
    and the queries of ``cosearch status`` / ``cosearch pareto`` before and after migration 3's
    indexes, with their plans, and the pre-change Pareto path (``study.get_trials``).

Writes ``benchmarks/results/store.md`` (``store_quick.md`` with ``--quick``).

Usage::

    .venv/bin/python benchmarks/store/throughput.py [--quick] [--pg-url URL | --no-pg] [--out F]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import sqlalchemy as sa
from optuna.trial import TrialState

from cosearch import Campaign
from cosearch._report import campaign_status, load_campaign, pareto_trials
from cosearch.campaign import _suggest
from cosearch.config import parse_config
from cosearch.store import open_store, queries, schema
from cosearch.store._optuna_compat import study_storage
from cosearch.store.batch import BatchWriter, campaign_record

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"

TOML = """\
# examples/quickstart.toml with the random strategy and no dashboard artifacts
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

SIZES: dict[str, dict[str, Any]] = {
    "quick": {
        "a1": 60, "a2": 20, "b": 20, "batch": {1: 100, 100: 1000, 1000: 2000},
        "pool": 2000, "archs": 60, "workers": 30, "big": 10_000, "old_path_s": 120,
    },
    "full": {
        "a1": 200, "a2": 60, "b": 60, "batch": {1: 300, 100: 3000, 1000: 10_000},
        "pool": 10_000, "archs": 250, "workers": 60, "big": 100_000, "old_path_s": 60,
    },
}  # fmt: skip


# -- helpers ----------------------------------------------------------------------------------
class Clock:
    """Wall and CPU seconds of a block (CPU: this process only)."""

    def __enter__(self) -> Clock:
        self.w0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.w0
        self.cpu = time.process_time() - self.c0


def quiet() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def sqlite_url(folder: Path, name: str) -> str:
    path = folder / f"{name}.db"
    for p in (path, path.with_name(path.name + ".lock")):
        p.unlink(missing_ok=True)
    return f"sqlite:///{path}"


def campaign(url: str, name: str, trials: int = 10, folder: Path | None = None) -> Any:
    text = TOML.format(name=name, trials=trials)
    if folder is not None:
        (folder / f"{name}.toml").write_text(text)
    c = Campaign(parse_config(text, path=f"<{name}>"), open_store(url))
    c.study  # noqa: B018 - creates the study and the campaign row
    return c


# -- candidate records (evaluated before any clock starts) --------------------------------------
def _evaluate_share(args: tuple[int, int, int, int]) -> tuple[list[Any], float]:
    """Records for pool indices ``i % procs == k``; archs split so no digest is built twice."""
    k, procs, n, n_archs = args
    quiet()

    c = campaign("sqlite://", "pool")
    rng = np.random.default_rng(1000 + k)
    arch_rng = np.random.default_rng(7)
    archs = [c.network.sample(arch_rng) for _ in range(n_archs)]
    known: set[str] = set()
    out = []
    t0 = time.process_time()
    for i in range(k, n, procs):
        # arch index i % n_archs has i % procs == k when procs divides n_archs
        params = {**archs[i % n_archs], **c.hardware.sample(rng)}
        out.append((i, campaign_record(c, params, known_archs=known)))
    return out, time.process_time() - t0


def make_pool(n: int, n_archs: int, procs: int = 2) -> tuple[list[Any], float]:
    """``n`` evaluated candidates in a fixed order (each architecture's ONNX bytes on its
    first record only), and the mean evaluation CPU seconds per candidate."""
    n_archs -= n_archs % procs
    with ProcessPoolExecutor(procs) as ex:
        parts = list(ex.map(_evaluate_share, [(k, procs, n, n_archs) for k in range(procs)]))
    indexed = sorted((i, r) for part, _ in parts for i, r in part)
    seen: set[str] = set()
    pool = []
    for _, r in indexed:
        a = r.architecture
        if a.digest in seen and a.onnx is not None:
            r = dataclasses.replace(r, architecture=dataclasses.replace(a, onnx=None))
        seen.add(a.digest)
        pool.append(r)
    return pool, sum(cpu for _, cpu in parts) / n


def cycled(pool: list[Any], n: int) -> Iterator[Any]:
    """``n`` records: the pool repeated (repeats carry no ONNX bytes: already stored)."""
    for i in range(n):
        r = pool[i % len(pool)]
        if i >= len(pool) and r.architecture.onnx is not None:
            r = dataclasses.replace(r, architecture=dataclasses.replace(r.architecture, onnx=None))
        yield r


# -- (a) plain Optuna ---------------------------------------------------------------------------
def plain_optuna_trivial(url: str, n: int) -> float:
    study = optuna.create_study(storage=url, sampler=optuna.samplers.RandomSampler(seed=0))
    with Clock() as clk:
        study.optimize(lambda t: t.suggest_float("x", -10, 10) ** 2, n_trials=n)
    return n / clk.wall


def plain_optuna_same_trials(url: str, pool: list[Any], n: int) -> float:
    """study.optimize writing what a cosearch trial holds (no evaluation, no cosearch rows)."""
    dists = pool[0].distributions
    study = optuna.create_study(
        storage=url,
        directions=["maximize", "minimize", "minimize"],
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    storage = study_storage(study)
    it = iter(pool)

    def objective(trial: optuna.Trial) -> list[float]:
        r = next(it)
        for name, dist in dists.items():
            _suggest(trial, name, dist)  # the function Campaign suggests with
        for k, v in r.user_attrs.items():
            trial.set_user_attr(k, v)
        # as Campaign._run_one does (Optuna has no public setter for the constraints attribute)
        storage.set_trial_system_attr(trial._trial_id, "constraints", r.system_attrs["constraints"])
        return list(r.values)

    with Clock() as clk:
        study.optimize(objective, n_trials=n)
    return n / clk.wall


def plain_optuna_add_trial(url: str, pool: list[Any], n: int) -> float:
    """Optuna's own one-transaction-per-trial path: study.add_trial(create_trial(...))."""
    study = optuna.create_study(storage=url, directions=["maximize", "minimize", "minimize"])
    with Clock() as clk:
        for r in pool[:n]:
            study.add_trial(
                optuna.trial.create_trial(
                    params=dict(r.params),
                    distributions=dict(r.distributions),
                    values=list(r.values),
                    user_attrs=dict(r.user_attrs),
                    system_attrs=dict(r.system_attrs),
                )
            )
    return n / clk.wall


# -- (b) cosearch per-trial path ----------------------------------------------------------------
def per_trial(url: str, n: int) -> dict[str, float]:
    c = campaign(url, "pertrial", trials=n)
    with Clock() as clk:
        c.run(n)
    params = [t.params for t in c.trials()]
    c.store.close()
    fresh = campaign("sqlite://", "pertrial", trials=n)
    with Clock() as ev:  # the same candidates, evaluated alone (fresh caches)
        for p in params:
            campaign_record(fresh, p, known_archs=set())
    return {"rate": n / clk.wall, "eval_s": ev.wall / n, "store_s": (clk.wall - ev.wall) / n}


# -- (c) batched path ---------------------------------------------------------------------------
def batched(url: str, records: list[Any], batch_size: int) -> float:
    c = campaign(url, "batched")
    w = BatchWriter(c.store, c.study, c.campaign_id)
    with Clock() as clk:
        for i in range(0, len(records), batch_size):
            w.write(records[i : i + batch_size])
    c.store.close()
    return len(records) / clk.wall


# -- (d) workers --------------------------------------------------------------------------------
def workers(url: str, k: int, n: int, folder: Path) -> dict[str, float]:
    name = f"w{k}"
    c = campaign(url, name, trials=n, folder=folder)
    c.store.close()
    cmd = [sys.executable, "-m", "cosearch.cli", "worker", name, "--storage", url]
    cmd += ["--config", str(folder / f"{name}.toml")]
    with Clock() as clk:
        procs = [subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE) for _ in range(k)]
        for p in procs:
            _, err = p.communicate(timeout=1800)
            if p.returncode != 0:
                raise RuntimeError(f"worker failed: {err.decode()[-500:]}")
    study = optuna.load_study(study_name=name, storage=url)
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    numbers = [t.number for t in study.get_trials(deepcopy=False)]
    assert len(done) == n and len(set(numbers)) == len(numbers), (len(done), n)
    start = [t.datetime_start or dt.datetime.max for t in done]
    end = max(t.datetime_complete or dt.datetime.min for t in done)
    # steady state: from the moment every worker had started its first trial (a worker's
    # interpreter start-up competes for the CPU with the workers already running)
    first: dict[str, dt.datetime] = {}
    for t, s in zip(done, start):
        who = str(t.user_attrs.get("worker"))
        first[who] = min(first.get(who, s), s)
    t_all = max(first.values())
    steady = sum(s >= t_all for s in start)
    return {
        "rate": n / (end - min(start)).total_seconds(),
        "steady": steady / max((end - t_all).total_seconds(), 1e-9),
        "steady_n": steady,
        "workers_seen": len(first),
        "wall_rate": n / clk.wall,
    }


# -- (e) 100,000 trials: writes, queries, plans ---------------------------------------------------
def fill_big(url: str, pool: list[Any], n: int) -> tuple[Any, float]:
    c = campaign(url, "big")
    w = BatchWriter(c.store, c.study, c.campaign_id)
    records = list(cycled(pool, n))
    with Clock() as clk:
        for i in range(0, n, 1000):
            w.write(records[i : i + 1000])
    return c, n / clk.wall


def query_suite(store: Any, repeat: int = 2) -> dict[str, tuple[float, float]]:
    """Best-of-``repeat`` (wall s, CPU s) of each read behind `cosearch status` / `pareto`."""
    eng = store.engine
    with eng.connect() as conn:
        sid = queries.study_id_of(conn, "big")
    _, study = load_campaign(store, "big")
    dirs = ["maximize", "minimize", "minimize"]
    cases: dict[str, Callable[[], Any]] = {
        "trial counts by state": lambda: queries.state_counts(eng, sid),
        "objective + constraint values (SQL -> numpy)": lambda: queries.objective_table(
            eng, sid, 3
        ),
        "Pareto front ids (values + filter)": lambda: queries.pareto_front_ids(eng, sid, dirs),
        "pareto_trials (front as FrozenTrials)": lambda: pareto_trials(study),
        "campaign_status (cosearch status)": lambda: campaign_status(store, "big"),
        "one metric's values (measurements)": lambda: queries.metric_values(
            eng, store.require_campaign("big")["campaign_id"], "latency_ms"
        ),
    }
    out = {}
    for label, fn in cases.items():
        best = (float("inf"), float("inf"))
        for _ in range(repeat):
            with Clock() as clk:
                fn()
            best = min(best, (clk.wall, clk.cpu))
        out[label] = best
    out["front size"] = (float(len(pareto_trials(study))), 0.0)
    return out


def _plan_sql(store: Any) -> dict[str, str]:
    ot = queries.optuna_tables()
    t, tv, ts = ot.trials, ot.trial_values, ot.trial_system_attributes

    complete = sa.and_(t.c.study_id == 1, t.c.state == TrialState.COMPLETE)
    counts = sa.select(t.c.state, sa.func.count()).where(t.c.study_id == 1).group_by(t.c.state)
    v0 = tv.alias("v0")
    values = (
        sa.select(t.c.trial_id, v0.c.value, ts.c.value_json)
        .select_from(
            t.join(v0, sa.and_(v0.c.trial_id == t.c.trial_id, v0.c.objective == 0)).outerjoin(
                ts, sa.and_(ts.c.trial_id == t.c.trial_id, ts.c.key == "constraints")
            )
        )
        .where(complete)
    )
    by_number = sa.select(t.c.trial_id).where(t.c.study_id == 1, t.c.number == 77_777)
    ev, ac = schema.evaluations, schema.accelerators
    gc = sa.select(ac.c.digest).where(~sa.exists().where(ev.c.accelerator_digest == ac.c.digest))
    stmts = {
        "status: counts by state": counts,
        "pareto: values of COMPLETE trials (1 of 3 objective joins shown)": values,
        "Optuna: trial id by number (claims, show)": by_number,
        "Store._collect_garbage: unreferenced accelerators": gc,
    }
    d = store.engine.dialect
    return {
        k: str(s.compile(dialect=d, compile_kwargs={"literal_binds": True}))
        for k, s in stmts.items()
    }


def plans(store: Any) -> dict[str, list[str]]:
    out = {}
    with store.engine.connect() as conn:
        for label, sql in _plan_sql(store).items():
            if store.is_sqlite:
                rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql).all()
                out[label] = [r[3] for r in rows]
            else:
                rows = conn.exec_driver_sql("EXPLAIN " + sql).all()
                out[label] = [r[0] for r in rows]
    return out


def set_indexes(store: Any, present: bool) -> None:
    with store.engine.begin() as conn:
        for index in schema.V3_INDEXES:
            if present:
                index.create(conn, checkfirst=True)
            else:
                index.drop(conn, checkfirst=True)
        if not store.is_sqlite:
            conn.exec_driver_sql("ANALYZE")


def old_pareto_path(url: str, timeout_s: float) -> tuple[float, float] | str:
    """The pre-change pareto_trials: study.get_trials + the O(n^2) filter, in a subprocess."""
    code = f"""
import time, numpy as np, optuna
from cosearch._pareto import nondominated_mask
optuna.logging.set_verbosity(optuna.logging.WARNING)
s = optuna.load_study(study_name="big", storage={url!r})
w, c = time.perf_counter(), time.process_time()
trials = [t for t in s.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
          if all(v <= 0 for v in t.constraints.values())]
mask = nondominated_mask(np.array([t.values for t in trials]), ["maximize", "minimize", "minimize"])
print(time.perf_counter() - w, time.process_time() - c, int(mask.sum()))
"""
    try:
        r = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return f"> {timeout_s:.0f} s (stopped)"
    if r.returncode != 0:
        return f"failed: {r.stderr.strip().splitlines()[-1][:200]}"
    wall, cpu, _ = r.stdout.split()
    return float(wall), float(cpu)


def small_db_checks(url: str, pool: list[Any], n: int) -> dict[str, Any]:
    """At ``n`` trials: Store.discard_evaluations of one failed trial without / with the
    evaluations digest indexes, and the Pareto query before / after this change."""
    c, _ = fill_big(url, pool, n)
    store = c.store
    with store.engine.connect() as conn:
        last = int(conn.exec_driver_sql("SELECT MAX(trial_id) FROM evaluations").scalar_one())
    out: dict[str, Any] = {}
    for present in (False, True):
        set_indexes(store, present)
        with Clock() as clk:
            store.discard_evaluations([last - present])
        out["gc_with" if present else "gc_without"] = clk.wall
    _, study = load_campaign(store, "big")
    with Clock() as clk:
        pareto_trials(study)
    out["pareto_new"] = (clk.wall, clk.cpu)
    store.close()
    out["pareto_old"] = old_pareto_path(url, 600)
    return out


# -- PostgreSQL -----------------------------------------------------------------------------------
@contextlib.contextmanager
def postgres(args: argparse.Namespace) -> Iterator[str | None]:
    if args.no_pg:
        yield None
        return
    if args.pg_url:
        yield args.pg_url
        return
    folder = Path(tempfile.mkdtemp(prefix="cosearch-bench-pg-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pg = ["bash", str(ROOT / ".ci" / "pg.sh")]
    r = subprocess.run([*pg, "start", str(folder), str(port)], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"PostgreSQL skipped: {r.stderr.strip()[-300:]}", file=sys.stderr)
        args.pg_skip_reason = r.stderr.strip()[-300:] or "pg.sh failed"
        yield None
        return
    try:
        yield r.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([*pg, "stop", str(folder)], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def pg_db(server_url: str, name: str) -> str:
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return server_url.rpartition("/")[0] + "/" + name


def pg_version(url: str) -> str:
    eng = sa.create_engine(url)
    with eng.connect() as conn:
        v = str(conn.exec_driver_sql("SHOW server_version").scalar())
    eng.dispose()
    return v


def run_all(size: dict[str, Any], folder: Path, pg: str | None) -> dict[str, Any]:
    """Every part, in order; returns the numbers for the report."""
    t0 = time.perf_counter()
    backends = ["sqlite"] + (["postgresql"] if pg else [])

    def url(backend: str, name: str) -> str:
        return sqlite_url(folder, name) if backend == "sqlite" else pg_db(str(pg), name)

    def step(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.0f} s] {msg}", flush=True)

    res: dict[str, Any] = {"c": {}, "d": {}, "e": {}}
    step(f"evaluating {size['pool']} candidates (2 processes)")
    with Clock() as clk:
        pool, eval_cpu = make_pool(size["pool"], size["archs"])
    res["pool"] = {"n": len(pool), "wall": clk.wall, "eval_cpu_s": eval_cpu}
    step("(a) plain Optuna")
    res["a1"] = plain_optuna_trivial(url("sqlite", "a1"), size["a1"])
    res["a2"] = plain_optuna_same_trials(url("sqlite", "a2"), pool, size["a2"])
    res["a3"] = plain_optuna_add_trial(url("sqlite", "a3"), pool, size["a2"])
    step("(b) per-trial path")
    res["b"] = per_trial(url("sqlite", "b"), size["b"])
    step("(c) batched path")
    for backend in backends:
        for bs, n in size["batch"].items():
            res["c"][f"{backend}:{bs}"] = batched(url(backend, f"c{bs}"), pool[:n], bs)
    res["a1_again"] = plain_optuna_trivial(url("sqlite", "a1b"), size["a1"])
    step("(d) workers")
    for backend in backends:
        for k in (1, 2, 4):
            d = res["d"][f"{backend}:{k}"] = workers(
                url(backend, f"d{k}"), k, size["workers"], folder
            )
            step(f"    {backend} x{k}: {d['rate']:.1f} trials/s, steady {d['steady']:.1f}")
    for backend in backends:
        step(f"(e) {size['big']} trials on {backend}")
        big = url(backend, "big")
        c, rate = fill_big(big, pool, size["big"])
        e: dict[str, Any] = {"write_rate": rate}
        step(f"    written at {rate:.0f} trials/s; queries")
        set_indexes(c.store, False)
        e["plans_before"], e["before"] = plans(c.store), query_suite(c.store)
        set_indexes(c.store, True)
        e["plans_after"], e["after"] = plans(c.store), query_suite(c.store)
        c.store.close()
        if backend == "sqlite":
            step("    the pre-change Pareto path (study.get_trials)")
            e["old_path"] = old_pareto_path(big, size["old_path_s"])
            Path(big.removeprefix("sqlite:///")).unlink(missing_ok=True)
            step("    5,000 trials: garbage collection, old and new Pareto path")
            e["small"] = small_db_checks(url("sqlite", "small"), pool, 5000)
        res["e"][backend] = e
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a few minutes)")
    ap.add_argument("--pg-url", help="a PostgreSQL server URL to use instead of starting one")
    ap.add_argument("--no-pg", action="store_true", help="SQLite only")
    ap.add_argument("--out", type=Path, help="report path (the numbers go beside it, .json)")
    ap.add_argument("--from-json", type=Path, help="only rewrite the report from saved numbers")
    args = ap.parse_args(argv)
    if args.from_json:
        res = json.loads(args.from_json.read_text())
        write_report(res, args.out or args.from_json.with_suffix(".md"))
        return 0
    args.pg_skip_reason = "--no-pg" if args.no_pg else None
    mode = "quick" if args.quick else "full"
    out = args.out or RESULTS / ("store_quick.md" if args.quick else "store.md")
    quiet()
    t0 = time.perf_counter()
    load_before = os.getloadavg()
    folder = Path(tempfile.mkdtemp(prefix="cosearch-bench-store-"))
    try:
        with postgres(args) as pg:
            res = run_all(SIZES[mode], folder, pg)
            res["pg"] = pg_version(pg) if pg else None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    res.update(
        mode=mode,
        size=SIZES[mode],
        pg_skip=args.pg_skip_reason,
        load_before=load_before,
        load_after=os.getloadavg(),
        seconds=time.perf_counter() - t0,
        versions=versions(),
        machine=machine(),
        command="benchmarks/store/throughput.py" + (" --quick" if args.quick else ""),
    )
    out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    write_report(res, out)
    print(f"wrote {out} in {res['seconds']:.0f} s")
    return 0


def _wc(pair: Any) -> str:
    return pair if isinstance(pair, str) else f"{pair[0]:.3f} s wall / {pair[1]:.3f} s CPU"


def write_report(res: dict[str, Any], out: Path) -> None:
    size, b, pool = res["size"], res["b"], res["pool"]
    batch_n = {int(k): v for k, v in size["batch"].items()}
    base = (res["a1"] + res["a1_again"]) / 2
    load = [", ".join(f"{x:.1f}" for x in res[k]) for k in ("load_before", "load_after")]
    pg = (
        f"server {res['pg']}, started by `.ci/pg.sh` (loopback, `fsync=off`: its writes skip "
        "the disk flushes SQLite's default `synchronous=FULL` pays; server on the same cores)"
        if res["pg"]
        else f"skipped ({res['pg_skip']})"
    )
    L = [
        "# Store throughput and 100,000-trial queries",
        "",
        f"Regenerate: `.venv/bin/python {res['command']}` ({res['mode']} sizes, "
        f"{res['seconds'] / 60:.1f} min). All numbers come from that one run on one machine; "
        "the parts ran one after the other, each on a fresh database.",
        "",
        f"- machine: {res['machine']}; load average (1/5/15 min) {load[0]} before, {load[1]} after."
        " The machine is shared: with load above the core count, wall times stretch and CPU "
        "times (this process only; not PostgreSQL's server) do not.",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in res["versions"].items()),
        f"- PostgreSQL: {pg}",
        f"- candidates: {pool['n']:,} nb201 x systolic candidates over {size['archs']} "
        "architectures, evaluated with the quickstart sources (NAS-Bench-201 CIFAR-10 table, "
        f"analytical systolic costs) before any clock starts: {pool['eval_cpu_s'] * 1e3:.1f} ms "
        "CPU per candidate, ONNX builds included.",
        "",
        "## Persisting trials (SQLite file unless stated)",
        "",
        f"Ratio: trials/s over plain Optuna's (a1: {res['a1']:.1f} and {res['a1_again']:.1f} "
        "trials/s, run before and after the batched runs; their mean).",
        "",
        "| path | one trial holds | trials | trials/s | ratio to (a1) |",
        "|---|---|---:|---:|---:|",
        f"| (a1) Optuna `study.optimize`, trivial objective | 1 param, 1 value "
        f"| {size['a1']} | {base:.3g} | 1 |",
        f"| (a2) Optuna `study.optimize`, cosearch-shaped trial | 15 params, 3 values, "
        f"4 user attrs, constraints | {size['a2']} | {res['a2']:.3g} | {res['a2'] / base:.2f} |",
        f"| (a3) Optuna `study.add_trial(create_trial(...))` | as (a2), 1 transaction "
        f"| {size['a2']} | {res['a3']:.3g} | {res['a3'] / base:.2f} |",
        f"| (b) cosearch `Campaign.run`, evaluation included | (a2) + worker, cosearch rows "
        f"| {size['b']} | {b['rate']:.3g} | {b['rate'] / base:.2f} |",
        f"| (b) its storage share: 1 / (wall - evaluation) per trial | | {size['b']} "
        f"| {1 / b['store_s']:.3g} | {1 / b['store_s'] / base:.2f} |",
    ]
    for key, rate in res["c"].items():
        backend, bs = key.split(":")
        L.append(
            f"| (c) `BatchWriter`, {backend}, batches of {bs} | (a2) + every cosearch row "
            f"| {batch_n[int(bs)]:,} | {rate:,.0f} | {rate / base:.1f} |"
        )
    c1000 = res["c"]["sqlite:1000"]
    per = pool["eval_cpu_s"] + 1 / c1000
    L += [
        "",
        f"(b) spent {b['eval_s'] * 1e3:.0f} ms per trial evaluating (its candidates "
        f"re-evaluated alone) and {b['store_s'] * 1e3:.0f} ms on everything else (Optuna's "
        "per-parameter and per-attribute writes, slot claim, heartbeat, cosearch rows). A "
        f"screening loop evaluating at {pool['eval_cpu_s'] * 1e3:.1f} ms per candidate and "
        f"persisting in batches of 1000 ({1e3 / c1000:.2f} ms per trial) runs at about "
        f"{1 / per:.0f} candidates/s in one process, {100 / c1000 / per:.0f}% of it storage.",
        "",
        "## `cosearch worker` processes on one campaign",
        "",
        f"A fresh database and a campaign of {size['workers']} trials per row (spaces above, "
        "random strategy, real evaluation); N `cosearch worker NAME --storage URL --config "
        "FILE` processes started together. trials/s from the trials' timestamps: first start "
        "to last completion, and steady state (the trials started once every worker had "
        "started one: before that, interpreters still starting take CPU from the running "
        "workers); the last column counts from process launch.",
        "",
        "| backend | workers | trials/s | vs 1 worker | steady-state trials/s (trials) "
        "| vs 1 worker | trials/s from launch |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, d in res["d"].items():
        backend, k = key.split(":")
        one = res["d"][f"{backend}:1"]
        L.append(
            f"| {backend} | {k} | {d['rate']:.2f} | {d['rate'] / one['rate']:.2f} "
            f"| {d['steady']:.2f} ({d['steady_n']}) | {d['steady'] / one['steady']:.2f} "
            f"| {d['wall_rate']:.2f} |"
        )
    backends = list(res["e"])
    L += [
        "",
        f"## {size['big']:,} trials: batched writes and the CLI's queries",
        "",
        f"One campaign of {size['big']:,} COMPLETE trials written in batches of 1000 (the "
        f"{pool['n']:,} candidates repeated; every copy of a front trial is on the front, as "
        "`nondominated_mask` keeps duplicates). Each query: best of 2, without and then with "
        "migration 3's indexes (PostgreSQL: `ANALYZE` after each change).",
        "",
        *[f"- {bk}: written at {res['e'][bk]['write_rate']:.0f} trials/s" for bk in backends],
        f"- front size: {int(res['e'][backends[0]]['after']['front size'][0]):,} trials",
        "",
        "| query (wall s / CPU s) | "
        + " | ".join(f"{bk} before | {bk} after" for bk in backends)
        + " |",
        "|---|" + "---:|" * (2 * len(backends)),
    ]
    for label in [k for k in res["e"][backends[0]]["after"] if k != "front size"]:
        cells = [
            f"{res['e'][bk][w][label][0]:.3f} / {res['e'][bk][w][label][1]:.3f}"
            for bk in backends
            for w in ("before", "after")
        ]
        L.append(f"| {label} | " + " | ".join(cells) + " |")
    e = res["e"].get("sqlite", {})
    if "old_path" in e:
        L += [
            "",
            "The Pareto query before this change (`study.get_trials` and the O(n^2) "
            f"`nondominated_mask`) on the same SQLite database: {_wc(e['old_path'])}.",
        ]
    if "small" in e:
        g = e["small"]
        L += [
            "",
            f"At 5,000 trials (SQLite) the Pareto query takes {_wc(g['pareto_old'])} before "
            f"this change and {_wc(g['pareto_new'])} after it. `Store.discard_evaluations` of "
            "one failed trial (it deletes unreferenced architectures and accelerators) takes "
            f"{g['gc_without']:.2f} s without the evaluations digest indexes and "
            f"{g['gc_with']:.3f} s with them: without, its plan scans evaluations once per "
            "accelerator, quadratic in the number of trials.",
        ]
    L += ["", "## Query plans", ""]
    for bk in backends:
        for when in ("before", "after"):
            L += [f"### {bk}, {when} migration 3", ""]
            for label, plan in res["e"][bk][f"plans_{when}"].items():
                L += [f"{label}:", "", "```", *plan, "```", ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(L).rstrip() + "\n")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version}
    for pkg in ("cosearch", "optuna", "sqlalchemy", "psycopg", "numpy", "optuna-dashboard"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def machine() -> str:
    model = ""
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    cores = len(os.sched_getaffinity(0))
    return f"{model or platform.processor()}, {cores} usable cores, {platform.platform()}"


if __name__ == "__main__":
    sys.exit(main())
