"""Train a predictor of any kind from a benchmark table or a campaign, score it, store it.

The work behind ``cosearch predictor train``: :func:`train_from_table` and
:func:`train_from_campaign` fit one predictor on ``train`` rows drawn with
``numpy.random.default_rng(seed)`` (all rows when ``train`` is None), score it on up to
``score_rows`` of the remaining rows (Spearman, Kendall, MAPE for positive targets, and for
accuracy kinds the coverage of the 90% interval), and save it with
:func:`~cosearch.predictors.persist.save_predictor`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from cosearch.errors import ConfigError
from cosearch.predictors._base import kendall, spearman
from cosearch.predictors._encodings import check_encoding, encode_genotypes_as, encode_models
from cosearch.predictors.persist import (
    ACCURACY_KINDS,
    KINDS,
    StoredPredictor,
    check_new_id,
    check_predictor_id,
    save_predictor,
)

if TYPE_CHECKING:
    from cosearch.store import Store

__all__ = ["train_from_table", "train_from_campaign", "default_encoding", "make_estimator"]


def default_encoding(kind: str, space: str | None, from_table: bool) -> str:
    """The encoding a kind trains on unless one is named: ``graph`` for gnn, ``analytical``
    for hybrid, ``paths`` for accuracy kinds on table spaces, ``table`` for the other kinds on
    table spaces, ``onnx`` otherwise (campaigns of other spaces)."""
    from cosearch.predictors.tables import TABLE_SPACES

    if kind == "gnn":
        return "graph"
    if kind == "hybrid":
        return "analytical"
    if space in TABLE_SPACES and (from_table or kind == "fewshot"):
        return "paths" if kind in ACCURACY_KINDS else "table"
    return "onnx"


def make_estimator(kind: str, seed: int, y: np.ndarray) -> Any:
    """A fresh estimator of ``kind`` seeded with ``seed``. Accuracy kinds fit the log error
    when every target is in [0, 100] (``max_accuracy`` 1 when all are <= 1, else 100), and the
    raw target otherwise. ``y`` is every known value of the target, not only the rows drawn
    for training: a draw that happens to stay below 1 would otherwise cap the predictions."""
    from cosearch.predictors.persist import _estimator_class

    cls = _estimator_class(kind)
    if kind in ACCURACY_KINDS:
        finite = y[np.isfinite(y)]
        if finite.size and finite.min() >= 0 and finite.max() <= 100:
            top = 1.0 if finite.max() <= 1.0 else 100.0
            return cls(random_state=seed, target_transform="log_error", max_accuracy=top)
        return cls(random_state=seed, target_transform="none")
    return cls(random_state=seed)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ConfigError(f"unknown predictor kind {kind!r}; valid: {', '.join(KINDS)}", key="kind")


def _check_encoding_for(kind: str, encoding: str) -> None:
    needs = {"gnn": ("graph",), "hybrid": ("analytical",), "fewshot": ("table",)}
    allowed = needs.get(kind, ("table", "paths", "onnx"))
    if encoding not in allowed:
        raise ConfigError(
            f"a {kind!r} predictor takes the encoding(s) {', '.join(allowed)}; got {encoding!r}",
            key="encoding",
        )


def _split(
    n: int, train: int | None, seed: int, score_rows: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``0..n-1`` drawn for training and (up to ``score_rows``) for scoring."""
    ok = isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)
    if not ok or not 0 <= int(seed) < 2**32:
        raise ConfigError(
            f"The 'seed' argument must be an int in [0, 2**32); got {seed!r}", key="seed"
        )
    everything = np.arange(n)
    if train is None:
        return everything, np.zeros(0, dtype=np.int64)
    ok = isinstance(train, (int, np.integer)) and not isinstance(train, bool)
    if not ok or not 2 <= int(train) <= n:
        raise ConfigError(
            f"The 'train' argument must be an int in [2, {n}] (rows with a target value); "
            f"got {train!r} instead.",
            key="train",
        )
    rng = np.random.default_rng(seed)
    fit = np.sort(rng.choice(everything, int(train), replace=False))
    rest = np.setdiff1d(everything, fit)
    if score_rows is not None and len(rest) > score_rows:
        rest = np.sort(rng.choice(rest, int(score_rows), replace=False))
    return fit, rest


