"""Persistent layer-cost cache: the store's ``layer_costs`` table in front of a cost model.

Keyed by (cost model name, model version, layer digest, accelerator digest); the layer digest
covers only the layer's work (shapes, kind, element size), not its name, so identical layers
of different networks, trials and campaigns share one row. A process keeps what it has read
in memory too. A network's missing layers are fetched in one query and written back in one
transaction (insert-or-ignore, so concurrent workers may race safely).

Models that override ``CostModel.evaluate`` (they do not price layers independently) bypass
the cache.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from cosearch.hwmodels import Accelerator, Cost, CostModel, Layer, LayerCost
from cosearch.store import schema

__all__ = ["LayerCostCache"]

_COST_FIELDS = (
    "compute_cycles",
    "latency_cycles",
    "energy_pj",
    "sram_bytes",
    "dram_bytes",
    "macs",
    "utilization",
)


def _layer_digest(layer: Layer) -> str:
    return hashlib.sha256(layer.key().encode()).hexdigest()


def _to_json(lc: LayerCost) -> str:
    return json.dumps(
        {**{f: getattr(lc, f) for f in _COST_FIELDS}, "breakdown": dict(lc.breakdown)},
        sort_keys=True,
    )


def _from_json(text: str) -> LayerCost:
    d = json.loads(text)
    return LayerCost(**{f: d[f] for f in _COST_FIELDS}, breakdown=d.get("breakdown", {}))


class LayerCostCache:
    """``cache.evaluate(model, layers, acc)`` == ``model.evaluate(layers, acc)``, cached."""

    def __init__(self, store: Any, *, memory_limit: int = 200_000) -> None:
        self.store = store
        self._memory: dict[tuple[str, str, str, str], LayerCost] = {}
        self._memory_limit = memory_limit
        self.hits_memory = self.hits_store = self.misses = 0

    def evaluate(self, model: CostModel, layers: Sequence[Layer], acc: Accelerator) -> Cost:
        if type(model).evaluate is not CostModel.evaluate:
            return model.evaluate(layers, acc)
        model.check_template(acc)
        layers = list(layers)
        digests = [_layer_digest(layer) for layer in layers]
        key0 = (model.name, model.version)
        found: dict[str, LayerCost] = {}
        for d in set(digests):
            lc = self._memory.get((*key0, d, acc.digest))
            if lc is not None:
                found[d] = lc
        self.hits_memory += len(found)
        missing = sorted(set(digests) - set(found))
        if missing:
            t = schema.layer_costs
            with self.store.engine.connect() as conn:
                rows = conn.execute(
                    sa.select(t.c.layer_digest, t.c.cost_json).where(
                        t.c.model == model.name,
                        t.c.model_version == model.version,
                        t.c.accelerator_digest == acc.digest,
                        t.c.layer_digest.in_(missing),
                    )
                ).all()
            for d, text in rows:
                found[d] = _from_json(text)
            self.hits_store += len(rows)
        new = []
        by_digest = dict(zip(digests, layers))
        for d in missing:
            if d not in found:
                found[d] = model.layer_cost(by_digest[d], acc)
                new.append(d)
        self.misses += len(new)
        if new:
            self.store.put_layer_costs(
                [
                    {
                        "model": model.name,
                        "model_version": model.version,
                        "layer_digest": d,
                        "accelerator_digest": acc.digest,
                        "layer_json": by_digest[d].key(),
                        "cost_json": _to_json(found[d]),
                    }
                    for d in new
                ]
            )
        if len(self._memory) > self._memory_limit:
            self._memory.clear()
        for d in missing:
            self._memory[(*key0, d, acc.digest)] = found[d]
        return model.combine(layers, [found[d] for d in digests], acc)
