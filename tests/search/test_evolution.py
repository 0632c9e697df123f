from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.study import StudyDirection
from optuna.trial import TrialState, create_trial

import cosearch
from cosearch.config import load_config
from cosearch.errors import ConfigError
from cosearch.search.evolution import mutate, tournament_winners

from ..conftest import QUICK_TOML

POP = 8


def _campaign(tmp_path, name="evo", seed=0, trials=30):
    toml = QUICK_TOML.format(name=name, trials=trials, seed=seed, strategy="evolution")
    toml += f"population = {POP}\nsample_size = 3\n"
    path = tmp_path / f"{name}.toml"
    path.write_text(toml)
    return cosearch.Campaign.from_config(
        load_config(path), storage=f"sqlite:///{tmp_path / (name + '.db')}"
    )


def test_children_are_small_mutations_of_the_living_population(tmp_path):
    c = _campaign(tmp_path)
    c.run()
    done = sorted(c.trials((TrialState.COMPLETE,)), key=lambda t: t.number)
    assert len(done) == 30
    names = sorted(done[0].params)
    for i in range(POP, len(done)):
        child = done[i].params
        alive = done[i - POP : i]  # one worker: the POP latest finished trials
        changed = [sum(child[n] != m.params[n] for n in names) for m in alive]
        # a child is some member with at least one and (at rate 1/n) few parameters changed
        assert 1 <= min(changed) <= len(names) // 2, (i, changed)


def test_same_seed_same_campaign(tmp_path):
    a, b = _campaign(tmp_path, "a", trials=16), _campaign(tmp_path, "b", trials=16)
    a.run()
    b.run()
    pa = [t.params for t in sorted(a.trials(), key=lambda t: t.number)]
    pb = [t.params for t in sorted(b.trials(), key=lambda t: t.number)]
    assert pa == pb
    c = _campaign(tmp_path, "c", seed=1, trials=16)
    c.run()
    assert [t.params for t in sorted(c.trials(), key=lambda t: t.number)] != pa


def _trial(values, constraints=()):
    return create_trial(
        values=list(values),
        params={},
        distributions={},
        system_attrs={"constraints": list(constraints)},
    )


def test_tournament_prefers_feasible_then_nondominated():
    dirs = [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE]
    sample = [
        _trial([90.0, 5.0], [0.5]),  # infeasible, best objectives
        _trial([80.0, 2.0], [0.0]),  # feasible, non-dominated
        _trial([70.0, 3.0], [-1.0]),  # feasible, dominated by the previous one
        _trial([85.0, 4.0], [0.0]),  # feasible, non-dominated
    ]
    assert tournament_winners(sample, dirs) == [1, 3]
    # with nothing feasible the least-violating members compete
    worse = [_trial([99.0, 1.0], [2.0]), _trial([10.0, 9.0], [0.1])]
    assert tournament_winners(worse, dirs) == [1]


def test_mutation_changes_something_and_stays_in_the_space():
    space = {
        "net.op": CategoricalDistribution(["a", "b", "c"]),
        "hw.rows": IntDistribution(4, 64, step=4),
        "hw.mhz": FloatDistribution(100.0, 1000.0, log=True),
    }
    parent = {"net.op": "a", "hw.rows": 32, "hw.mhz": 500.0}
    rng = np.random.default_rng(0)
    for _ in range(200):
        child = mutate(parent, space, rng)
        assert child != parent
        for name, dist in space.items():
            assert dist._contains(dist.to_internal_repr(child[name])), (name, child[name])


def test_options_are_checked():
    with pytest.raises(ConfigError, match="sample_size"):
        cosearch.search.get_strategy("evolution", population=4, sample_size=5)
    assert "evolution" in cosearch.list_strategies()


def test_runs_in_a_plain_optuna_study():
    """It is an ordinary Optuna sampler: usable outside cosearch too."""
    sampler = cosearch.search.get_strategy("evolution", population=6, sample_size=2).sampler(seed=3)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(
        lambda t: (t.suggest_float("x", 0, 1), (1 - t.suggest_float("x", 0, 1)) ** 2), 30
    )
    assert len(study.trials) == 30 and len(study.best_trials) >= 1


def test_the_population_is_the_newest_trials_that_set_every_parameter(monkeypatch):
    """The sampler scans from the newest trial (it checked every trial's parameters, 54 ms a
    proposal at 5,000 trials); the population is unchanged: the `population` newest COMPLETE
    trials with every parameter of the search space."""
    import cosearch.search.evolution as evolution

    sampler = cosearch.search.get_strategy("evolution", population=4, sample_size=4).sampler(seed=0)
    study = optuna.create_study(directions=["minimize"], sampler=sampler)
    dists = {"x": FloatDistribution(0, 1), "y": FloatDistribution(0, 1)}
    for i in range(12):
        both = i % 3 != 2  # every third trial lacks y
        params = {"x": i / 12, "y": 0.5} if both else {"x": i / 12}
        study.add_trial(
            create_trial(
                params=params,
                distributions={k: dists[k] for k in params},
                values=[float(i)],
            )
        )
    seen = []
    real = evolution.tournament_winners
    monkeypatch.setattr(evolution, "tournament_winners", lambda s, d: seen.append(s) or real(s, d))
    trial = study.ask()
    params = sampler.sample_relative(study, study.trials[-1], dists)
    assert params and sorted(t.number for t in seen[0]) == [6, 7, 9, 10]
    study.tell(trial, 0.0)
