"""The predictor-guided sampler's surrogate: a bootstrap ensemble of extremely randomized
trees per output, giving a predictive mean and standard deviation.

Why trees: the inputs are one-hot categoricals mixed with ordinal hardware knobs, the outputs
(accuracy, latency, energy, constraint slack) are rugged functions of them, and the model is
refitted before every proposal; scikit-learn's ``ExtraTreesRegressor`` fits 1,000 rows in tens
of milliseconds on one core, and the spread of its bootstrapped trees is a usable uncertainty
(the random-forest surrogate of SMAC, Hutter et al., LION 2011). BOSHNAS (Tuli et al.,
"CODEBench", ACM TECS 2023; "FlexiBERT", JAIR 2023) models the same kind of uncertainty with a
teacher network, a natural-parameter network and a student; a tree ensemble is the cheap
stand-in that keeps a proposal well under a second at 1,000 trials.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TreeEnsemble"]

#: predictive standard deviation floor, in units of the column's standard deviation: the trees
#: can agree exactly on a training point, and a zero spread would make the acquisition blind
_STD_FLOOR = 0.02
#: training rows from which the trees are thinned (``min_samples_leaf``, ``max_features``)
_LARGE = 300


class TreeEnsemble:
    """``n_trees`` bootstrapped extra-trees per output column.

    From 300 training rows on, leaves hold at least ``min_samples_leaf`` rows and splits
    look at ``max_features`` of the features, which halves the fit time at 1,000 rows.

    ``fit(X, Y)`` with ``Y`` of shape (n, m); ``predict(X)`` returns ``(mean, std)``, both
    (len(X), m), in ``Y``'s units. Constant columns are predicted as that constant.
    """

    def __init__(
        self,
        n_trees: int = 24,
        min_samples_leaf: int = 2,
        max_features: float = 0.5,
        seed: int = 0,
    ) -> None:
        self.n_trees = n_trees
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.seed = seed

    def fit(self, X: np.ndarray, Y: np.ndarray) -> TreeEnsemble:
        from sklearn.ensemble import ExtraTreesRegressor

        X = np.asarray(X, dtype=float)
        Y = np.asarray(Y, dtype=float).reshape(len(X), -1)
        self.mean_ = Y.mean(axis=0)
        self.scale_ = Y.std(axis=0)
        self.models_: list[ExtraTreesRegressor | None] = []
        seeds = np.random.SeedSequence(self.seed).generate_state(Y.shape[1])
        for j in range(Y.shape[1]):
            if self.scale_[j] <= 1e-12 or len(X) < 2:
                self.models_.append(None)
                continue
            est = ExtraTreesRegressor(
                n_estimators=self.n_trees,
                bootstrap=True,
                # full trees and every feature while data are few (fit quality matters
                # most there); thinned beyond _LARGE rows, where the fit's cost matters
                min_samples_leaf=1 if len(X) < _LARGE else self.min_samples_leaf,
                max_features=1.0 if len(X) < _LARGE else self.max_features,
                random_state=int(seeds[j]),
                n_jobs=None,  # one thread: forking costs more than it saves at this size
            )
            est.fit(X, (Y[:, j] - self.mean_[j]) / self.scale_[j])
            self.models_.append(est)
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X32 = np.ascontiguousarray(X, dtype=np.float32)  # what the trees take unchecked
        m = len(self.models_)
        mean = np.empty((len(X32), m))
        std = np.empty((len(X32), m))
        for j, est in enumerate(self.models_):
            if est is None:
                mean[:, j] = self.mean_[j]
                std[:, j] = 1e-9
                continue
            per_tree = np.stack([t.predict(X32, check_input=False) for t in est.estimators_])
            mean[:, j] = self.mean_[j] + self.scale_[j] * per_tree.mean(axis=0)
            sd = np.sqrt(per_tree.var(axis=0) + _STD_FLOOR**2)
            std[:, j] = self.scale_[j] * sd
        return mean, std
