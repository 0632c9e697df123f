"""Predictors in the store's ``predictors`` table, and back; nothing is ever unpickled.

A row holds: ``predictor_id``; ``kind`` (one of :data:`KINDS`); ``version`` (this module's
:data:`FORMAT_VERSION`); ``training_ref`` (JSON: where the training data came from, e.g.
``{"source": "table", "path", "sha256", "space", "target", "rows", "seed"}`` or
``{"source": "campaign", "storage", "campaign", "metric", ...}``); ``params_json`` (JSON:
the estimator's hyperparameters, the input ``encoding``, ``space`` and ``target``, the scalar
part of the learned state, library versions); ``scores_json`` (JSON: held-out scores); and
``weights``: bytes of ``torch.save`` of a flat ``{name: tensor}`` dict, read back with
``torch.load(weights_only=True)``.

What ``weights`` holds depends on the model family:

- scikit-learn models (``gbrt``, ``ensemble``, ``gp``, ``hybrid``): the training matrix and
  targets (``train.X``, ``train.y``, float64). Loading *refits* the estimator with the stored
  hyperparameters and seed, which is deterministic (trees without early stopping, seeded
  resamples; the Gaussian process is refitted with its stored kernel hyperparameters and no
  optimizer), so the loaded model predicts what the saved one did, to rounding. Tree and GP
  internals have no public tensor form, and pickling them is what this store never does.
- torch models (``gnn``, ``fewshot``): the learned tensors themselves (state dicts, means,
  prior, posterior), restored into a new estimator without training.

:class:`StoredPredictor` wraps a loaded estimator with its encoding, so the evaluator can score
Architectures with it (source ``predictor:<id>``).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from cosearch.errors import ConfigError, StoreInputError
from cosearch.predictors._encodings import check_encoding, encode_models
from cosearch.store import schema

if TYPE_CHECKING:
    from cosearch.store import Store

__all__ = [
    "KINDS",
    "ACCURACY_KINDS",
    "LATENCY_KINDS",
    "FORMAT_VERSION",
    "StoredPredictor",
    "save_predictor",
    "load_predictor",
    "list_predictors",
    "delete_predictor",
    "check_predictor_id",
]

#: predictor kinds the store can hold
KINDS = ("gbrt", "gnn", "fewshot", "ensemble", "gp", "hybrid")
ACCURACY_KINDS = ("ensemble", "gp")
LATENCY_KINDS = ("gbrt", "gnn", "fewshot", "hybrid")
FORMAT_VERSION = "1"
_REFIT_KINDS = ("gbrt", "ensemble", "gp", "hybrid")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


def check_predictor_id(predictor_id: Any) -> str:
    """``predictor_id`` if it is 1-128 letters, digits, ``_``, ``.``, ``-`` starting with a
    letter or digit; ConfigError otherwise."""
    if not isinstance(predictor_id, str) or not _ID_RE.match(predictor_id):
        raise ConfigError(
            "a predictor id must be 1-128 letters, digits, '_', '.', '-' starting with a "
            f"letter or digit; got {predictor_id!r}",
            key="id",
        )
    return predictor_id


def _estimator_class(kind: str) -> Any:
    if kind == "gbrt":
        from cosearch.predictors.latency import GBRTLatencyPredictor

        return GBRTLatencyPredictor
    if kind == "gnn":
        from cosearch.predictors.latency import GNNLatencyPredictor

        return GNNLatencyPredictor
    if kind == "fewshot":
        from cosearch.predictors.fewshot import FewShotLatencyPredictor

        return FewShotLatencyPredictor
    if kind == "ensemble":
        from cosearch.predictors.accuracy import EnsembleAccuracyPredictor

        return EnsembleAccuracyPredictor
    if kind == "gp":
        from cosearch.predictors.accuracy import GPAccuracyPredictor

        return GPAccuracyPredictor
    if kind == "hybrid":
        from cosearch.predictors.hybrid import HybridLatencyPredictor

        return HybridLatencyPredictor
    raise ConfigError(f"unknown predictor kind {kind!r}; valid: {', '.join(KINDS)}", key="kind")


def kind_of(estimator: Any) -> str:
    """The :data:`KINDS` name of a fitted estimator (an adapted few-shot predictor is
    ``fewshot``). Raises ConfigError for any other object."""
    from cosearch.predictors.fewshot import AdaptedLatencyPredictor

    if isinstance(estimator, AdaptedLatencyPredictor):
        return "fewshot"
    for kind in KINDS:
        if type(estimator) is _estimator_class(kind):
            return kind
    raise ConfigError(
        f"cannot store a {type(estimator).__name__}; storable predictors: {', '.join(KINDS)}",
        key="kind",
    )


@dataclass(frozen=True)
class StoredPredictor:
    """A fitted predictor with what scoring an Architecture needs.

    ``encoding`` (see :mod:`cosearch.predictors._encodings`) and ``space`` say how candidates
    become inputs; ``target`` is what it predicts (a table column or a campaign metric);
    ``scores`` its held-out scores (``spearman``, ``kendall``, ...); ``training_ref`` where its
    training data came from.
    """

    predictor_id: str
    kind: str
    estimator: Any
    encoding: str
    space: str | None
    target: str
    training_ref: Mapping[str, Any] = field(default_factory=dict)
    scores: Mapping[str, Any] = field(default_factory=dict)
    version: str = FORMAT_VERSION
    created_at: dt.datetime | None = None

    @property
    def source(self) -> str:
        """The measurement source it records: ``predictor:<id>``."""
        return f"predictor:{self.predictor_id}"

    @property
    def fidelity(self) -> float:
        """How far to trust its values, in (0, 1): its held-out Spearman clipped to
        [0.01, 0.99], or 0.5 when it has none. Never 1: a prediction is not a measurement."""
        rho = self.scores.get("spearman")
        if isinstance(rho, (int, float)) and np.isfinite(rho):
            return float(np.clip(rho, 0.01, 0.99))
        return 0.5

    @property
    def has_std(self) -> bool:
        """Whether ``predict(..., return_std=True)`` is available (accuracy predictors)."""
        return self.kind in ACCURACY_KINDS

    def encode(self, archs: Sequence[Any]) -> Any:
        """The estimator's input for ``archs`` (see ``encode_models``)."""
        return encode_models(self.encoding, self.space, archs)

    def predict(self, archs: Sequence[Any], return_std: bool = False) -> Any:
        """Predictions for Architectures ``archs`` (shape ``(n,)``); with ``return_std=True``
        (accuracy kinds only) a pair ``(mean, std)``. Raises ConfigError for architectures of
        another space than a table encoding's or for a meta-trained few-shot predictor (it
        predicts every meta-training device), TypeError when ``return_std`` is asked of a
        latency kind."""
        x = self.encode(archs)
        if return_std:
            if not self.has_std:
                raise TypeError(f"a {self.kind!r} predictor has no uncertainty (return_std)")
            return self.estimator.predict(x, return_std=True)
        out = np.asarray(self.estimator.predict(x), dtype=np.float64)
        if out.ndim != 1:
            raise ConfigError(
                f"predictor {self.predictor_id!r} predicts {out.shape[-1]} devices at once (a "
                "meta-trained few-shot predictor); store one adapted to a device instead",
                key="predictor",
            )
        return out


