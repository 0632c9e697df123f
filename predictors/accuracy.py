"""Accuracy predictors with uncertainty: a bootstrap ensemble and a Gaussian process.

Both follow the scikit-learn estimator API and give ``predict(X, return_std=True)`` and
:meth:`~_UncertainAccuracyPredictor.predict_interval`, for the Bayesian strategies (an
acquisition needs a mean and a spread) and for reports (calibrated intervals).

Inputs: a feature matrix (for NB201 the table encoding plus path features,
:func:`cosearch.predictors._encodings.encode_genotypes_as` with ``"paths"``), or a sequence of
Architectures / ONNX models, encoded with ``onnx_features``. Features are standardized with
the training rows' statistics (constant columns are left at zero).

Target transform (``target_transform="log_error"``, the default): the models fit
``t = log(max_accuracy - accuracy)``, the log of the error rate. Accuracies of a search space
are skewed (NB201 CIFAR-10: half of the cells within 3.5 points of the best, a tail down to
10%); on the log error the residuals are closer to Gaussian with one variance, which is what
both models' uncertainty assumes. With 100 NB201 training cells this lifts the Gaussian
process' Spearman from about 0.80 to 0.88 (benchmarks/results/predictors_accuracy_hybrid.md).
Predictions are mapped back: ``predict`` returns the predictive *median* in accuracy units
(the back-transformed mean of ``t``), ``return_std`` the delta-method standard deviation
``(max_accuracy - median) * std(t)``, and ``predict_interval`` maps the Gaussian interval of
``t`` back exactly (the transform is monotone), so intervals are asymmetric like the data.
``target_transform="none"`` fits the accuracy itself.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from scipy.stats import norm
from sklearn.utils.validation import check_is_fitted, validate_data

from cosearch.predictors._base import PredictorBase, feature_matrix

__all__ = ["EnsembleAccuracyPredictor", "GPAccuracyPredictor"]

_TRANSFORMS = ("log_error", "none")


class _UncertainAccuracyPredictor(PredictorBase, ABC):
    """Shared by the accuracy predictors: input standardization, the target transform, and
    the mapping of a Gaussian predictive distribution of the transformed target back to
    accuracy units. Subclasses implement ``_fit_z(Xs, z)`` and ``_predict_z(Xs) -> (mean,
    std)`` on standardized features and the standardized transformed target."""

    target_transform: str
    max_accuracy: float

    # -- the target transform ----------------------------------------------------------------
    def _check_transform(self, y: np.ndarray) -> None:
        if self.target_transform not in _TRANSFORMS:
            raise ValueError(
                f"target_transform must be one of {_TRANSFORMS}; got {self.target_transform!r}"
            )
        if self.target_transform == "log_error":
            top = float(self.max_accuracy)
            if not top > 0:
                raise ValueError(f"max_accuracy must be > 0; got {self.max_accuracy!r}")
            if (y > top).any():
                raise ValueError(
                    f"accuracies must be <= max_accuracy={top:g} for target_transform="
                    f"'log_error'; got a maximum of {y.max():g} (use max_accuracy=1.0 for "
                    "fractions, 100 for percent)"
                )

    def _forward(self, y: np.ndarray) -> np.ndarray:
        if self.target_transform == "none":
            return y
        top = float(self.max_accuracy)
        # a perfect score would be log(0): floor the error at a millionth of the scale
        return np.log(np.maximum(top - y, 1e-6 * top))

    def _backward(self, t: np.ndarray) -> np.ndarray:
        if self.target_transform == "none":
            return t
        return float(self.max_accuracy) - np.exp(t)

    # -- fit / predict ------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> Any:
        """Fit on features ``X`` (``n x F`` floats, or Architectures / ONNX models) and
        accuracies ``y`` (``n >= 2``); returns ``self``.

        Raises ValueError on malformed input (scikit-learn's validation), fewer than 2 rows,
        an invalid parameter, or an accuracy above ``max_accuracy`` with the log-error
        transform.
        """
        X, y = validate_data(self, feature_matrix(X), y, y_numeric=True, dtype=np.float64)
        if len(y) < 2:
            raise ValueError(
                f"an accuracy predictor needs at least 2 training rows; got n_samples = {len(y)}"
            )
        self._check_transform(y)
        self.x_mean_ = X.mean(axis=0)
        std = X.std(axis=0)
        self.x_std_ = np.where(std > 1e-12, std, 1.0)
        t = self._forward(y)
        self.t_mean_ = float(t.mean())
        self.t_std_ = float(t.std()) if t.std() > 1e-12 else 1.0
        self._fit_z((X - self.x_mean_) / self.x_std_, (t - self.t_mean_) / self.t_std_)
        return self

    def _standardized(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, feature_matrix(X), reset=False, dtype=np.float64)
        return (X - self.x_mean_) / self.x_std_

    def _t_moments(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of the transformed target ``t`` for ``X``."""
        mean_z, std_z = self._predict_z(self._standardized(X))
        return mean_z * self.t_std_ + self.t_mean_, std_z * self.t_std_

    def predict(self, X: Any, return_std: bool = False) -> Any:
        """Predicted accuracies (unit of the training ``y``), shape ``(n,)``: the predictive
        median. With ``return_std=True`` a pair ``(median, std)``, ``std`` the predictive
        standard deviation in accuracy units (delta method through the transform)."""
        t_mean, t_std = self._t_moments(X)
        median = self._backward(t_mean)
        if not return_std:
            return median
        if self.target_transform == "none":
            return median, t_std
        return median, (float(self.max_accuracy) - median) * t_std

    def predict_interval(self, X: Any, coverage: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """Central predictive interval ``(low, high)`` holding ``coverage`` of the predictive
        probability, in accuracy units. Raises ValueError unless ``0 < coverage < 1``."""
        if not 0.0 < float(coverage) < 1.0:
            raise ValueError(f"coverage must be in (0, 1); got {coverage!r}")
        t_mean, t_std = self._t_moments(X)
        half = float(norm.ppf(0.5 + float(coverage) / 2.0)) * t_std
        a = self._backward(t_mean - half)
        b = self._backward(t_mean + half)
        return np.minimum(a, b), np.maximum(a, b)

    @abstractmethod
    def _fit_z(self, xs: np.ndarray, z: np.ndarray) -> None:
        """Fit the model to targets ``z`` (the transformed accuracies)."""

    @abstractmethod
    def _predict_z(self, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of ``z`` at ``xs``."""


class EnsembleAccuracyPredictor(_UncertainAccuracyPredictor):
    """A bootstrap ensemble of gradient-boosted trees (or MLPs) with calibrated spread.

    Each of ``n_members`` members is fitted on a bootstrap resample of the training rows
    (``bootstrap=False``: on all rows, members differ by seed only). The ensemble's spread
    measures only how much the members disagree, which underestimates the error (Lakshminarayanan
    et al., NeurIPS 2017, add a per-member noise head; we calibrate instead): on the rows each
    member left out (out-of-bag), the predictive standard deviation is modelled as
    ``c * sqrt(v + v0)``, ``v`` the members' variance, ``v0`` a noise floor (the median OOB
    variance) and ``c`` chosen so that ``calibration_coverage`` of the OOB residuals fall in
    the central interval of that probability. Without enough OOB rows (fewer than 5 rows with
    at least 2 OOB predictions, e.g. ``bootstrap=False``), ``c = 1`` and ``v0 = 0``.

    Parameters: ``n_members``; ``member`` ('gbrt': scikit-learn's
    ``HistGradientBoostingRegressor`` with ``max_iter``, ``learning_rate``,
    ``max_leaf_nodes``, ``min_samples_leaf`` (None: ``clip(n // 20, 1, 5)``); 'mlp':
    ``MLPRegressor`` with ``hidden`` layer sizes and L2 penalty ``alpha``); ``bootstrap``;
    ``calibration_coverage``; ``target_transform`` ('log_error' or 'none') and
    ``max_accuracy`` (see the module docstring); ``threads`` (OpenMP threads of the tree
    members while fitting and predicting, default 1; None: the library default);
    ``random_state`` (int: draws the resamples and the members' seeds).

    Why one thread by default: members are fitted on a few hundred rows, where OpenMP's
    per-iteration fork/join costs more than it saves; on a loaded 2-core machine a 2-thread
    fit was 10x slower than a 1-thread one (5.2 s vs 0.6 s for 200 rounds on 100 rows). The
    limit is scoped to this estimator's calls (threadpoolctl) and restored afterwards.

    Learned: ``members_`` (fitted estimators), ``scale_`` (``c``), ``noise_var_`` (``v0``, in
    standardized transformed units), ``oob_coverage_`` (coverage of the calibrated OOB
    intervals, NaN without OOB rows), ``n_iter_`` (most boosting rounds or MLP epochs of a
    member), ``x_mean_``, ``x_std_``, ``t_mean_``, ``t_std_``,
    ``n_features_in_``.
    """

    def __init__(
        self,
        n_members: int = 10,
        member: str = "gbrt",
        max_iter: int = 200,
        learning_rate: float = 0.05,
        max_leaf_nodes: int = 8,
        min_samples_leaf: int | None = None,
        hidden: tuple[int, ...] = (64, 64),
        alpha: float = 1e-2,
        bootstrap: bool = True,
        calibration_coverage: float = 0.9,
        target_transform: str = "log_error",
        max_accuracy: float = 100.0,
        threads: int | None = 1,
        random_state: int = 0,
    ) -> None:
        self.n_members = n_members
        self.member = member
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.hidden = hidden
        self.alpha = alpha
        self.bootstrap = bootstrap
        self.calibration_coverage = calibration_coverage
        self.target_transform = target_transform
        self.max_accuracy = max_accuracy
        self.threads = threads
        self.random_state = random_state

    @contextmanager
    def _thread_limit(self) -> Iterator[None]:
        if self.threads is None:
            yield
            return
        import sklearn.ensemble  # noqa: F401 - loads the OpenMP runtime the limit must see
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=int(self.threads), user_api="openmp"):
            yield

    def _make_member(self, n: int, seed: int) -> Any:
        if self.member == "gbrt":
            from sklearn.ensemble import HistGradientBoostingRegressor

            leaf = self.min_samples_leaf
            if leaf is None:
                leaf = int(np.clip(n // 20, 1, 5))
            return HistGradientBoostingRegressor(
                max_iter=self.max_iter,
                learning_rate=self.learning_rate,
                max_leaf_nodes=self.max_leaf_nodes,
                min_samples_leaf=leaf,
                early_stopping=False,
                random_state=seed,
            )
        from sklearn.neural_network import MLPRegressor

        return MLPRegressor(
            hidden_layer_sizes=tuple(self.hidden),
            alpha=self.alpha,
            max_iter=2000,
            random_state=seed,
        )

    def _fit_z(self, xs: np.ndarray, z: np.ndarray) -> None:
        if self.member not in ("gbrt", "mlp"):
            raise ValueError(f"member must be 'gbrt' or 'mlp'; got {self.member!r}")
        if isinstance(self.n_members, bool) or not isinstance(self.n_members, int):
            raise ValueError(f"n_members must be an int >= 2; got {self.n_members!r}")
        if self.n_members < 2:
            raise ValueError(f"n_members must be an int >= 2; got {self.n_members!r}")
        if not 0.0 < float(self.calibration_coverage) < 1.0:
            raise ValueError(
                f"calibration_coverage must be in (0, 1); got {self.calibration_coverage!r}"
            )
        n = len(z)
        rng = np.random.default_rng(self.random_state)
        oob = np.full((self.n_members, n), np.nan)
        self.members_: list[Any] = []
        with self._thread_limit():
            self._fit_members(xs, z, rng, oob)
        self.n_iter_ = int(max(m.n_iter_ for m in self.members_))
        self._calibrate(oob, z)

    def _fit_members(
        self, xs: np.ndarray, z: np.ndarray, rng: np.random.Generator, oob: np.ndarray
    ) -> None:
        from sklearn.exceptions import ConvergenceWarning

        n = len(z)
        for m in range(self.n_members):
            rows = rng.integers(0, n, n) if self.bootstrap else np.arange(n)
            seed = int(rng.integers(0, 2**31 - 1))
            with warnings.catch_warnings():
                # an MLP stopping at max_iter on 100 rows is fitted well enough for a member
                warnings.simplefilter("ignore", ConvergenceWarning)
                est = self._make_member(n, seed).fit(xs[rows], z[rows])
            self.members_.append(est)
            left_out = np.setdiff1d(np.arange(n), rows)
            if len(left_out):
                oob[m, left_out] = est.predict(xs[left_out])

    def _calibrate(self, oob: np.ndarray, z: np.ndarray) -> None:
        seen = np.isfinite(oob).sum(axis=0) >= 2
        self.scale_ = 1.0
        self.noise_var_ = 0.0
        self.oob_coverage_ = float("nan")
        if seen.sum() < 5:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns are masked out
            mean = np.nanmean(oob[:, seen], axis=0)
            var = np.nanvar(oob[:, seen], axis=0)
        self.noise_var_ = float(np.median(var))
        spread = np.sqrt(var + self.noise_var_)
        spread = np.where(spread > 1e-12, spread, 1e-12)
        ratio = np.abs(z[seen] - mean) / spread
        quantile = float(norm.ppf(0.5 + float(self.calibration_coverage) / 2.0))
        self.scale_ = max(float(np.quantile(ratio, self.calibration_coverage)) / quantile, 1e-6)
        self.oob_coverage_ = float(np.mean(ratio <= quantile * self.scale_))

    def member_predictions(self, X: Any) -> np.ndarray:
        """Each member's prediction of the transformed target (``n_members x n``, standardized
        units): the raw material of the ensemble's mean and spread."""
        xs = self._standardized(X)
        with self._thread_limit():
            return np.vstack([m.predict(xs) for m in self.members_])

    def _predict_z(self, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self._thread_limit():
            preds = np.vstack([m.predict(xs) for m in self.members_])
        var = preds.var(axis=0)
        return preds.mean(axis=0), self.scale_ * np.sqrt(var + self.noise_var_)


class GPAccuracyPredictor(_UncertainAccuracyPredictor):
    """A Gaussian process over standardized features (scikit-learn's
    ``GaussianProcessRegressor``).

    Kernel: ``ConstantKernel * K + WhiteKernel``, ``K`` an isotropic ``RBF`` (``kernel="rbf"``)
    or ``Matern`` with nu=2.5 (``kernel="matern"``) of initial ``length_scale`` in standardized
    feature units. One length scale for all features, not one per feature: a hundred rows
    cannot pin down 150 relevances (automatic relevance determination overfits there). The
    hyperparameters maximize the log marginal likelihood (``n_restarts_optimizer`` restarts
    from random starts drawn with ``random_state``), unless ``kernel_theta`` gives them (the
    log-hyperparameters of a previous fit, ``kernel_theta_``; then nothing is optimized: a
    refit on the same data reproduces the model exactly). The white-noise level is searched in
    ``noise_bounds`` (standardized units); reaching the lower bound means the data are
    interpolated, which is expected for a deterministic benchmark table, so scikit-learn's
    ``ConvergenceWarning`` about it is silenced.

    Learned: ``gp_`` (the fitted regressor), ``kernel_theta_`` (log-hyperparameters, a tuple
    of floats), ``x_mean_``, ``x_std_``, ``t_mean_``, ``t_std_``, ``n_features_in_``.
    """

    def __init__(
        self,
        kernel: str = "rbf",
        length_scale: float = 10.0,
        noise_level: float = 1e-2,
        noise_bounds: tuple[float, float] = (1e-6, 1.0),
        n_restarts_optimizer: int = 3,
        kernel_theta: tuple[float, ...] | None = None,
        target_transform: str = "log_error",
        max_accuracy: float = 100.0,
        random_state: int = 0,
    ) -> None:
        self.kernel = kernel
        self.length_scale = length_scale
        self.noise_level = noise_level
        self.noise_bounds = noise_bounds
        self.n_restarts_optimizer = n_restarts_optimizer
        self.kernel_theta = kernel_theta
        self.target_transform = target_transform
        self.max_accuracy = max_accuracy
        self.random_state = random_state

    def _kernel(self) -> Any:
        from sklearn.gaussian_process.kernels import RBF, Matern, WhiteKernel
        from sklearn.gaussian_process.kernels import ConstantKernel as Constant

        if self.kernel == "rbf":
            base = RBF(self.length_scale, (1e-2, 1e4))
        elif self.kernel == "matern":
            base = Matern(self.length_scale, (1e-2, 1e4), nu=2.5)
        else:
            raise ValueError(f"kernel must be 'rbf' or 'matern'; got {self.kernel!r}")
        low, high = self.noise_bounds
        return Constant(1.0, (1e-3, 1e3)) * base + WhiteKernel(self.noise_level, (low, high))

    def _fit_z(self, xs: np.ndarray, z: np.ndarray) -> None:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor

        kernel = self._kernel()
        optimizer: str | None = "fmin_l_bfgs_b"
        if self.kernel_theta is not None:
            theta = np.asarray(self.kernel_theta, dtype=np.float64)
            if theta.shape != kernel.theta.shape:
                raise ValueError(
                    f"kernel_theta must hold {kernel.theta.size} log-hyperparameters for "
                    f"kernel {self.kernel!r}; got {theta.size}"
                )
            kernel = kernel.clone_with_theta(theta)
            optimizer = None
        gp = GaussianProcessRegressor(
            kernel,
            optimizer=optimizer,
            n_restarts_optimizer=self.n_restarts_optimizer if optimizer else 0,
            normalize_y=False,
            random_state=self.random_state,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.gp_ = gp.fit(xs, z)
        self.kernel_theta_ = tuple(float(v) for v in self.gp_.kernel_.theta)

    def _predict_z(self, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, std = self.gp_.predict(xs, return_std=True)
        return mean, std