def _scores(kind: str, est: Any, x: Any, y: np.ndarray) -> dict[str, Any]:
    if len(y) < 2:
        return {}
    pred = np.asarray(est.predict(x), dtype=np.float64)
    out: dict[str, Any] = {
        "rows": int(len(y)),
        "spearman": spearman(y, pred),
        "kendall": kendall(y, pred),
    }
    if np.all(y > 0):
        out["mape_pct"] = float(np.mean(np.abs(pred - y) / y) * 100.0)
    if kind in ACCURACY_KINDS:
        lo, hi = est.predict_interval(x, coverage=0.9)
        out["coverage90"] = float(np.mean((y >= lo) & (y <= hi)))
    return out


def _take(x: Any, rows: np.ndarray) -> Any:
    return x[rows] if isinstance(x, np.ndarray) else [x[i] for i in rows]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _models_for(space: str, genotypes: Sequence[Any]) -> list[Any]:
    from cosearch.spaces import get_space

    net = get_space(space)
    return [net.build(dict(g)) for g in genotypes]


def _fit_and_save(
    store: Store,
    predictor_id: str,
    kind: str,
    encoding: str,
    space: str | None,
    target: str,
    x_fit: Any,
    y_fit: np.ndarray,
    x_score: Any,
    y_score: np.ndarray,
    seed: int,
    training_ref: dict[str, Any],
    replace: bool,
    y_known: np.ndarray,
    meta: tuple[np.ndarray, np.ndarray] | None = None,
) -> StoredPredictor:
    if kind in ("fewshot", "hybrid") and not (np.isfinite(y_fit).all() and (y_fit > 0).all()):
        raise ConfigError(
            f"a {kind!r} predictor fits latencies, which must be finite and > 0; target "
            f"{target!r} has {int(np.sum(~(y_fit > 0)))} training value(s) that are not",
            key="target",
        )
    if kind == "fewshot":
        if meta is None:
            raise ConfigError("a fewshot predictor trains from a table's lat_* columns", key="kind")
        from cosearch.predictors.fewshot import FewShotLatencyPredictor

        est = FewShotLatencyPredictor(random_state=seed).fit(*meta).adapt(x_fit, y_fit)
    else:
        est = make_estimator(kind, seed, y_known).fit(x_fit, y_fit)
    x_train = None
    if kind == "hybrid":
        x_train = est.features(x_fit)  # refit on load from the analytical features, not models
    elif isinstance(x_fit, np.ndarray):
        x_train = x_fit
    return save_predictor(
        store,
        predictor_id,
        est,
        encoding=encoding,
        space=space,
        target=target,
        training_ref=training_ref,
        scores=_scores(kind, est, x_score, y_score),
        X_train=x_train,
        y_train=y_fit,
        replace=replace,
    )