# -- saving ---------------------------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _tensor(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    return torch.from_numpy(np.array(value, dtype=np.float64, copy=True))


def _state(kind: str, est: Any, X: Any, y: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(hyperparameters and JSON state, tensors) of a fitted estimator."""
    from sklearn.utils.validation import check_is_fitted

    hyper = {k: _jsonable(v) for k, v in est.get_params(deep=False).items() if k != "meta"}
    info: dict[str, Any] = {}
    tensors: dict[str, Any] = {}
    if kind in _REFIT_KINDS:
        check_is_fitted(est)
        if X is None or y is None:
            raise ValueError(f"saving a {kind!r} predictor needs its training X and y (refit)")
        x = np.asarray(X, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"X_train must be a 2-D feature matrix for {kind!r}; got {x.shape}")
        tensors["train.X"] = _tensor(x)
        tensors["train.y"] = _tensor(np.asarray(y, dtype=np.float64).ravel())
        if kind == "gp":
            hyper["kernel_theta"] = list(est.kernel_theta_)  # refit without optimizing
        return {"hyperparameters": hyper, **info}, tensors
    if kind == "gnn":
        check_is_fitted(est)
        for k, v in est.state_dict_.items():
            tensors[f"gnn.state.{k}"] = _tensor(v)
        tensors["gnn.x_mean"] = _tensor(est.x_mean_)
        tensors["gnn.x_std"] = _tensor(est.x_std_)
        info["state"] = {
            "y_mean": float(est.y_mean_),
            "y_std": float(est.y_std_),
            "log_target": bool(est.log_target_),
            "n_features_in": int(est.n_features_in_),
            "loss_curve": [float(v) for v in est.loss_curve_],
        }
        return {"hyperparameters": hyper, **info}, tensors
    # fewshot: a meta-trained predictor, possibly adapted to one device
    from cosearch.predictors.fewshot import AdaptedLatencyPredictor

    adapted = est if isinstance(est, AdaptedLatencyPredictor) else None
    meta = est.meta if adapted is not None else est
    check_is_fitted(meta)
    hyper = {k: _jsonable(v) for k, v in meta.get_params(deep=False).items()}
    for name in ("x_mean_", "x_std_", "scale_", "coef_", "prior_mean_", "prior_cov_"):
        tensors[f"meta.{name}"] = _tensor(getattr(meta, name))
    tensors["meta.components_"] = _tensor(meta.components_)
    for k, v in (meta.embed_state_ or {}).items():
        tensors[f"meta.embed.{k}"] = _tensor(v)
    state: dict[str, Any] = {
        "shrinkage": float(meta.shrinkage_),
        "noise": float(meta.noise_),
        "n_features_in": int(meta.n_features_in_),
        "n_devices": int(meta.n_devices_),
        "has_embedding": meta.embed_state_ is not None,
        "meta_scores": [[float(s), float(n), float(v)] for (s, n), v in meta.meta_scores_.items()],
        "transform_scores": {str(k): float(v) for k, v in meta.transform_scores_.items()},
        "adapted": adapted is not None,
    }
    if adapted is not None:
        check_is_fitted(adapted)
        for name in ("coef_", "posterior_cov_", "embedding_"):
            tensors[f"adapted.{name}"] = _tensor(getattr(adapted, name))
        state["adapted_scale"] = float(adapted.scale_)
    return {"hyperparameters": hyper, "state": state}, tensors


def _exists(conn: sa.Connection, predictor_id: str) -> bool:
    table = schema.predictors
    found = conn.execute(
        sa.select(table.c.predictor_id).where(table.c.predictor_id == predictor_id)
    )
    return found.first() is not None


def _exists_error(store: Store, predictor_id: str) -> StoreInputError:
    return StoreInputError(
        f"predictor {predictor_id!r} already exists in {store.display_url}; choose another id "
        "or replace it (--replace)"
    )


def check_new_id(store: Store, predictor_id: str, replace: bool) -> None:
    """Raise StoreInputError when ``predictor_id`` is taken and ``replace`` is False: before
    training, so a long fit is not thrown away at the end."""
    if not replace:
        with store.engine.connect() as conn:
            if _exists(conn, predictor_id):
                raise _exists_error(store, predictor_id)


def save_predictor(
    store: Store,
    predictor_id: str,
    estimator: Any,
    *,
    encoding: str,
    space: str | None,
    target: str,
    training_ref: Mapping[str, Any],
    scores: Mapping[str, Any] | None = None,
    X_train: Any = None,
    y_train: Any = None,
    replace: bool = False,
) -> StoredPredictor:
    """Store the fitted ``estimator`` under ``predictor_id``; returns it as a
    :class:`StoredPredictor`.

    ``X_train`` / ``y_train`` (the feature matrix and targets it was fitted on) are required
    for the scikit-learn kinds, which are refitted on load. ``replace=True`` overwrites an
    existing row of that id.

    Raises:
        ConfigError: a bad id, an unknown encoding, or an estimator of no storable kind.
        StoreInputError: the id exists and ``replace`` is False.
        ValueError: the training data is missing or malformed for a refitted kind.
    """
    import sklearn
    import torch

    check_predictor_id(predictor_id)
    check_encoding(encoding, space)
    kind = kind_of(estimator)
    params, tensors = _state(kind, estimator, X_train, y_train)
    params.update(
        encoding=encoding,
        space=space,
        target=target,
        versions={"scikit-learn": sklearn.__version__, "torch": torch.__version__},
    )
    if _encoding_features(encoding) is not None:
        params["encoding_features"] = _encoding_features(encoding)
    buf = io.BytesIO()
    torch.save(tensors, buf)
    created = dt.datetime.now(dt.timezone.utc)
    row = {
        "predictor_id": predictor_id,
        "kind": kind,
        "version": FORMAT_VERSION,
        "training_ref": json.dumps(_jsonable(dict(training_ref)), sort_keys=True),
        "params_json": json.dumps(params, sort_keys=True),
        "scores_json": json.dumps(_jsonable(dict(scores or {})), sort_keys=True),
        "weights": buf.getvalue(),
        "created_at": created,
    }
    table = schema.predictors
    with store.engine.begin() as conn:
        if _exists(conn, predictor_id):
            if not replace:
                raise _exists_error(store, predictor_id)
            conn.execute(table.delete().where(table.c.predictor_id == predictor_id))
        conn.execute(table.insert().values(**row))
    return StoredPredictor(
        predictor_id=predictor_id,
        kind=kind,
        estimator=estimator,
        encoding=encoding,
        space=space,
        target=target,
        training_ref=dict(training_ref),
        scores=dict(scores or {}),
        created_at=created,
    )


# -- loading --------------------------------------------------------------------------------------
def _row(store: Store, predictor_id: str) -> Any:
    table = schema.predictors
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.predictor_id == predictor_id)).first()
    if row is None:
        known = [p["predictor_id"] for p in list_predictors(store)]
        raise StoreInputError(
            f"no predictor {predictor_id!r} in {store.display_url}; predictors: "
            f"{', '.join(known) if known else 'none yet'} (`cosearch predictor train --id "
            f"{predictor_id} ...` stores one)"
        )
    return row


def _arrays(weights: bytes | None, what: str, where: str) -> dict[str, np.ndarray]:
    from cosearch.store._store import load_tensors

    if not weights:
        return {}
    return load_tensors(weights, what, where)


def _restore(kind: str, params: Mapping[str, Any], tensors: Mapping[str, Any]) -> Any:
    cls = _estimator_class(kind)
    hyper = dict(params.get("hyperparameters", {}))
    if kind in _REFIT_KINDS:
        for key in ("hidden", "noise_bounds", "kernel_theta"):
            if isinstance(hyper.get(key), list):
                hyper[key] = tuple(hyper[key])
        x = tensors["train.X"].numpy()
        y = tensors["train.y"].numpy()
        return cls(**hyper).fit(x, y)
    state = params["state"]
    if kind == "gnn":
        est = cls(**hyper)
        prefix = "gnn.state."
        est.state_dict_ = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        est.x_mean_ = tensors["gnn.x_mean"].numpy()
        est.x_std_ = tensors["gnn.x_std"].numpy()
        est.y_mean_ = float(state["y_mean"])
        est.y_std_ = float(state["y_std"])
        est.log_target_ = bool(state["log_target"])
        est.n_features_in_ = int(state["n_features_in"])
        est.loss_curve_ = list(state["loss_curve"])
        return est
    from cosearch.predictors.fewshot import AdaptedLatencyPredictor

    meta = cls(**hyper)
    for name in ("x_mean_", "x_std_", "scale_", "coef_", "prior_mean_", "prior_cov_"):
        setattr(meta, name, tensors[f"meta.{name}"].numpy())
    meta.components_ = tensors["meta.components_"].numpy()
    prefix = "meta.embed."
    embed = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    meta.embed_state_ = embed if state["has_embedding"] else None
    meta.shrinkage_ = float(state["shrinkage"])
    meta.noise_ = float(state["noise"])
    meta.n_features_in_ = int(state["n_features_in"])
    meta.n_devices_ = int(state["n_devices"])
    meta.meta_scores_ = {(s, n): v for s, n, v in state["meta_scores"]}
    meta.transform_scores_ = dict(state.get("transform_scores", {}))  # absent before 2026-12
    if not state["adapted"]:
        return meta
    adapted = AdaptedLatencyPredictor(meta=meta)
    adapted.coef_ = tensors["adapted.coef_"].numpy()
    adapted.posterior_cov_ = tensors["adapted.posterior_cov_"].numpy()
    adapted.embedding_ = tensors["adapted.embedding_"].numpy()
    adapted.scale_ = float(state["adapted_scale"])
    adapted.n_features_in_ = meta.n_features_in_
    return adapted


def _encoding_features(encoding: str) -> list[str] | None:
    """The feature names of a model encoding (``onnx``, ``graph``); None for the others."""
    from cosearch.spaces.encoding import FEATURE_NAMES, GRAPH_FEATURE_NAMES

    names = {"onnx": FEATURE_NAMES, "graph": GRAPH_FEATURE_NAMES}.get(encoding)
    return None if names is None else list(names)


def _check_encoding_features(predictor_id: str, params: Mapping[str, Any], estimator: Any) -> None:
    """Refuse a predictor fitted on other features of its model encoding (features were added
    since): its inputs would no longer line up."""
    current = _encoding_features(params["encoding"])
    if current is None:
        return
    recorded = params.get("encoding_features")
    fitted = getattr(estimator, "n_features_in_", None)
    width: Any = len(recorded) if recorded is not None else fitted
    if recorded is not None:
        stale = list(recorded) != current
    else:  # rows written before the names were recorded
        stale = fitted is not None and int(fitted) != len(current)
    if stale:
        raise StoreInputError(
            f"predictor {predictor_id!r} was fitted on {width} {params['encoding']!r} "
            f"features; this cosearch computes {len(current)} other ones (the encoding changed "
            "since): train it again"
        )


def load_predictor(store: Store, predictor_id: str) -> StoredPredictor:
    """The predictor stored under ``predictor_id``, ready to predict.

    Raises:
        StoreInputError: no such predictor, or its row was written by a newer format version,
            holds an unknown kind, or was fitted on another width of its model encoding.
    """
    row = _row(store, predictor_id)
    if row.version != FORMAT_VERSION:
        raise StoreInputError(
            f"predictor {predictor_id!r} has format version {row.version!r}; this cosearch "
            f"reads version {FORMAT_VERSION!r}"
        )
    if row.kind not in KINDS:
        raise StoreInputError(
            f"predictor {predictor_id!r} has unknown kind {row.kind!r}; known: {', '.join(KINDS)}"
        )
    params = json.loads(row.params_json)
    weights = _arrays(row.weights, f"the weights of predictor {predictor_id!r}", store.display_url)
    estimator = _restore(row.kind, params, weights)
    _check_encoding_features(predictor_id, params, estimator)
    return StoredPredictor(
        predictor_id=row.predictor_id,
        kind=row.kind,
        estimator=estimator,
        encoding=params["encoding"],
        space=params.get("space"),
        target=params.get("target", ""),
        training_ref=json.loads(row.training_ref),
        scores=json.loads(row.scores_json),
        version=row.version,
        created_at=row.created_at,
    )


def list_predictors(store: Store) -> list[dict[str, Any]]:
    """Every stored predictor without its weights, oldest first: ``predictor_id``, ``kind``,
    ``version``, ``target``, ``encoding``, ``space``, ``training_ref``, ``params``,
    ``scores``, ``created_at``."""
    t = schema.predictors
    cols = [t.c[c] for c in t.c.keys() if c != "weights"]
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(*cols).order_by(t.c.created_at, t.c.predictor_id)).all()
    out = []
    for r in rows:
        params = json.loads(r.params_json)
        out.append(
            {
                "predictor_id": r.predictor_id,
                "kind": r.kind,
                "version": r.version,
                "target": params.get("target"),
                "encoding": params.get("encoding"),
                "space": params.get("space"),
                "training_ref": json.loads(r.training_ref),
                "params": params.get("hyperparameters", {}),
                "scores": json.loads(r.scores_json),
                "created_at": r.created_at,
            }
        )
    return out


def delete_predictor(store: Store, predictor_id: str) -> bool:
    """Remove the predictor ``predictor_id``; True when a row was deleted."""
    t = schema.predictors
    with store.engine.begin() as conn:
        res = conn.execute(t.delete().where(t.c.predictor_id == predictor_id))
    return bool(res.rowcount)
