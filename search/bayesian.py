"""``bayesian``: model-based multi-objective search; Optuna's TPE, GP and NSGA samplers, plus
cosearch's own predictor-guided sampler (the default).

Option ``sampler`` picks the engine:

- ``"predictor"`` (default): cosearch's surrogate-guided sampler (:mod:`._bayes_sampler`), in
  the spirit of BOSHNAS (Tuli et al., "CODEBench: A Neural Architecture and Hardware
  Accelerator Co-Design Framework", ACM TECS 2023): a model with uncertainty proposes the
  candidate whose predicted outcome most improves the Pareto front. Before every proposal:

  1. *Encoding* (:mod:`._bayes_space`): the joint ``net.*``/``hw.*`` space of the campaign is
     taken from the first finished trial's distributions; categoricals (e.g. the NB201 edge
     ops) are one-hot, ints and floats their position in [0, 1] (log scale where the
     distribution is log); for an nb201 space the cell's path encoding is appended (the
     op sequences along its input -> output paths, as in BANANAS, White et al., AAAI 2021),
     which lifted the hypervolume at 100 trials on nb201 x Pixel 3 from 0.876 to 0.943 of
     the true front's (3 seeds).
  2. *Surrogate* (:mod:`._bayes_surrogate`): ``n_trees`` bootstrapped extra-trees per
     objective and per constraint value, refitted on every COMPLETE trial; mean and spread
     over the trees. Objectives are turned into minimization, then (``transform``) into
     their empirical CDF over the trials seen (``"rank"``, default: the Gaussian-copula idea
     of Salinas et al., ICML 2020, with uniform marginals, so that a few extreme trials, like
     a degenerate cell at 10 % accuracy and 0.003 ms, do not squeeze every useful trial into
     a corner of the box), into log10 where positive (``"log"``), or left as they are
     (``"none"``); then scaled to [0, 1].
  3. *Pool*: ``pool_size`` candidates, half mutations (one or two parameters re-drawn) of the
     current feasible front, half uniform samples; candidates already evaluated or pending
     are dropped.
  4. *Acquisition* (:mod:`._bayes_acq`), times the probability of feasibility from the
     constraint models: ``"ehvi"`` (default) is the expected hypervolume improvement over the
     feasible front, reference point 1.1 x the worst value seen, estimated by Monte Carlo with
     ``mc_points`` points over the non-dominated region of the box (exact over the Gaussian
     predictive distribution); the box reaches ``beyond`` (normalized units) past the best
     value seen in each objective, so a candidate that may become the new best of one
     objective earns credit for that whole strip: the larger ``beyond``, the more the search
     explores the front's extremes; ``"parego"`` is a random augmented-Chebyshev scalarization of
     the lower confidence bound ``mu - beta * sd`` (Paria et al., UAI 2019). Before any
     feasible trial exists, the candidate most likely to be feasible is proposed.
  5. *Parallel workers*: trials RUNNING elsewhere count as observed at their predicted mean
     (kriging believer; Ginsbourger et al., 2010) in the EHVI front, and are never proposed
     again, so workers asking at once get different candidates.

  The first ``n_startup`` trials are uniform random. Every draw of trial ``n`` derives from
  ``(seed, n)``, so a campaign is reproducible and a resumed one does not replay draws.
  Cost: at 1,000 trials a proposal takes well under a second on one core
  (``benchmarks/results/search_bayesian.md``).
- ``"tpe"``: Optuna's ``TPESampler(multivariate=True)`` (Watanabe et al., 2023), with
  ``n_startup`` random trials.
- ``"gp"``: Optuna's ``GPSampler`` (needs torch), with ``n_startup`` random trials.
- ``"nsga2"`` / ``"nsga3"``: Optuna's ``NSGAIISampler`` / ``NSGAIIISampler`` with
  ``population_size``.

Constraints: the campaign stores each trial's constraint values (<= 0 feasible) as the
trial's ``constraints`` system attribute (:data:`cosearch.campaign.CONSTRAINTS_KEY`); Optuna >= 5
samplers (TPE, GP, NSGA-II/III) read them from ``trial.constraints`` themselves, and so does
the predictor sampler, so no ``constraints_func`` is passed (Optuna 5 deprecates it).

Options that only one engine reads (``pool_size`` with ``sampler = "tpe"``, say) are refused
with a ConfigError rather than silently ignored.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

import optuna
from optuna.samplers import BaseSampler

from cosearch.errors import ConfigError
from cosearch.search._base import Option, SamplerStrategy, register_strategy
from cosearch.search._bayes_sampler import PredictorSampler

__all__ = ["BayesianStrategy", "PredictorSampler", "SAMPLERS", "ACQUISITIONS", "TRANSFORMS"]

#: the engines of option ``sampler``
SAMPLERS = ("predictor", "tpe", "gp", "nsga2", "nsga3")
#: the acquisitions of the predictor sampler
ACQUISITIONS = ("ehvi", "parego")

#: how the predictor sampler maps objective values before scaling them to [0, 1]
TRANSFORMS = ("rank", "log", "none")
#: which engines read each option (options not listed here apply to every engine)
_APPLIES: dict[str, tuple[str, ...]] = {
    "n_startup": ("predictor", "tpe", "gp"),
    "acquisition": ("predictor",),
    "pool_size": ("predictor",),
    "n_trees": ("predictor",),
    "mc_points": ("predictor",),
    "beta": ("predictor",),
    "transform": ("predictor",),
    "beyond": ("predictor",),
    "population_size": ("nsga2", "nsga3"),
}
#: which acquisitions of the predictor sampler read each option
_ACQUISITION_APPLIES: dict[str, tuple[str, ...]] = {
    "beta": ("parego",),
    "mc_points": ("ehvi",),
    "beyond": ("ehvi",),
}


@register_strategy("bayesian")
class BayesianStrategy(SamplerStrategy):
    """Bayesian optimization: cosearch's predictor-guided EHVI sampler, or Optuna's TPE, GP
    and NSGA-II/III.

    See the module docstring. Raises ConfigError for an unknown ``sampler`` or
    ``acquisition``, an option out of range, or an option the chosen engine does not read."""

    options: ClassVar[dict[str, Option]] = {
        "sampler": Option(str, "predictor", help=" | ".join(SAMPLERS)),
        "n_startup": Option(int, 10, 1, 100_000, "random trials before the model is used"),
        "acquisition": Option(str, "ehvi", help=" | ".join(ACQUISITIONS)),
        "pool_size": Option(int, 512, 8, 100_000, "candidates scored per proposal"),
        "n_trees": Option(int, 24, 2, 1000, "bootstrapped extra-trees per output"),
        "mc_points": Option(int, 2048, 64, 1_000_000, "Monte-Carlo points of the EHVI"),
        "beta": Option(float, 1.0, 0.0, 100.0, "LCB width of the parego acquisition"),
        "transform": Option(str, "rank", help=" | ".join(TRANSFORMS)),
        "beyond": Option(
            float, 0.2, 0.0, 10.0, "how far the EHVI box reaches past the best values seen"
        ),
        "population_size": Option(int, 20, 2, 100_000, "NSGA-II/III individuals per generation"),
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        p = self.params
        if p["sampler"] not in SAMPLERS:
            raise ConfigError(
                f"The 'sampler' option of strategy bayesian must be one of "
                f"{', '.join(SAMPLERS)}. Got {p['sampler']!r} instead.",
                key="sampler",
            )
        if p["acquisition"] not in ACQUISITIONS:
            raise ConfigError(
                f"The 'acquisition' option of strategy bayesian must be one of "
                f"{', '.join(ACQUISITIONS)}. Got {p['acquisition']!r} instead.",
                key="acquisition",
            )
        if p["transform"] not in TRANSFORMS:
            raise ConfigError(
                f"The 'transform' option of strategy bayesian must be one of "
                f"{', '.join(TRANSFORMS)}. Got {p['transform']!r} instead.",
                key="transform",
            )
        for name in options:
            users = _APPLIES.get(name)
            if users is not None and p["sampler"] not in users:
                raise ConfigError(
                    f"The {name!r} option of strategy bayesian applies only to sampler "
                    f"{' or '.join(repr(u) for u in users)}; sampler is {p['sampler']!r}.",
                    key=name,
                )
            readers = _ACQUISITION_APPLIES.get(name)
            if readers is not None and p["sampler"] == "predictor":
                if p["acquisition"] not in readers:
                    raise ConfigError(
                        f"The {name!r} option of strategy bayesian applies only to acquisition "
                        f"{' or '.join(repr(r) for r in readers)}; acquisition is "
                        f"{p['acquisition']!r}.",
                        key=name,
                    )

    def sampler(self, *, seed: int) -> BaseSampler:
        p = self.params
        kind = p["sampler"]
        with warnings.catch_warnings():  # multivariate TPE and GP are "experimental" in Optuna
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return self._build(kind, seed)

    def _build(self, kind: str, seed: int) -> BaseSampler:
        p = self.params
        if kind == "predictor":
            return PredictorSampler(
                seed=seed, options={k: p[k] for k, v in _APPLIES.items() if "predictor" in v}
            )
        if kind == "tpe":
            return optuna.samplers.TPESampler(
                multivariate=True, n_startup_trials=p["n_startup"], seed=seed
            )
        if kind == "gp":
            return optuna.samplers.GPSampler(n_startup_trials=p["n_startup"], seed=seed)
        if kind == "nsga2":
            return optuna.samplers.NSGAIISampler(population_size=p["population_size"], seed=seed)
        return optuna.samplers.NSGAIIISampler(population_size=p["population_size"], seed=seed)