def train_from_table(
    store: Store,
    predictor_id: str,
    kind: str,
    table_csv: str | Path,
    space: str,
    target: str,
    *,
    train: int | None = None,
    seed: int = 0,
    encoding: str | None = None,
    score_rows: int | None = 2000,
    replace: bool = False,
) -> StoredPredictor:
    """Fit a ``kind`` predictor of column ``target`` of a benchmark table (read for
    ``space``), score it on held-out rows, and store it under ``predictor_id``.

    ``fewshot`` meta-trains on every other ``lat_*`` column over all rows and adapts to
    ``target`` from the ``train`` drawn rows (default 10). ``gnn`` and ``hybrid`` build the
    rows' networks (spaces with a builder: nb201, ofa_mbv3), which takes a while for
    thousands of rows. Raises ConfigError for a bad kind, id, encoding, space, column or
    count; StoreInputError when the id exists and ``replace`` is False.
    """
    from cosearch.predictors.tables import load_table, network_options_of

    _check_kind(kind)
    check_predictor_id(predictor_id)
    check_new_id(store, predictor_id, replace)
    encoding = encoding or default_encoding(kind, space, from_table=True)
    check_encoding(encoding, space)
    _check_encoding_for(kind, encoding)
    data = load_table(table_csv, space)
    y_all = data.column(target)
    rows = np.flatnonzero(np.isfinite(y_all))
    if kind == "fewshot" and train is None:
        train = 10
    fit, rest = _split(len(rows), train, seed, score_rows)
    fit, rest = rows[fit], rows[rest]
    both = np.concatenate([fit, rest])
    genotypes = [data.genotypes[i] for i in both]
    x: Any
    if encoding == "table":
        x = data.features[both]
    elif encoding == "paths":
        x = encode_genotypes_as("paths", space, genotypes)
    else:
        x = encode_models(encoding, space, _models_for(space, genotypes))
    n = len(fit)
    meta = None
    if kind == "fewshot":
        columns = [c for c in data.latency_columns if c != target]
        if len(columns) < 2:
            raise ConfigError(
                f"a fewshot predictor meta-trains on at least 2 other lat_* columns; table "
                f"{data.path} has {len(columns)} besides {target!r}",
                key="kind",
            )
        meta = (data.features, data.latencies(columns))
    path = Path(table_csv).resolve()
    ref: dict[str, Any] = {
        "source": "table",
        "path": str(path),
        "sha256": _sha256(path),
        "space": space,
        "network_options": network_options_of(space, target),
        "target": target,
        "rows": int(n),
        "seed": int(seed),
        "draw": "numpy.random.default_rng(seed).choice(rows with a target, rows, replace=False)",
    }
    if meta is not None:
        ref["meta_columns"] = [c for c in data.latency_columns if c != target]
    return _fit_and_save(
        store,
        predictor_id,
        kind,
        encoding,
        space,
        target,
        _take(x, np.arange(n)),
        y_all[fit],
        _take(x, np.arange(n, len(both))),
        y_all[rest],
        seed,
        ref,
        replace,
        y_all[rows],
        meta,
    )


def _campaign_network_options(store: Store, campaign: str) -> dict[str, Any]:
    from cosearch.campaign import stored_config
    from cosearch.spaces import get_space

    config = stored_config(store, store.require_campaign(campaign))
    return dict(get_space(config.network, **config.space_options()).options)


def campaign_rows(
    store: Store, campaign: str, metric: str, source: str | None = None
) -> list[dict[str, Any]]:
    """One row per architecture of ``campaign`` with a ``metric`` measurement: ``digest``,
    ``source`` (of the measurements), ``space``, ``genotype``, ``onnx`` (bytes), ``value``
    (mean over the architecture's trials), ``trials``, ``accelerators`` (distinct accelerator
    digests). Raises StoreInputError for an unknown campaign; ConfigError when the metric
    has no measurement, or several sources and ``source`` names none of them."""
    from cosearch.store import schema

    row = store.require_campaign(campaign)
    m, e, a = schema.measurements, schema.evaluations, schema.architectures
    q = (
        sa.select(
            m.c.value,
            m.c.source,
            a.c.digest,
            a.c.space,
            a.c.genotype_json,
            a.c.onnx,
            e.c.accelerator_digest,
        )
        .join(e, e.c.trial_id == m.c.trial_id)
        .join(a, a.c.digest == e.c.architecture_digest)
        .where(e.c.campaign_id == row["campaign_id"], m.c.metric == metric)
        .order_by(e.c.trial_id)
    )
    with store.engine.connect() as conn:
        found = conn.execute(q).all()
    sources = sorted({r.source for r in found})
    if not found:
        raise ConfigError(
            f"campaign {campaign!r} has no measurement of metric {metric!r}", key="target"
        )
    if source is not None:
        found = [r for r in found if r.source == source]
        if not found:
            raise ConfigError(
                f"campaign {campaign!r} has no {metric!r} measurement from source {source!r}; "
                f"its sources: {', '.join(sources)}",
                key="source",
            )
    elif len(sources) > 1:
        raise ConfigError(
            f"metric {metric!r} of campaign {campaign!r} comes from several sources "
            f"({', '.join(sources)}); name one with --source",
            key="source",
        )
    by_arch: dict[str, dict[str, Any]] = {}
    for r in found:
        item = by_arch.setdefault(
            r.digest,
            {
                "digest": r.digest,
                "source": r.source,
                "space": r.space,
                "genotype": json.loads(r.genotype_json),
                "onnx": r.onnx,
                "values": [],
                "accelerators": set(),
            },
        )
        item["values"].append(float(r.value))
        item["accelerators"].add(r.accelerator_digest)
    out = []
    for item in by_arch.values():
        values = item.pop("values")
        item["value"] = float(np.mean(values))
        item["trials"] = len(values)
        out.append(item)
    return out


