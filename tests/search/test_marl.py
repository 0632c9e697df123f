"""marl / rl: registration, options, grouping, learning, workers, checkpoints, hypervolume."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

import cosearch
from cosearch import Campaign, load_config
from cosearch.errors import ConfigError
from cosearch.search import get_strategy, list_strategies
from cosearch.search._hypervolume import hypervolume, normalize
from cosearch.search._marl_learner import Learner
from cosearch.search._marl_reward import (
    RewardModel,
    hv_scalarization,
    infeasibility,
    shared_rewards,
    utilities,
)
from cosearch.search._marl_space import ParamCoder, default_groups, resolve_groups
from cosearch.search.marl import LOGP_KEY, W_KEY, MARLSampler
from cosearch.store import open_store

optuna.logging.set_verbosity(optuna.logging.WARNING)

ROOT = Path(__file__).resolve().parents[2]

NB201_SYSTOLIC = list(cosearch.get_space("nb201").distributions()) + list(
    cosearch.get_hardware_space("systolic").distributions()
)


def _toy(trial: optuna.Trial) -> float:
    """Separable: the best ``net.a`` is "r" (index 2), the best ``hw.b`` is 4."""
    a = trial.suggest_categorical("net.a", ["p", "q", "r", "s", "t"])
    b = trial.suggest_int("hw.b", 0, 4)
    return float(a == "r") + float(b == 4)


def _toy_study(strategy: str = "marl", seed: int = 0, storage=None, **opts):
    sampler = get_strategy(strategy, **opts).sampler(seed=seed)
    study = optuna.create_study(direction="maximize", sampler=sampler, storage=storage)
    return sampler, study


# -- registration and options -------------------------------------------------------------------
def test_registered():
    assert {"marl", "rl"} <= set(list_strategies())
    assert isinstance(get_strategy("marl").sampler(seed=0), MARLSampler)
    assert isinstance(get_strategy("rl").sampler(seed=0), MARLSampler)


@pytest.mark.parametrize(
    ("name", "opts", "key"),
    [
        ("marl", {"lr": 0.0}, "lr"),
        ("marl", {"batch_size": "8"}, "batch_size"),
        ("marl", {"normalize": "zscore"}, "normalize"),
        ("marl", {"scalarize": "sum"}, "scalarize"),
        ("marl", {"baseline": "none"}, "baseline"),
        ("rl", {"critic": "tree"}, "critic"),
        ("marl", {"proposals": 0}, "proposals"),
        ("rl", {"proposals": 4, "critic": "mlp"}, "proposals"),
        ("marl", {"weights": [1, -1, 0]}, "weights"),
        ("marl", {"weights": [0, 0]}, "weights"),
        ("marl", {"groups": "net.*"}, "groups"),
        ("marl", {"groups": [["net.*"], []]}, "groups"),
        ("marl", {"groups": [["net.*", 3]]}, "groups"),
        ("marl", {"nope": 1}, "nope"),
        ("rl", {"groups": [["net.*"]]}, "groups"),  # one agent: nothing to group
    ],
)
def test_bad_options_raise_config_error(name, opts, key):
    with pytest.raises(ConfigError) as err:
        get_strategy(name, **opts)
    assert err.value.key == key
    assert name in str(err.value)


def test_bad_option_in_toml_names_the_key(make_config):
    text = make_config(strategy="marl").read_text() + 'normalize = "zscore"\n'
    path = make_config(name="bad", text=text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.key == "strategy.normalize" and err.value.line is not None


# -- action coding and grouping -----------------------------------------------------------------
def test_param_coder_round_trips_every_action():
    rng = np.random.default_rng(0)
    for name, dist in cosearch.get_hardware_space("systolic").distributions().items():
        coder = ParamCoder.build(name, dist, bins=8, max_choices=32)
        assert 2 <= coder.n <= 32
        for action in range(coder.n):
            for _ in range(20):
                value = coder.decode(action, rng)
                assert coder.contains(value)
                assert coder.encode(value) == action
    log_float = optuna.distributions.FloatDistribution(4.0, 64.0, log=True)
    coder = ParamCoder.build("hw.x", log_float, bins=4, max_choices=32)
    # equal-width bins in log space: 4..8, 8..16, 16..32, 32..64
    assert [coder.encode(v) for v in (4.0, 7.9, 8.1, 20.0, 63.0, 64.0)] == [0, 0, 1, 2, 3, 3]


def test_default_groups_nb201_systolic():
    groups = dict(default_groups(NB201_SYSTOLIC))
    assert groups == {
        "net.cell[1-2]": ["net.edge_1_0", "net.edge_2_0", "net.edge_2_1"],
        "net.cell[3]": ["net.edge_3_0", "net.edge_3_1", "net.edge_3_2"],
        "hw.compute": ["hw.pe_rows", "hw.pe_cols", "hw.precision_bits"],
        "hw.dataflow": ["hw.dataflow"],
        "hw.memory": ["hw.ifmap_sram_kib", "hw.filter_sram_kib", "hw.ofmap_sram_kib"],
        "hw.offchip": ["hw.dram_gbps", "hw.clock_mhz"],
    }


def test_default_groups_ofa_by_stage():
    names = list(cosearch.get_space("ofa_mbv3").distributions())
    groups = dict(default_groups(names))
    assert list(groups) == [f"net.stage{s}" for s in range(5)] + ["net.resolution"]
    assert groups["net.stage1"] == [f"net.ks_{b}" for b in range(4, 8)] + [
        f"net.e_{b}" for b in range(4, 8)
    ] + ["net.d_1"]


def test_user_groups_override_and_are_checked():
    groups = resolve_groups(NB201_SYSTOLIC, [["net.edge_*"], ["hw.*_sram_kib", "hw.dataflow"]])
    assert groups[0] == ("group0", [n for n in NB201_SYSTOLIC if n.startswith("net.")])
    assert groups[1] == (  # in the order the entries name them
        "group1",
        ["hw.ifmap_sram_kib", "hw.filter_sram_kib", "hw.ofmap_sram_kib", "hw.dataflow"],
    )
    rest = dict(groups[2:])
    assert rest == {
        "hw.compute": ["hw.pe_rows", "hw.pe_cols", "hw.precision_bits"],
        "hw.offchip": ["hw.dram_gbps", "hw.clock_mhz"],
    }
    with pytest.raises(ConfigError, match="matches no parameter"):
        resolve_groups(NB201_SYSTOLIC, [["hw.pe_*"], ["hw.nothing"]])
    with pytest.raises(ConfigError, match="groups\\[0\\] and groups\\[1\\]"):
        resolve_groups(NB201_SYSTOLIC, [["hw.pe_*"], ["hw.pe_rows"]])
    assert resolve_groups(NB201_SYSTOLIC, None, single=True) == [("all", NB201_SYSTOLIC)]


@pytest.mark.parametrize("bad", ['[["hw.nothing_*"]]', '[["hw.pe_*"], ["hw.pe_rows"]]'])
def test_bad_groups_are_refused_with_the_config_before_any_trial(tmp_path, bad):
    """They were checked at the first learning step: trial 0 was already COMPLETE, so the
    campaign stayed behind and the corrected file was refused as a different campaign."""
    from ..conftest import QUICK_TOML

    text = QUICK_TOML.format(name="g", trials=4, seed=0, strategy="marl") + f"groups = {bad}\n"
    path = tmp_path / "g.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="groups") as err:
        load_config(path)
    assert err.value.line == text.count("\n")  # the groups line


# -- reward -------------------------------------------------------------------------------------
def test_reward_prefers_better_and_feasible():
    values = np.array([[90.0, 1.0], [80.0, 2.0], [90.0, 1.0]])
    dirs = ["maximize", "minimize"]
    cons = [[-1.0], [-1.0], [0.5]]  # the third is the first, but infeasible
    assert infeasibility(cons).tolist() == [0.0, 0.0, 2.0]
    u = utilities(values, dirs, infeasibility(cons) == 0, "log")
    assert u.min() >= 0 and u.max() <= 1 and u[0].tolist() == [1.0, 1.0]
    for scalarize in ("hypervolume", "chebyshev"):
        w = np.full((3, 2), 0.5**0.5 if scalarize == "hypervolume" else 0.5)
        r = shared_rewards(
            values, cons, dirs, np.arange(3), w, method="log", rho=0.05, penalty=1.0,
            scalarize=scalarize,
        )  # fmt: skip
        assert r[0] > r[1] and r[0] > r[2]


def test_reward_model_recovers_additive_objectives():
    """critic = "model": utilities additive in the actions are fitted exactly, and the reward
    is their scalarization under any preference, minus the predicted violation."""
    actions = np.array(list(itertools.product(range(3), range(4))))
    u = np.column_stack([0.2 * actions[:, 0] + 0.1 * actions[:, 1], 0.3 * (3 - actions[:, 1])])
    u = u / u.max(axis=0)
    infeas = (actions[:, 0] == 2).astype(float) * 1.5
    model = RewardModel(
        [3, 4], actions, u, infeas, scalarize="hypervolume", rho=0.05, penalty=1.0, ridge=1e-9
    )
    pred_u, pred_inf = model.predict(actions)
    np.testing.assert_allclose(pred_u, u, atol=1e-6)
    np.testing.assert_allclose(pred_inf, infeas, atol=1e-6)
    w = np.abs(np.random.default_rng(0).standard_normal((len(actions), 2)))
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    np.testing.assert_allclose(model(w, actions), hv_scalarization(u, w) - infeas, atol=1e-5)
    # a strong ridge shrinks towards the mean, never outside [0, 1]
    shrunk = RewardModel([3, 4], actions, u, infeas, scalarize="chebyshev", rho=0.05, penalty=1)
    assert shrunk.predict(actions)[0].min() >= 0 and shrunk.predict(actions)[0].max() <= 1


def test_model_critic_is_refitted_and_mlp_critic_untouched():
    sampler, study = _toy_study("marl", batch_size=4)
    study.optimize(_toy, n_trials=5)
    learner = sampler._learner
    assert isinstance(learner.q_model, RewardModel)
    before = {k: v.clone() for k, v in learner.critic.state_dict().items()}
    study.optimize(_toy, n_trials=8)
    after = learner.critic.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    mlp, study_mlp = _toy_study("marl", batch_size=4, critic="mlp")
    study_mlp.optimize(_toy, n_trials=13)
    assert mlp._learner.q_model is None


def test_proposals_keep_the_draw_the_reward_model_prefers(monkeypatch):
    """proposals = k: k policy draws per trial once the reward model exists (one before), and
    the model's favourite is suggested with that draw's own log-probabilities."""
    plain = Learner.act
    calls: list[bool] = []

    def counted(self, w, rng, explore=0.0):
        calls.append(self.q_model is None)
        return plain(self, w, rng, explore)

    monkeypatch.setattr(Learner, "act", counted)
    sampler, study = _toy_study("marl", batch_size=4, proposals=3)
    study.optimize(_toy, n_trials=12)
    with_model = calls.count(False)
    drawn = sum(LOGP_KEY in t.system_attrs for t in study.trials)
    assert with_model > 0 and with_model % 3 == 0
    assert calls.count(True) + with_model // 3 == drawn

    learner = sampler._learner
    draws = iter([([0, 0], [-1.0, -1.0]), ([2, 4], [-2.0, -3.0]), ([1, 1], [-1.5, -1.5])])
    monkeypatch.setattr(learner, "act", lambda w, rng, explore=0.0: next(draws))
    learner.q_model = lambda w, a: a.sum(axis=1).astype(float)  # prefers [2, 4]
    trial = study.ask()
    assert _toy(trial) == 2.0  # net.a = "r" (index 2) and hw.b = 4: the preferred draw
    assert study.trials[trial.number].system_attrs[LOGP_KEY] == {"net.a": -2.0, "hw.b": -3.0}


# -- learning -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("strategy", "critic"), list(itertools.product(["marl", "rl"], ["model", "mlp"]))
)
def test_learns_separable_toy_problem(strategy, critic):
    sampler, study = _toy_study(strategy, batch_size=4, critic=critic)
    study.optimize(_toy, n_trials=2)
    before = sampler.probabilities()
    assert before["net.a"][2] == pytest.approx(0.2) and before["hw.b"][4] == pytest.approx(0.2)
    study.optimize(_toy, n_trials=58)
    after = sampler.probabilities()
    assert sampler.updates >= 10
    assert after["net.a"][2] > 0.6 and after["hw.b"][4] > 0.6
    late = [t.value for t in study.trials[-15:]]
    early = [t.value for t in study.trials[:15]]
    assert np.mean(late) > np.mean(early) + 0.5
    if strategy == "marl":
        assert sampler.agents == [("net.global", ["net.a"]), ("hw.other", ["hw.b"])]
    else:
        assert sampler.agents == [("all", ["net.a", "hw.b"])]


def test_seeded_runs_repeat_and_seeds_differ():
    def params(seed):
        _, study = _toy_study(seed=seed, batch_size=4)
        study.optimize(_toy, n_trials=20)
        return [tuple(sorted(t.params.items())) for t in study.trials]

    assert params(3) == params(3)
    assert params(3) != params(4)


def test_trials_carry_preference_and_behaviour_logp():
    sampler, study = _toy_study(batch_size=4)
    study.optimize(_toy, n_trials=6)
    t = study.trials[-1]
    assert len(t.system_attrs[W_KEY]) == 1
    assert set(t.system_attrs[LOGP_KEY]) == {"net.a", "hw.b"}
    assert torch.get_num_threads() >= 1  # the sampler restores the caller's setting


def test_learns_from_trials_of_other_workers():
    storage = optuna.storages.InMemoryStorage()
    a, study_a = _toy_study(seed=1, storage=storage, batch_size=4)
    study_a.optimize(_toy, n_trials=24)
    b = get_strategy("marl", batch_size=4).sampler(seed=2)
    study_b = optuna.load_study(study_name=study_a.study_name, storage=storage, sampler=b)
    study_b.optimize(_toy, n_trials=1)  # before_trial reads every COMPLETE trial
    assert set(range(24)) <= set(b.learned)
    assert b.updates >= 6
    probs = b.probabilities()
    assert probs["net.a"][2] > 0.25 and probs["hw.b"][4] > 0.25
    # and worker A picks up B's trial on its next trial
    study_a.optimize(_toy, n_trials=4)
    assert 24 in a.learned


# -- campaigns, checkpoints and resume ----------------------------------------------------------
@pytest.mark.slow
def test_campaign_runs_checkpoints_and_resumes(make_config, db_url):
    cfg = load_config(make_config(name="m", trials=30, strategy="marl"))
    c1 = Campaign.from_config(cfg, storage=db_url)
    assert c1.run().completed == 30
    sampler1 = c1.study.sampler
    assert isinstance(sampler1, MARLSampler) and sampler1.updates >= 3
    assert len(sampler1.agents) == 6
    store = open_store(db_url)
    step, meta, tensors = store.load_checkpoint(c1.campaign_id, "marl")
    assert step == len(sampler1.learned) and meta["learner"]["updates"] == sampler1.updates
    final1 = sampler1.policy_state()
    assert final1 is not None
    for k, v in final1.items():
        assert torch.equal(tensors[k], v)

    # a fresh process resumes: the policy it starts from is the checkpointed one
    c2 = Campaign.from_config(cfg, storage=db_url)
    assert c2.run().ran == 0  # already at 30: builds the sampler, runs nothing
    sampler2 = c2.study.sampler
    assert isinstance(sampler2, MARLSampler) and sampler2.restored_step == step
    resumed = sampler2.policy_state()
    assert resumed is not None and resumed.keys() == final1.keys()
    for k, v in final1.items():
        assert torch.equal(resumed[k], v)
    assert sampler2.learned == sampler1.learned and sampler2.updates == sampler1.updates

    # and keeps learning from there
    c3 = Campaign.from_config(cfg, storage=db_url)
    assert c3.run(40).completed == 40
    sampler3 = c3.study.sampler
    assert isinstance(sampler3, MARLSampler) and sampler3.updates > sampler1.updates
    step3, _, _ = store.load_checkpoint(c3.campaign_id, "marl")
    assert step3 > step
    trials = c3.trials()
    assert all(W_KEY in t.system_attrs for t in trials[30:])
    store.close()


def test_store_checkpoints_round_trip_and_prune(db_url):
    store = open_store(db_url)
    cid = store.add_campaign("x", "x", "", {}, {})
    t = {"w": torch.arange(6.0).reshape(2, 3), "step": torch.tensor(3.0)}
    for step in (1, 2, 3, 4):
        assert store.save_checkpoint(cid, "marl", step, {"n": step}, t, keep=2)
    assert not store.save_checkpoint(cid, "marl", 4, {"n": 0}, t)  # first writer wins
    step, meta, back = store.load_checkpoint(cid, "marl")
    assert step == 4 and meta == {"n": 4} and torch.equal(back["w"], t["w"])
    assert store.load_checkpoint(cid, "marl", step=2) is None  # pruned (keep=2)
    assert store.load_checkpoint(cid, "marl", step=3) is not None
    assert store.load_checkpoint(cid, "rl") is None
    store.close()


# -- hypervolume --------------------------------------------------------------------------------
def test_hypervolume_hand_computed():
    ref = np.ones(2)
    assert hypervolume(np.array([[0.5, 0.5]]), ref) == pytest.approx(0.25)
    assert hypervolume(np.array([[0.0, 0.5], [0.5, 0.0]]), ref) == pytest.approx(0.75)
    # a dominated point, a duplicate and a point outside the box change nothing
    pts = np.array([[0.0, 0.5], [0.5, 0.0], [0.6, 0.6], [0.5, 0.0], [1.2, 0.0]])
    assert hypervolume(pts, ref) == pytest.approx(0.75)
    cube = np.array([[0.5, 0.5, 0.5]])
    assert hypervolume(cube, np.ones(3)) == pytest.approx(0.125)
    # three boxes of 0.5 x 1 x 1 slabs along each axis: inclusion-exclusion gives 7/8
    axes = np.array([[0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]])
    assert hypervolume(axes, np.ones(3)) == pytest.approx(1 - 0.125)
    assert hypervolume(np.zeros((0, 3)), np.ones(3)) == 0.0
    with pytest.raises(ValueError):
        hypervolume(np.zeros((2, 2)), np.ones(3))


@pytest.mark.parametrize("d", [2, 3, 4])
def test_hypervolume_matches_monte_carlo(d):
    rng = np.random.default_rng(d)
    pts = rng.random((25, d)) ** 0.5
    exact = hypervolume(pts, np.ones(d))
    samples = rng.random((200_000, d))
    dominated = np.zeros(len(samples), dtype=bool)
    for p in pts:
        dominated |= np.all(samples >= p, axis=1)
    # 200k samples: standard error < 0.0012
    assert exact == pytest.approx(dominated.mean(), abs=0.005)


def test_normalize_maps_bounds_to_unit_box():
    v = np.array([[95.0, 0.01], [80.0, 10.0], [87.5, 10**-0.5]])
    n = normalize(v, [(95.0, 80.0), (0.01, 10.0)], [False, True])
    np.testing.assert_allclose(n, [[0.0, 0.0], [1.0, 1.0], [0.5, 0.5]], atol=1e-12)


def test_sampler_state_keys_are_stable():
    sampler, study = _toy_study(batch_size=4)
    study.optimize(_toy, n_trials=9)
    state = sampler.policy_state()
    assert state is not None
    assert all(k.startswith("agents.") for k in state)
    assert len(list(itertools.chain(state))) == 8  # two agents x (2 layers x weight, bias)


def test_example_config_groups_match_the_defaults():
    cfg = load_config(ROOT / "examples" / "marl_codesign.toml")
    assert cfg.strategy == "marl" and cfg.trials == 500
    strategy = get_strategy(cfg.strategy, **cfg.strategy_options)
    agents = resolve_groups(NB201_SYSTOLIC, strategy.params["groups"])
    assert sorted(sorted(p) for _, p in agents) == sorted(
        sorted(p) for _, p in default_groups(NB201_SYSTOLIC)
    )
