"""Multi-fidelity campaigns: [screen] validation, screening, promotion, per-fidelity fronts."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest

from cosearch import Campaign
from cosearch.cli import main
from cosearch.config import parse_config
from cosearch.errors import ConfigError

from .conftest import QUICK_TOML, run_cli


class _Result:
    def __init__(self, returncode: int, out: str, err: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, out, err


def cli(capsys, *args: str) -> _Result:
    """The command in this process (run_cli starts an interpreter: seconds per call)."""
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return _Result(code, out, err)


SCREEN = """
[screen]
cost = "analytical:systolic"
candidates = 200
promote = 10
batch_size = 64
"""


def _toml(name: str = "scr", screen: str = SCREEN, trials: int = 20) -> str:
    return QUICK_TOML.format(name=name, trials=trials, seed=1, strategy="random") + screen


@pytest.mark.parametrize(
    ("screen", "key", "needle"),
    [
        (
            "[screen]\ncandidates = 5\npromote = 6\n",
            "screen.promote",
            "must be <= screen.candidates",
        ),
        ("[screen]\ncandidates = 0\n", "screen.candidates", "must be an int in [1,"),
        ("[screen]\nspeed = 3\n", "screen.speed", "unknown key screen.speed"),
        ('[screen]\ncost = "magic:systolic"\n', "screen.cost", "source kind 'magic'"),
        ('[screen]\naccuracy = "benchmark:nb201/mnist"\n', "screen.accuracy", "nb201/mnist"),
    ],
)
def test_screen_table_errors_name_key_and_line(screen, key, needle):
    text = _toml(screen=screen)
    with pytest.raises(ConfigError) as info:
        parse_config(text, path="c.toml")
    err = info.value
    assert err.key == key and needle in str(err)
    line = text.splitlines().index("[screen]") + 1
    assert str(err).startswith("c.toml:") and int(str(err).split(":")[1]) >= line


def test_screen_must_produce_an_objective():
    text = _toml(screen='[screen]\ncost = "analytical:systolic"\n').replace(
        'latency_ms = "minimize"\nenergy_mj = "minimize"\n', ""
    )
    with pytest.raises(ConfigError, match="produce none of the objectives"):
        parse_config(text)


def test_screen_is_optional_and_ignored_by_identity():
    plain = parse_config(_toml(screen=""))
    screened = parse_config(_toml())
    assert plain.screen is None and screened.screen.promote == 10
    assert plain.identity() == screened.identity()


@pytest.fixture(scope="module")
def screened(tmp_path_factory):
    d = tmp_path_factory.mktemp("screen")
    cfg = d / "scr.toml"
    cfg.write_text(_toml())
    url = f"sqlite:///{d / 's.db'}"
    c = Campaign.from_toml(cfg, storage=url)
    s = c.screen(200)
    p = c.promote(10)
    return c, url, cfg, s, p


def test_screened_trials_are_standard_complete_optuna_trials(screened):
    c, url, _, s, _ = screened
    assert s.screened == 200 and s.total == 200
    study = optuna.load_study(study_name="scr:screen", storage=url)
    trials = study.get_trials()
    assert len(trials) == 200 and all(t.state.name == "COMPLETE" for t in trials)
    assert study.metric_names == ["latency_ms", "energy_mj"]  # the objectives screening gives
    # cost only: accuracy was not measured, so the screened trials are fidelity 0
    assert {t.user_attrs["fidelity"] for t in trials} == {0.0}
    assert all(t.user_attrs["sources"]["latency_ms"].startswith("analytical:") for t in trials)
    # the main study is untouched by screening: only the promoted trials are in it
    assert c.count() == 10


def test_promoted_trials_are_the_screened_front_best(screened):
    c, url, _, _, p = screened
    assert p.promoted == 10 and p.available == 190
    screen = {t.number: t for t in optuna.load_study(study_name="scr:screen", storage=url).trials}
    main = c.trials()
    src = {t.user_attrs["screened_from"]: t for t in main}
    assert len(src) == 10
    for number, t in src.items():
        assert t.params == screen[number].params
        ev = c.store.evaluation(t._trial_id)
        fid = {m["metric"]: (m["source"], m["fidelity"]) for m in ev["measurements"]}
        assert fid["accuracy"] == ("benchmark:nb201/cifar10", 1.0)
    feasible = [t for t in screen.values() if all(v <= 0 for v in t.constraints.values())]
    assert len(feasible) >= 10 and all(n in {t.number for t in feasible} for n in src)

    def dominates(a, b):  # both objectives minimized
        return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))

    # picked by non-dominated rank: no unpromoted feasible candidate dominates a promoted one
    for u in feasible:
        if u.number not in src:
            assert not any(dominates(u.values, screen[n].values) for n in src)


def test_a_second_promotion_takes_other_candidates(screened):
    c, *_ = screened
    first = {t.user_attrs["screened_from"] for t in c.trials()}
    again = c.promote(5)
    assert again.promoted == 5
    numbers = [t.user_attrs["screened_from"] for t in c.trials()]
    assert len(numbers) == len(set(numbers)) == 15 and first < set(numbers)


def test_pareto_and_status_per_fidelity(screened, capsys):
    c, url, *_ = screened
    groups = {(f.stage, f.fidelity): f for f in c.fronts()}
    assert set(groups) == {("main", 1.0), ("screen", 0.0)}
    assert groups[("screen", 0.0)].trials == 200
    assert [t.number for t in c.pareto()] == [t.number for t in groups[("main", 1.0)].front]

    r = cli(capsys, "pareto", "scr", "--storage", url, "--fidelity", "all")
    assert r.returncode == 0, r.stderr
    assert "fidelity 1 (evaluated" in r.stdout and "fidelity 0 (screened" in r.stdout
    r = cli(capsys, "pareto", "scr", "--storage", url, "--fidelity", "1.0", "--format", "json")
    rows = json.loads(r.stdout)
    assert rows and {row["stage"] for row in rows} == {"main"}
    assert all("screened_from" in row for row in rows)
    r = cli(capsys, "pareto", "scr", "--storage", url, "--fidelity", "0.5")
    assert r.returncode == 2 and "its fidelities: 0, 1" in r.stderr

    r = cli(capsys, "status", "scr", "--storage", url, "--format", "json")
    info = json.loads(r.stdout)
    assert info["screened"] == 200
    by = {(g["stage"], g["fidelity"]): g["complete"] for g in info["fidelity"]}
    assert by[("screen", 0.0)] == 200 and by[("main", 1.0)] == info["trials"]["COMPLETE"]


def test_cli_run_screen_and_promote(tmp_path, capsys):
    cfg = tmp_path / "cli.toml"
    cfg.write_text(_toml(name="cliscr", screen=SCREEN.replace("200", "30").replace("10", "3")))
    url = f"sqlite:///{tmp_path / 'c.db'}"
    r = run_cli("run", str(cfg), "--storage", url, "--screen", "25", "--promote", "2")
    assert r.returncode == 0, r.stderr
    assert "screened 25 candidates" in r.stderr and "promoted 2 candidates" in r.stderr
    assert "Pareto front of 'cliscr'" in r.stdout
    # automatic rounds when [screen] is present: 30 screened + best 3 promoted per round
    r = cli(capsys, "run", str(cfg), "--storage", url, "--trials", "5", "--no-progress")
    assert r.returncode == 0, r.stderr
    info = json.loads(cli(capsys, "status", "cliscr", "--storage", url, "--format", "json").stdout)
    assert info["trials"]["COMPLETE"] == 5 and info["screened"] == 55
    r = cli(capsys, "run", str(cfg), "--storage", url, "--screen", "0")
    assert r.returncode == 2 and "--screen must be an int in [1, 10000000]" in r.stderr
    plain = tmp_path / "plain.toml"
    plain.write_text(_toml(name="plain", screen=""))
    r = cli(capsys, "run", str(plain), "--storage", url, "--promote", "1")
    assert r.returncode == 2 and "need a [screen] table" in r.stderr


def test_promotion_order_puts_feasible_fronts_first():
    from cosearch._pareto import promotion_order

    values = np.array([[1.0, 5.0], [2.0, 2.0], [5.0, 1.0], [3.0, 3.0], [0.5, 0.5], [4.0, 4.0]])
    viol = np.array([0.0, 0.0, 0.0, 0.0, 2.0, 1.0])
    order = promotion_order(values, ["minimize", "minimize"], viol).tolist()
    # rank 0: rows 0, 1, 2 (extremes 0 and 2 before the middle one); rank 1: row 3; then
    # the infeasible rows by violation, although row 4 dominates everything
    assert order[:2] in ([0, 2], [2, 0]) and order[2:] == [1, 3, 5, 4]


def test_ctrl_c_keeps_what_was_screened_and_queued(tmp_path, monkeypatch):
    cfg = tmp_path / "int.toml"
    cfg.write_text(_toml(name="intr"))
    c = Campaign.from_toml(cfg, storage=f"sqlite:///{tmp_path / 'i.db'}")
    screener = c.screener
    real_record = screener._record
    calls = {"n": 0}

    def record_then_ctrl_c(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 40:
            raise KeyboardInterrupt
        return real_record(*args, **kwargs)

    # 39 candidates scored, all inside one unwritten batch of 64 when Ctrl-C comes
    monkeypatch.setattr(screener, "_record", record_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        c.screen(100, batch_size=64)
    assert screener.count() == 39
    monkeypatch.undo()

    # Ctrl-C while the second of four promoted candidates is being measured
    real_evaluate = c.evaluator.evaluate
    calls["n"] = 0

    def evaluate_then_ctrl_c(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_evaluate(*args, **kwargs)

    first, _ = screener.candidates(4)
    monkeypatch.setattr(c.evaluator, "evaluate", evaluate_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        c.promote(4)
    monkeypatch.undo()
    by_state = {}
    for t in c.study.get_trials(deepcopy=False):
        by_state.setdefault(t.state.name, []).append(t.user_attrs["screened_from"])
    # nothing left RUNNING: one measured, the cut one FAIL, the two not started still queued
    assert {k: len(v) for k, v in by_state.items()} == {"COMPLETE": 1, "FAIL": 1, "WAITING": 2}
    # the cut one measured nothing, so its candidate is available again; queued ones are taken
    again, available = screener.candidates(39)
    assert available == 39 - 1 - 2
    assert by_state["FAIL"][0] in {t.number for t in again}
    assert not set(by_state["WAITING"]) & {t.number for t in again}
    # a run measures the queued candidates first, then screens for the rest
    summary = c.run_screened(4)
    assert summary.completed == 4 and summary.ran == 3
    done = [t for t in c.study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    assert set(by_state["WAITING"]) <= {t.user_attrs["screened_from"] for t in done}
    assert all(t.state.name in ("COMPLETE", "FAIL") for t in c.study.get_trials())


def test_a_dead_workers_promotion_goes_back_to_the_pool(tmp_path):
    import socket
    import subprocess
    import sys

    cfg = tmp_path / "dead.toml"
    cfg.write_text(_toml(name="dead"))
    c = Campaign.from_toml(cfg, storage=f"sqlite:///{tmp_path / 'd.db'}")
    c.screen(50)
    (tid,), _ = c.screener.queue(1)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = f"{socket.gethostname()}:{int(gone.stdout)}"  # a process that has exited
    assert c.screener._claim(tid, dead)
    number = c.study.get_trials()[0].user_attrs["screened_from"]
    summary = c.run_screened(3)
    assert summary.interrupted_marked == 1 and summary.completed == 3
    trials = c.study.get_trials(deepcopy=False)
    lost = next(t for t in trials if t._trial_id == tid)
    assert lost.state.name == "FAIL" and "died" in lost.user_attrs["fail_reason"]
    # not retried as a plain trial: its candidate went back to the screened pool
    assert not any("retry_of" in t.user_attrs for t in trials)
    assert all(t.state.name in ("COMPLETE", "FAIL") for t in trials)
    # ... so it was promoted again and measured, or is still there to be promoted
    measured = {t.user_attrs["screened_from"] for t in trials if t.state.name == "COMPLETE"}
    available = {t.number for t in c.screener.candidates(60)[0]}
    assert number in measured | available


def test_rounds_from_the_same_count_draw_different_candidates(tmp_path):
    cfg = tmp_path / "salt.toml"
    cfg.write_text(_toml(name="salt"))
    c = Campaign.from_toml(cfg, storage=f"sqlite:///{tmp_path / 's.db'}")
    first = c.screener._round_seed(0)
    second = c.screener._round_seed(0)  # a second worker starting at the same moment
    assert first.entropy == np.random.SeedSequence([1, 1, 0]).entropy  # seed 1, as before
    assert first.spawn_key == second.spawn_key == ()
    a = np.random.default_rng(first).random(4)
    b = np.random.default_rng(second).random(4)
    assert not np.allclose(a, b)
    # a resumed campaign continues from the count it reached, with the plain seed
    assert np.allclose(
        np.random.default_rng(c.screener._round_seed(200)).random(4),
        np.random.default_rng(np.random.SeedSequence([1, 1, 200])).random(4),
    )


def test_a_screen_study_left_half_made_is_taken_over(tmp_path):
    """A worker that created the screen study and stopped before describing it (or, before
    the open lock, one still describing it while another worker loaded it) must not make
    every later screening fail with "already has screened trials from sources None"."""
    cfg = tmp_path / "half.toml"
    cfg.write_text(_toml(name="half"))
    url = f"sqlite:///{tmp_path / 'h.db'}"
    c = Campaign.from_toml(cfg, storage=url)
    c.study  # noqa: B018 - the campaign first, as a worker would have it
    optuna.create_study(
        study_name="half:screen", storage=url, directions=["minimize", "minimize"]
    )  # bare: no sources, no metric names
    s = c.screen(20)
    assert s.screened == 20
    assert c.screen_study.user_attrs["cosearch.sources"]["cost"].startswith("analytical:")


def test_promotions_taken_by_other_workers_are_not_rounds_without_progress(tmp_path, monkeypatch):
    """Another worker may claim each trial a round queues before this one does (promote = 1,
    long trials). Those trials are running, not lost: three such rounds in a row raised
    'three screening rounds in a row completed no trial'."""
    from cosearch import _screening
    from cosearch._workers import claim_trial

    cfg = tmp_path / "race.toml"
    cfg.write_text(
        _toml(name="race", trials=4, screen=SCREEN.replace("promote = 10", "promote = 1"))
    )
    c = Campaign.from_toml(cfg, storage=f"sqlite:///{tmp_path / 'r.db'}")
    real_queue = _screening.Screener.queue
    taken: list[int] = []

    def queue_then_taken_elsewhere(self, k, *, target=None):
        out = real_queue(self, k, target=target)
        if len(taken) < 3:  # the other worker claims it first and keeps it running ...
            claim = claim_trial(c.study, c.store, 4, "elsewhere:1", create=False)
            assert claim.state == "run"  # with its heartbeat
            taken.append(claim.trial_id)
        else:  # ... and completes them all while this worker runs the fourth
            for tid in taken:
                c.study.tell(c.study._storage.get_trial(tid).number, [90.0, 1.0, 1.0])
        return out

    monkeypatch.setattr(_screening.Screener, "queue", queue_then_taken_elsewhere)
    summary = c.run_screened(4)
    assert summary.completed == 4 and summary.ran == 1 and len(taken) == 3


def test_rounds_whose_promotions_all_fail_stop_with_one_error(tmp_path, monkeypatch):
    from cosearch.errors import CosearchError

    cfg = tmp_path / "fail.toml"
    cfg.write_text(
        _toml(name="fail", trials=4, screen=SCREEN.replace("promote = 10", "promote = 2"))
    )
    c = Campaign.from_toml(cfg, storage=f"sqlite:///{tmp_path / 'f.db'}")

    def broken(arch, acc, *, given=None):
        raise RuntimeError("simulator crashed")

    monkeypatch.setattr(c.evaluator, "evaluate", broken)  # the promoted trials' sources only
    rounds = []
    real_screen = c.screener.screen
    monkeypatch.setattr(
        c.screener, "screen", lambda *a, **k: rounds.append(1) or real_screen(*a, **k)
    )
    with pytest.raises(CosearchError, match="three screening rounds in a row completed no trial"):
        c.run_screened(4)
    assert len(rounds) == 3  # its own claimed promotions are not progress
    states = [t.state.name for t in c.study.get_trials(deepcopy=False)]
    assert states and set(states) == {"FAIL"}