def train_from_campaign(
    store: Store,
    predictor_id: str,
    kind: str,
    campaign: str,
    metric: str,
    *,
    source: str | None = None,
    train: int | None = None,
    seed: int = 0,
    encoding: str | None = None,
    score_rows: int | None = 2000,
    replace: bool = False,
) -> StoredPredictor:
    """Fit a ``kind`` predictor of ``metric`` from the measurements of ``campaign`` in the
    store (one row per architecture: the mean of its trials), score and store it.

    Inputs come from the stored (structure-only) ONNX models: ``onnx_features`` by default,
    the table encodings on request for table spaces. Any metric but ``accuracy`` needs every
    measurement taken on one accelerator (a predictor sees only the architecture). Raises
    ConfigError for a bad kind, encoding or count, ``fewshot`` (it needs a table of many
    devices), or a cost measured on several accelerators; StoreInputError for an unknown
    campaign.
    """
    from cosearch.spaces.onnx_io import model_from_bytes

    _check_kind(kind)
    check_predictor_id(predictor_id)
    check_new_id(store, predictor_id, replace)
    if kind == "fewshot":
        raise ConfigError(
            "a fewshot predictor meta-trains on a table of many devices; train it with --table",
            key="kind",
        )
    items = campaign_rows(store, campaign, metric, source)
    spaces = sorted({i["space"] for i in items})
    space = spaces[0] if len(spaces) == 1 else None
    accelerators = set().union(*(i["accelerators"] for i in items))
    # every kind sees only the architecture: a cost measured on many accelerators would be
    # learned as each architecture's average over whichever it was paired with (a gp did)
    if metric != "accuracy" and len(accelerators) > 1:
        raise ConfigError(
            f"campaign {campaign!r} measured {metric!r} on {len(accelerators)} accelerators; a "
            f"{kind!r} predictor sees only the architecture, so it needs one (a campaign over "
            "the 'device' hardware space)",
            key="campaign",
        )
    encoding = encoding or default_encoding(kind, space, from_table=False)
    check_encoding(encoding, space)
    _check_encoding_for(kind, encoding)
    fit, rest = _split(len(items), train, seed, score_rows)
    both = np.concatenate([fit, rest])
    chosen = [items[i] for i in both]
    x: Any
    if encoding in ("table", "paths"):
        x = encode_genotypes_as(encoding, str(space), [i["genotype"] for i in chosen])
    else:
        x = encode_models(encoding, space, [model_from_bytes(i["onnx"]) for i in chosen])
    y = np.array([i["value"] for i in chosen])
    n = len(fit)
    ref = {
        "source": "campaign",
        "storage": store.display_url,
        "campaign": campaign,
        "metric": metric,
        "measurement_source": items[0]["source"],
        "network_options": _campaign_network_options(store, campaign),
        "architectures": len(items),
        "rows": int(n),
        "seed": int(seed),
    }
    return _fit_and_save(
        store,
        predictor_id,
        kind,
        encoding,
        space,
        metric,
        _take(x, np.arange(n)),
        y[:n],
        _take(x, np.arange(n, len(both))),
        y[n:],
        seed,
        ref,
        replace,
        np.array([i["value"] for i in items]),
    )
