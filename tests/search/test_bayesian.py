"""bayesian: options, every engine through a Campaign, the predictor sampler's contracts
(inside the space, deterministic, distinct batch proposals, feasibility first), EHVI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

import cosearch
from cosearch import Campaign, load_config
from cosearch.errors import ConfigError
from cosearch.search import get_strategy, list_strategies
from cosearch.search._bayes_acq import expected_hvi, improvement_points
from cosearch.search._hypervolume import hypervolume
from cosearch.search.bayesian import SAMPLERS, PredictorSampler
from cosearch.spaces.nb201 import EDGE_NAMES, OPS, benchmark_accuracy

optuna.logging.set_verbosity(optuna.logging.WARNING)

ROOT = Path(__file__).resolve().parents[2]
NB201 = cosearch.get_space("nb201")


def _nb201_objective(trial: optuna.Trial) -> tuple[float, float]:
    """Table lookups only: CIFAR-10 accuracy (max) and a work proxy (min), no ONNX."""
    params = {f"net.{e}": trial.suggest_categorical(f"net.{e}", OPS) for e in EDGE_NAMES}
    work = sum({"nor_conv_3x3": 9.0, "nor_conv_1x1": 1.0}.get(v, 0.1) for v in params.values())
    return benchmark_accuracy(params, "cifar10"), work


def _study(seed: int = 0, **opts) -> optuna.Study:
    sampler = get_strategy("bayesian", **opts).sampler(seed=seed)
    return optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)


# -- registration and options --------------------------------------------------------------------
def test_registered_with_every_engine():
    assert "bayesian" in list_strategies()
    kinds = {
        "predictor": PredictorSampler,
        "tpe": optuna.samplers.TPESampler,
        "gp": optuna.samplers.GPSampler,
        "nsga2": optuna.samplers.NSGAIISampler,
        "nsga3": optuna.samplers.NSGAIIISampler,
    }
    assert set(kinds) == set(SAMPLERS)
    for name, cls in kinds.items():
        assert isinstance(get_strategy("bayesian", sampler=name).sampler(seed=0), cls)
    assert isinstance(get_strategy("bayesian").sampler(seed=0), PredictorSampler)


@pytest.mark.parametrize(
    ("opts", "key"),
    [
        ({"sampler": "cmaes"}, "sampler"),
        ({"acquisition": "ei"}, "acquisition"),
        ({"transform": "zscore"}, "transform"),
        ({"pool_size": 2}, "pool_size"),
        ({"n_trees": 1}, "n_trees"),
        ({"beta": -1.0}, "beta"),
        ({"beyond": -0.1}, "beyond"),
        ({"sampler": "tpe", "beyond": 0.4}, "beyond"),  # only the predictor sampler's box
        ({"n_startup": "5"}, "n_startup"),
        ({"sampler": "tpe", "pool_size": 100}, "pool_size"),  # not read by TPE
        ({"population_size": 10}, "population_size"),  # not read by the predictor sampler
        ({"beta": 2.0}, "beta"),  # parego's LCB width, not read by the default EHVI
        ({"acquisition": "parego", "mc_points": 4096}, "mc_points"),
        ({"acquisition": "parego", "beyond": 0.4}, "beyond"),
        ({"nope": 1}, "nope"),
    ],
)
def test_bad_options_raise_one_line_config_error(opts, key):
    with pytest.raises(ConfigError) as err:
        get_strategy("bayesian", **opts)
    assert err.value.key == key
    assert "\n" not in str(err.value) and key in str(err.value)


def test_bad_option_in_toml_names_the_key(make_config):
    text = make_config(strategy="bayesian").read_text() + 'sampler = "cmaes"\n'
    with pytest.raises(ConfigError) as err:
        load_config(make_config(name="bad", text=text))
    assert err.value.key == "strategy.sampler"
    assert "bad.toml:21:" in str(err.value) and "'cmaes'" in str(err.value)


# -- every engine through a real campaign --------------------------------------------------------
@pytest.mark.parametrize("engine", SAMPLERS)
def test_each_engine_runs_a_campaign_on_sqlite(engine, make_config, db_url):
    extra = {"nsga2": "population_size = 4\n", "nsga3": "population_size = 4\n"}.get(
        engine, "n_startup = 4\n"
    )
    text = make_config(strategy="bayesian").read_text() + f'sampler = "{engine}"\n' + extra
    n = 10
    if engine == "gp":
        # Optuna's GPSampler takes ~35 s per multi-objective proposal on this space (2 cores,
        # no greenlet): one objective and one model-guided trial keep the test short
        text = text.replace('latency_ms = "minimize"\n', "").replace('energy_mj = "minimize"\n', "")
        n = 5
    cfg = load_config(make_config(name=f"b-{engine}", text=text))
    campaign = Campaign.from_config(cfg, storage=db_url)
    summary = campaign.run(n_trials=n)
    assert summary.completed == n and summary.failed == 0
    dists = campaign.distributions
    for t in campaign.trials((TrialState.COMPLETE,)):
        assert set(t.params) == set(dists)
        for name, value in t.params.items():
            assert dists[name]._contains(dists[name].to_internal_repr(value))
        assert len(t.constraints) == 2  # area_mm2 <= 4, plus the cost model's violations
    if engine == "predictor":
        assert campaign.study.sampler.last_mode in ("ehvi", "feasibility")


def test_example_parses_and_runs_briefly(tmp_path):
    cfg = load_config(ROOT / "examples" / "bayesian_nb201.toml")
    assert cfg.strategy == "bayesian" and cfg.trials == 100
    assert cfg.strategy_options["sampler"] == "predictor"
    campaign = Campaign.from_config(cfg, storage=f"sqlite:///{tmp_path / 'ex.db'}")
    summary = campaign.run(n_trials=12)
    assert summary.completed == 12
    assert campaign.study.sampler.last_mode == "ehvi"  # past n_startup, feasible trials exist
    assert campaign.pareto()


# -- the predictor sampler -----------------------------------------------------------------------
def _run(study: optuna.Study, n: int) -> list[dict]:
    study.optimize(_nb201_objective, n_trials=n)
    return [t.params for t in study.trials]


def test_predictor_is_deterministic_per_seed_and_differs_across_seeds():
    a = _run(_study(seed=3, n_startup=5, pool_size=64), 12)
    b = _run(_study(seed=3, n_startup=5, pool_size=64), 12)
    c = _run(_study(seed=4, n_startup=5, pool_size=64), 12)
    assert a == b
    assert a != c


def test_beyond_reaches_the_acquisition():
    """``beyond`` sizes the EHVI box: same seed, same random start, other proposals after."""
    near = _run(_study(seed=3, n_startup=5, pool_size=64, beyond=0.0), 12)
    far = _run(_study(seed=3, n_startup=5, pool_size=64, beyond=2.0), 12)
    assert near[:5] == far[:5]
    assert near[5:] != far[5:]


def test_pending_trials_get_distinct_candidates():
    study = _study(seed=0, n_startup=5, pool_size=64)
    _run(study, 15)
    done = {tuple(sorted(t.params.items())) for t in study.trials}
    # four workers ask at once: none has told its result yet
    asked = [study.ask() for _ in range(4)]
    for t in asked:
        _nb201_objective(t)  # suggests every parameter; the trial stays RUNNING
    proposals = [tuple(sorted(t.params.items())) for t in asked]
    assert study.sampler.last_mode == "ehvi"
    assert len(set(proposals)) == 4
    assert not set(proposals) & done


def test_infeasible_history_steers_towards_feasibility():
    """Constraint 15 - x <= 0: the first 30 trials all have x <= 9 (infeasible); the model
    sees slack shrink with x and proposes from the top of the range (random: 1 in 2)."""
    study = _study(seed=0, n_startup=6, pool_size=128)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        x = trial.suggest_int("hw.x", 0, 19)
        y = trial.suggest_categorical("net.y", ["a", "b", "c"])
        trial.set_constraint("slack", 15.0 - x)
        return float(x), float(y == "a")

    for x in range(10):
        for y in "abc":
            study.enqueue_trial({"hw.x": x, "net.y": y})
    study.optimize(objective, n_trials=30)
    assert not any(all(v <= 0 for v in t.constraints.values()) for t in study.trials)
    study.optimize(objective, n_trials=1)
    assert study.sampler.last_mode == "feasibility"
    # trees do not extrapolate: every x >= 9 is predicted like x = 9, the least infeasible
    assert study.trials[-1].params["hw.x"] >= 9


def test_expected_hvi_matches_exact_improvement_for_certain_predictions():
    rng = np.random.default_rng(0)
    front = np.array([[0.2, 0.8], [0.5, 0.5], [0.8, 0.2]])
    ref = np.array([1.1, 1.1])
    points, cell = improvement_points(front, np.array([-0.2, -0.2]), ref, 200_000, rng)
    cands = np.array([[0.3, 0.3], [0.1, 0.9], [0.9, 0.9], [0.6, 0.6]])
    est = expected_hvi(cands, np.full_like(cands, 1e-6), points, cell)
    base = hypervolume(front, ref)
    exact = np.array([hypervolume(np.vstack([front, c]), ref) - base for c in cands])
    assert exact[2] == 0.0 and est[2] == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(est, exact, rtol=0.05, atol=2e-3)
    # uncertainty about a dominated candidate gives it some expected improvement
    fuzzy = expected_hvi(cands[2:3], np.full((1, 2), 0.3), points, cell)
    assert fuzzy[0] > 0.0
