"""One call for "this ONNX model on that accelerator": what ``cosearch hw eval`` prints."""

from __future__ import annotations

from typing import Any

import onnx

from cosearch.errors import ConfigError
from cosearch.hwmodels._base import Cost, get_cost_model
from cosearch.hwmodels.layers import extract_layers

__all__ = ["evaluate_model", "default_cost_model"]

#: the cost model that prices each accelerator template unless one is named
_DEFAULT_MODEL = {"device": "measured"}


def default_cost_model(template: str) -> str:
    return _DEFAULT_MODEL.get(template, template)


#: the analytical keys a timed run does not give (None in its result)
_NOT_MEASURED = tuple(m for m in Cost.METRICS if m != "latency_ms") + ("macs",)


def evaluate_model(
    model: onnx.ModelProto, accelerator: str, cost_model: str | None = None
) -> dict[str, Any]:
    """Cost of ``model`` on the accelerator spec ``TEMPLATE[:key=value,...]``.

    ``measured:DEVICE`` (e.g. ``measured:cpu``) times the model with onnxruntime instead.
    Returns a JSON-ready dict: ``accelerator`` (the full spec), ``source``, ``latency_ms``,
    ``latency_cycles``, ``compute_cycles``, ``energy_mj``, ``area_mm2``, ``sram_bytes``,
    ``dram_bytes``, ``utilization``, ``macs``, ``violations`` and ``layers`` (per-layer costs).
    For a measured device: ``accelerator``, ``source``, ``latency_ms`` (the median),
    ``spread_ms`` (the inter-quartile range), ``std_ms``, ``min_ms``, ``repeats``, ``warmup``,
    ``threads``, every other key of the analytical result (``latency_cycles``,
    ``compute_cycles``, ``energy_mj``, ``area_mm2``, ``sram_bytes``, ``dram_bytes``,
    ``utilization``, ``macs``: all None, not measured), ``violations`` (empty) and ``layers``
    (empty: it times the whole model).

    Raises:
        ConfigError: unknown template, parameter or cost model, or a bad value.
        OnnxImportError: the model uses an operator the cost models do not know.
    """
    from cosearch.hwmodels import Accelerator
    from cosearch.spaces import parse_accelerator

    template, _, rest = accelerator.partition(":")
    if template.strip() == "measured":
        device = rest.strip() or "cpu"
        acc = Accelerator("device", {"name": device})
        name = cost_model or "measured"
    else:
        acc = parse_accelerator(accelerator)
        name = cost_model or default_cost_model(acc.template)
    cm = get_cost_model(name)
    if cm.templates and acc.template not in cm.templates:
        raise ConfigError(
            f"cost model {name!r} cannot price a {acc.template!r} accelerator; "
            f"it takes {', '.join(cm.templates)}"
        )
    if name == "measured":
        from cosearch.hwmodels.measured import MeasuredCostModel

        assert isinstance(cm, MeasuredCostModel)
        m = cm.measure(model, acc)
        return {
            "accelerator": f"measured:{m.device}",
            "source": cm.source_for(m.device),
            "latency_ms": m.latency_ms,
            "spread_ms": m.iqr_ms,
            "std_ms": m.std_ms,
            "min_ms": m.min_ms,
            "repeats": m.repeats,
            "warmup": m.warmup,
            "threads": m.threads,
            # timing gives no cycles, energy, area, traffic or MACs: every key an analytical
            # result has is there, with a null value
            **dict.fromkeys(_NOT_MEASURED),
            "violations": [],
            "layers": [],
        }
    cost = cm.evaluate(extract_layers(model), acc)
    return {"accelerator": acc.spec(), "source": cm.source, **cost.as_dict()}
