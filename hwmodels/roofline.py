"""Roofline cost model (template ``roofline``).

S. Williams, A. Waterman, D. Patterson, "Roofline: an insightful visual performance model for
multicore architectures", CACM 52(4), 2009: a kernel takes at least its work over the peak
rate and its memory traffic over the bandwidth. Here, per layer:

    seconds = max(macs / (peak_gmacs * 1e9), bytes / (mem_gbps * 1e9))       (MAC layers)
    seconds = max(ops / (vector_gops * 1e9), bytes / (mem_gbps * 1e9))        (vector layers)
    seconds = bytes / (mem_gbps * 1e9)                                        (data layers)

``bytes`` is the layer's compulsory traffic: inputs, weights and output once each, at
``Layer.elem_bytes`` per element (the model has no precision of its own). ``ops`` counts one
operation per element as :attr:`Layer.vector_ops` does, times 3 for softmax and 2 for norm
(the systolic model's counts).

Accelerator parameters (only ``peak_gmacs`` and ``mem_gbps`` are required; the others default
when absent): ``vector_gops`` (default: ``peak_gmacs``, a vector op per MAC unit per cycle),
``clock_mhz`` (default 1000; only converts seconds to cycles), ``pj_per_mac`` (default 1.0 pJ
per MAC or vector op: a 16-bit MAC of Horowitz's 45 nm numbers is 0.89 pJ), ``pj_per_byte``
(default 162.5 pJ: Horowitz's 1.3 nJ per 64-bit DRAM access), ``area_mm2`` (default 0).
"""

from __future__ import annotations

from typing import Any

from cosearch.errors import ConfigError
from cosearch.hwmodels import _energy as tech
from cosearch.hwmodels._base import Accelerator, CostModel, Layer, LayerCost, register_cost_model

__all__ = ["RooflineCostModel", "DEFAULTS"]

_MAC_KINDS = frozenset({"conv", "depthwise", "gemm", "matmul"})
_REQUIRED = ("peak_gmacs", "mem_gbps")
#: values of the optional parameters when an accelerator leaves them out
DEFAULTS: dict[str, float] = {
    "clock_mhz": 1000.0,
    "pj_per_mac": 1.0,
    "pj_per_byte": tech.DRAM_PJ_PER_BYTE,
    "area_mm2": 0.0,
}
_OPS_PER_ELEM = {"softmax": 3.0, "norm": 2.0}


@register_cost_model("roofline")
class RooflineCostModel(CostModel):
    """Roofline: per layer, the slower of peak compute and memory bandwidth.

    Raises:
        ConfigError: an accelerator lacks ``peak_gmacs`` or ``mem_gbps``, or a parameter is
            not a positive number (``area_mm2`` and the energies may be 0).
    """

    version = "v1"
    templates = ("roofline",)

    def _params(self, acc: Accelerator) -> dict[str, float]:
        p: dict[str, Any] = {**DEFAULTS, "vector_gops": acc.get("peak_gmacs"), **acc.params}
        for k in _REQUIRED:
            if k not in acc.params:
                raise ConfigError(
                    f"a roofline accelerator needs parameter {k!r}; got {acc.spec()}", key=k
                )
        for k in ("peak_gmacs", "mem_gbps", "vector_gops", "clock_mhz"):
            v = p[k]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise ConfigError(
                    f"The {k!r} parameter of hw:roofline must be a positive number. "
                    f"Got {v!r} instead.",
                    key=k,
                )
        for k in ("pj_per_mac", "pj_per_byte", "area_mm2"):
            v = p[k]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
                raise ConfigError(
                    f"The {k!r} parameter of hw:roofline must be a non-negative number. "
                    f"Got {v!r} instead.",
                    key=k,
                )
        return {k: float(v) for k, v in p.items() if not isinstance(v, str)}

    def area_mm2(self, acc: Accelerator) -> float:
        """``area_mm2`` as given (0 when absent): the roofline has no area model."""
        return self._params(acc)["area_mm2"]

    def clock_mhz(self, acc: Accelerator) -> float:
        return self._params(acc)["clock_mhz"]

    def layer_cost(self, layer: Layer, acc: Accelerator) -> LayerCost:
        p = self._params(acc)
        eb = layer.elem_bytes
        if layer.kind == "data":
            work, rate = 0.0, 1.0
            nbytes = 2.0 * layer.ofmap_elems * eb  # read and write back
        else:
            nbytes = float(layer.ifmap_elems + layer.filter_elems + layer.ofmap_elems) * eb
            if layer.kind in _MAC_KINDS:
                work, rate = float(layer.macs), p["peak_gmacs"] * 1e9
            else:
                work = layer.vector_ops * _OPS_PER_ELEM.get(layer.kind, 1.0)
                rate = p["vector_gops"] * 1e9
        compute_s = work / rate
        memory_s = nbytes / (p["mem_gbps"] * 1e9)
        seconds = max(compute_s, memory_s)
        cycles_per_s = p["clock_mhz"] * 1e6
        energy = {"compute": work * p["pj_per_mac"], "dram": nbytes * p["pj_per_byte"]}
        macs = layer.macs
        return LayerCost(
            compute_cycles=compute_s * cycles_per_s,
            latency_cycles=seconds * cycles_per_s,
            energy_pj=energy["compute"] + energy["dram"],
            sram_bytes=0.0,
            dram_bytes=nbytes,
            macs=macs,
            # achieved MAC rate over the peak
            utilization=(macs / seconds) / (p["peak_gmacs"] * 1e9) if macs and seconds else 0.0,
            kind=layer.kind,
            breakdown=energy,
        )
