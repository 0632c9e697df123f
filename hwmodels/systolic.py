"""Analytical cost model of a systolic-array accelerator (template ``systolic``).

Accelerator parameters: ``pe_rows`` x ``pe_cols`` PEs, ``dataflow`` (``ws``, ``os`` or ``is``),
three double-buffered SRAMs (``ifmap_sram_kib``, ``filter_sram_kib``, ``ofmap_sram_kib``),
``dram_gbps``, ``clock_mhz`` and ``precision_bits`` (operand width; every SRAM and DRAM element
is that wide, partial sums included). ``Layer.elem_bytes`` is not used: the accelerator's
precision decides the bytes.

Time. A MAC layer is one GEMM per group (per batch for ``matmul``) in SCALE-Sim's notation:
``Sr x T`` by ``T x Sc`` on an ``R x C`` array (see :func:`gemm_view` and
:func:`scalesim_compute_cycles`). Latency is ``max(compute, DRAM bytes / DRAM bytes per cycle)``
plus the time to fetch the first tile (double buffering hides every later fetch).

Non-MAC layers (pool, eltwise, softmax, norm) run on the PE array as vector work, since the
template has no separate vector unit: ``ceil(ops / (R*C))`` cycles, but no faster than the SRAM
ports feed it (``R`` elements per cycle in from the ifmap SRAM, ``C`` out to the ofmap SRAM), plus
an ``R + C - 2`` cycle pipeline fill. ``data`` layers (reshape, concat, ...) are an on-chip copy
of their output at ``R`` elements per cycle and touch no DRAM.

SRAM accesses by the array, in operand-matrix elements (``rf``/``cf`` = row/column folds):
OS reads each ifmap row ``cf`` times and each filter column ``rf`` times and writes each output
once; WS reads each filter once, the ifmap ``cf`` times, and writes partial sums ``rf`` times
(reading them back ``rf - 1`` times); IS is WS with ifmap and filter swapped. ``sram_bytes``
reports these; the SRAM fills and drains that go with DRAM transfers add energy only.

Traffic. Every layer reads its inputs from DRAM and writes its output to DRAM (layers are costed
independently, so costs add). An operand whose reuse spans folds is fetched once when the whole
operand fits in half of its SRAM (double buffering), else once per fold of the other
dimension (a whole-operand rule: it keeps traffic monotone in a layer's work). Partial sums that
span row folds (WS, IS) spill to DRAM and come back when the ofmap SRAM cannot hold them.

Energy adds MAC (or ALU) energy, PE register movement, SRAM accesses (per-byte energy grows with
the buffer size), DRAM accesses, and the SRAM writes/reads that go with each DRAM transfer.
Static power is not modelled. Every constant lives in :class:`SystolicConstants` with its source.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from functools import lru_cache
from typing import Any, NamedTuple

from cosearch.errors import ConfigError
from cosearch.hwmodels._base import Accelerator, CostModel, Layer, LayerCost, register_cost_model

__all__ = ["SystolicConstants", "SystolicCostModel", "gemm_view", "scalesim_compute_cycles"]

DATAFLOWS = ("ws", "os", "is")
_MAC_KINDS = frozenset({"conv", "depthwise", "gemm", "matmul"})
_PARAMS = (
    "pe_rows",
    "pe_cols",
    "dataflow",
    "ifmap_sram_kib",
    "filter_sram_kib",
    "ofmap_sram_kib",
    "dram_gbps",
    "clock_mhz",
    "precision_bits",
)


@dataclass(frozen=True)
class SystolicConstants:
    """Technology constants of the systolic model (45 nm unless noted). Override any field
    through ``get_cost_model("systolic", field=value)``.

    Sources:
      [H] M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014,
          45 nm, 0.9 V: energies and areas of adders, multipliers, SRAM and DRAM.
      [I] Intel 45 nm 6T SRAM cell, 0.346 um2 (K. Mistry et al., IEDM 2007).
      [N] NanGate FreePDK45 Open Cell Library: DFF_X1 flip-flop, 4.522 um2.
      [E] Eyeriss normalized access energies (RF 1x, inter-PE 2x, buffer 6x, DRAM 200x of a
          MAC; Y.-H. Chen et al., ISCA 2016), used only as a cross-check: with these defaults an
          8-bit MAC is 0.25 pJ, a 128 KiB buffer byte 4.8 pJ (about 19x) and a DRAM byte 162 pJ
          (about 640x); Eyeriss counts 16-bit words and a 108 KiB buffer, so the same order.
    """

    # -- energy, pJ ---------------------------------------------------------------------------
    #: [H] 8-bit integer multiply; 32-bit integer multiply. Other widths follow the power law
    #: through these two points (exponent ~1.98, i.e. ~bits^2).
    mult8_pj: float = 0.2
    mult32_pj: float = 3.1
    #: [H] 8-bit and 32-bit integer add (power law between them, exponent ~0.87). The
    #: accumulator is twice the operand width.
    add8_pj: float = 0.03
    add32_pj: float = 0.1
    #: Per byte written to a PE pipeline register. Assumed ~ an 8-bit add [H]; an Eyeriss RF
    #: access [E] (a multi-entry file, ~1 MAC per 16-bit word) is an upper bound.
    reg_pj_per_byte: float = 0.03
    #: [H] SRAM energy per 64-bit access: (capacity KiB, pJ) at 8 KB, 32 KB and 1 MB;
    #: interpolated (and extrapolated) linearly in log-log. Writes cost as much as reads.
    sram_pj_per_64b: tuple[tuple[float, float], ...] = ((8.0, 10.0), (32.0, 20.0), (1024.0, 100.0))
    #: [H] DRAM 1.3-2.6 nJ per 64-bit access; the low end (the often-quoted 640 pJ per 32 bits).
    dram_pj_per_64b: float = 1300.0
    #: ALU operations per element of vector work. Softmax: max, exp, sum/divide; norm: scale and
    #: shift plus statistics. Rough counts (assumption); eltwise and pool use 1 per element.
    softmax_ops_per_elem: float = 3.0
    norm_ops_per_elem: float = 2.0
    #: Passes over the input in SRAM: statistics first, then the normalized output (assumption).
    softmax_passes: int = 2
    norm_passes: int = 2
    # -- area, um2 / mm2 ----------------------------------------------------------------------
    #: [H] 8-bit and 32-bit multiplier area (power law between them, exponent ~1.82).
    mult8_um2: float = 282.0
    mult32_um2: float = 3495.0
    #: [H] 8-bit and 32-bit adder area (power law, exponent ~0.96).
    add8_um2: float = 36.0
    add32_um2: float = 137.0
    #: [N] One flip-flop bit.
    dff_um2: float = 4.522
    #: Register bits per PE, in operand widths: two forwarding registers, one stationary
    #: operand, and a double-width accumulator (assumption from the PE's datapath).
    pe_reg_words: float = 5.0
    #: Standard-cell placement utilization: logic area / 0.7 (typical placement density).
    logic_utilization: float = 0.7
    #: [I] 6T SRAM bit cell, and the share of a macro that is cells (periphery is the rest).
    sram_cell_um2: float = 0.346
    sram_array_efficiency: float = 0.7
    #: Control, DMA and interconnect, fixed (assumption).
    control_mm2: float = 0.2


def _power_law(x: float, x0: float, y0: float, x1: float, y1: float) -> float:
    """``y`` on the line through ``(x0, y0)`` and ``(x1, y1)`` in log-log space."""
    return y0 * (x / x0) ** (math.log(y1 / y0) / math.log(x1 / x0))


def _sram_pj_per_byte(kib: float, points: Sequence[tuple[float, float]]) -> float:
    """Per-byte SRAM access energy for a ``kib`` buffer, piecewise log-log in ``points``."""
    pts = sorted(points)
    if len(pts) == 1:
        return pts[0][1] / 8.0
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if kib <= x1:
            return _power_law(kib, x0, y0, x1, y1) / 8.0
    (x0, y0), (x1, y1) = pts[-2], pts[-1]
    return _power_law(kib, x0, y0, x1, y1) / 8.0


def scalesim_compute_cycles(
    sr: int, sc: int, t: int, rows: int, cols: int, dataflow: str = "ws"
) -> int:
    """Ideal (stall-free) compute cycles of an ``Sr x T`` by ``T x Sc`` GEMM on a ``rows x cols``
    array, counted as SCALE-Sim 3.0.0 counts them.

    ``folds * per_fold`` with ``folds = ceil(sr / rows) * ceil(sc / cols)`` (every fold, partial
    ones included, takes a full fold's time) and

    - WS and IS: ``per_fold = 2 * rows + cols + t - 2``: ``rows`` cycles to load the stationary
      tile, then ``t`` skewed operand rows stream through ``rows + cols - 2`` cycles of fill and
      drain. This is the scale-up runtime of Samajdar et al., "A Systematic Methodology for
      Characterizing Scalability of DNN Accelerators using SCALE-Sim", ISPASS 2020.
    - OS: ``per_fold = rows + cols + t - 2``: nothing is preloaded; both operands stream in
      skewed for ``t`` cycles and the accumulated outputs drain in ``rows + cols - 2`` more.
      SCALE-Sim 3.0.0 models OS this way (its OS demand matrices hold ``t + rows + cols - 2``
      rows per fold), one stationary-load phase shorter than the paper's formula.

    Checked against scalesim 3.0.0 per layer by ``benchmarks/hwmodels/scalesim_compare.py``
    (results in ``benchmarks/results/hwmodels_scalesim.md``): SCALE-Sim's COMPUTE_REPORT
    "Total Cycles" minus "Stall Cycles" is this count minus one, because it reports the 0-based
    index of the last busy cycle. 0 for empty GEMMs.

    Raises:
        ConfigError: ``dataflow`` is not ``ws``, ``os`` or ``is``.
    """
    if dataflow not in DATAFLOWS:
        raise ConfigError(
            f"The 'dataflow' parameter of hw:systolic must be one of {list(DATAFLOWS)}. "
            f"Got {dataflow!r} instead.",
            key="dataflow",
        )
    if sr <= 0 or sc <= 0 or t <= 0:
        return 0
    fill = rows if dataflow == "os" else 2 * rows
    return -(-sr // rows) * -(-sc // cols) * (fill + cols + t - 2)


def gemm_view(layer: Layer, dataflow: str) -> tuple[int, int, int, int]:
    """``(gemms, Sr, Sc, T)``: a MAC layer as ``gemms`` independent GEMMs on the array.

    Per group (per batch for ``matmul``): ofmap pixels ``Np = n*p*q``, filters
    ``F = k/groups``, window ``W = c/groups * r * s``. SCALE-Sim's mapping (ISPASS 2020):
    OS ``(Np, F, W)``, WS ``(W, F, Np)``, IS ``(W, Np, F)`` (scalesim 3.0.0 maps them the same
    way). A depthwise layer is ``c`` GEMMs of one filter each, which is what a plain systolic
    array does with it and what SCALE-Sim does with a topology layer named ``DP...`` (one
    single-channel layer per channel).
    """
    if layer.kind == "matmul":
        gemms, pixels, filters, window = layer.n, layer.p * layer.q, layer.k, layer.c
    else:
        g = layer.groups
        gemms = g
        pixels = layer.n * layer.p * layer.q
        filters = layer.k // g
        window = (layer.c // g) * layer.r * layer.s
    if dataflow == "os":
        return gemms, pixels, filters, window
    if dataflow == "ws":
        return gemms, window, filters, pixels
    return gemms, window, pixels, filters


class _Derived(NamedTuple):
    """Per-accelerator numbers, computed once."""

    rows: int
    cols: int
    dataflow: str
    elem_bytes: float
    cap_if: float  # usable bytes: half of each double-buffered SRAM
    cap_fl: float
    cap_of: float
    dram_bytes_per_cycle: float
    mac_pj: float
    reg_pj_per_mac: float
    e_if: float  # pJ per byte of each SRAM
    e_fl: float
    e_of: float
    e_dram: float
    area_mm2: float
    clock_mhz: float


def _once_or(times: int, resident: float, cap: float) -> int:
    return 1 if resident <= cap else times


@register_cost_model("systolic")
class SystolicCostModel(CostModel):
    """SCALE-Sim-style systolic array: ideal array time, DRAM-bound latency, Horowitz energy.

    ``SystolicCostModel(constants=None, **overrides)``: ``overrides`` replace fields of
    :class:`SystolicConstants`. Non-default constants change :attr:`version` (``v1+<hash>``) so
    cached layer costs of different constants never mix.

    Raises:
        ConfigError: an override names no constant, or an accelerator lacks a parameter or
            holds an impossible value (from :meth:`evaluate`, :meth:`area_mm2`, ...).
    """

    version = "v1"
    templates = ("systolic",)

    def __init__(self, constants: SystolicConstants | None = None, **overrides: Any) -> None:
        super().__init__()
        base = constants if constants is not None else SystolicConstants()
        valid = [f.name for f in fields(SystolicConstants)]
        unknown = sorted(set(overrides) - set(valid))
        if unknown:
            raise ConfigError(
                f"the systolic cost model has no constant {unknown[0]!r}; its "
                f"constants are: {', '.join(valid)}",
                key=unknown[0],
            )
        self.constants = replace(base, **overrides) if overrides else base
        if self.constants != SystolicConstants():
            blob = json.dumps(asdict(self.constants), sort_keys=True).encode()
            self.version = f"v1+{hashlib.sha256(blob).hexdigest()[:10]}"
        self._derive = lru_cache(maxsize=4096)(self._derive_uncached)
        self._tile = lru_cache(maxsize=65536)(self._stationary_tile)

    # -- per-accelerator ----------------------------------------------------------------------
    def _derive_uncached(self, acc: Accelerator) -> _Derived:
        p = acc.params
        missing = [k for k in _PARAMS if k not in p]
        if missing:
            raise ConfigError(
                f"a systolic accelerator needs parameter {missing[0]!r}; got {acc.spec()}",
                key=missing[0],
            )
        if p["dataflow"] not in DATAFLOWS:
            raise ConfigError(
                f"The 'dataflow' parameter of hw:systolic must be one of "
                f"{list(DATAFLOWS)}. Got {p['dataflow']!r} instead.",
                key="dataflow",
            )
        for k in _PARAMS:
            value = p[k]
            if k != "dataflow" and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0
            ):
                raise ConfigError(
                    f"The {k!r} parameter of hw:systolic must be a positive "
                    f"number. Got {value!r} instead.",
                    key=k,
                )
        tc = self.constants
        rows, cols, bits = int(p["pe_rows"]), int(p["pe_cols"]), int(p["precision_bits"])
        kib = (p["ifmap_sram_kib"], p["filter_sram_kib"], p["ofmap_sram_kib"])
        mult_pj = _power_law(bits, 8, tc.mult8_pj, 32, tc.mult32_pj)
        acc_add_pj = _power_law(2 * bits, 8, tc.add8_pj, 32, tc.add32_pj)
        # Per MAC two operands move one register each and the accumulator (2x wide) updates.
        reg_bytes_per_mac = (2 * bits + 2 * bits) / 8
        pe_um2 = (
            _power_law(bits, 8, tc.mult8_um2, 32, tc.mult32_um2)
            + _power_law(2 * bits, 8, tc.add8_um2, 32, tc.add32_um2)
            + tc.pe_reg_words * bits * tc.dff_um2
        ) / tc.logic_utilization
        sram_um2_per_kib = 8192 * tc.sram_cell_um2 / tc.sram_array_efficiency
        area = rows * cols * pe_um2 * 1e-6 + sum(kib) * sram_um2_per_kib * 1e-6 + tc.control_mm2
        clock = float(p["clock_mhz"])
        return _Derived(
            rows=rows,
            cols=cols,
            dataflow=p["dataflow"],
            elem_bytes=bits / 8,
            cap_if=kib[0] * 512.0,
            cap_fl=kib[1] * 512.0,
            cap_of=kib[2] * 512.0,
            dram_bytes_per_cycle=p["dram_gbps"] * 1e9 / (clock * 1e6),
            mac_pj=mult_pj + acc_add_pj,
            reg_pj_per_mac=reg_bytes_per_mac * tc.reg_pj_per_byte,
            e_if=_sram_pj_per_byte(kib[0], tc.sram_pj_per_64b),
            e_fl=_sram_pj_per_byte(kib[1], tc.sram_pj_per_64b),
            e_of=_sram_pj_per_byte(kib[2], tc.sram_pj_per_64b),
            e_dram=tc.dram_pj_per_64b / 8,
            area_mm2=area,
            clock_mhz=clock,
        )

    def area_mm2(self, acc: Accelerator) -> float:
        """PEs (multiplier, 2x-wide adder, registers; / placement utilization) + SRAM cells /
        array efficiency + fixed control, in mm2."""
        return self._derive(acc).area_mm2

    def clock_mhz(self, acc: Accelerator) -> float:
        return self._derive(acc).clock_mhz

    # -- per-layer ----------------------------------------------------------------------------
    def layer_cost(self, layer: Layer, acc: Accelerator) -> LayerCost:
        d = self._derive(acc)
        if layer.kind in _MAC_KINDS:
            return self._mac_cost(layer, d)
        if layer.kind == "data":
            return self._data_cost(layer, d)
        return self._vector_cost(layer, d)

    def _mac_cost(self, layer: Layer, d: _Derived) -> LayerCost:
        rows, cols, df, b = d.rows, d.cols, d.dataflow, d.elem_bytes
        gemms, sr, sc, t = gemm_view(layer, df)
        macs = layer.macs
        if macs == 0:
            return _zero(layer)
        rf, cf = -(-sr // rows), -(-sc // cols)
        compute = gemms * scalesim_compute_cycles(sr, sc, t, rows, cols, df)

        # SRAM accesses by the array, elements per GEMM (reads of the operand matrices).
        out = sr * sc if df == "os" else sc * t
        if df == "os":  # ifmap rows once per column fold, filter columns once per row fold
            if_r, fl_r, of_w, of_r = sr * t * cf, sc * t * rf, out, 0
        elif df == "ws":  # filters loaded once; ifmap streamed per column fold; psums per row fold
            if_r, fl_r, of_w, of_r = sr * t * cf, sr * sc, out * rf, out * (rf - 1)
        else:  # is: ifmap loaded once; filters streamed per column fold; psums per row fold
            if_r, fl_r, of_w, of_r = sr * sc, sr * t * cf, out * rf, out * (rf - 1)

        # DRAM bytes per GEMM: unique operand bytes times refetches (see module docstring).
        if_u = layer.ifmap_elems * b / gemms
        fl_u = layer.filter_elems * b / gemms
        of_u = layer.ofmap_elems * b / gemms
        cap_if, cap_fl, cap_of = d.cap_if, d.cap_fl, d.cap_of
        spill = 2 * rf - 1
        # Whole-operand rule: an operand is fetched once if it fits half its buffer, else once
        # per fold of the other dimension. Deciding on the whole operand (not a fold's slice)
        # keeps DRAM traffic non-decreasing as a layer's work grows; the slice-based rule
        # was cheaper for some layers but made growing a layer cut its traffic (found by the
        # hypothesis property test).
        if df == "os":  # row operand = ifmap, column operand = filter; outputs leave once
            dr_if, dr_fl, dr_of = (
                if_u * _once_or(cf, if_u, cap_if),
                fl_u * _once_or(rf, fl_u, cap_fl),
                of_u,
            )
        elif df == "ws":  # stationary filters read once; psums spill per row fold
            dr_if, dr_fl, dr_of = (
                if_u * _once_or(cf, if_u, cap_if),
                fl_u,
                of_u * _once_or(spill, of_u, cap_of),
            )
        else:  # is: stationary ifmap read once; filters per column fold; psums spill
            dr_if, dr_fl, dr_of = (
                if_u,
                fl_u * _once_or(cf, fl_u, cap_fl),
                of_u * _once_or(spill, of_u, cap_of),
            )
        dram = gemms * (dr_if + dr_fl + dr_of)

        # Before the pipeline runs: one vector per edge (OS), or the stationary tile (WS, IS).
        r0, c0 = min(sr, rows), min(sc, cols)
        first = (r0 + c0) if df == "os" else (r0 * c0 + r0)
        latency = (
            max(compute, dram / d.dram_bytes_per_cycle)
            + min(first * b, dram) / d.dram_bytes_per_cycle
        )

        sram_if, sram_fl, sram_of = gemms * if_r * b, gemms * fl_r * b, gemms * (of_w + of_r) * b
        e_compute = macs * d.mac_pj
        e_array = macs * d.reg_pj_per_mac
        e_sram = (
            sram_if * d.e_if
            + sram_fl * d.e_fl
            + sram_of * d.e_of
            + gemms * (dr_if * d.e_if + dr_fl * d.e_fl + dr_of * d.e_of)
        )
        e_dram = dram * d.e_dram
        return LayerCost(
            compute_cycles=compute,
            latency_cycles=latency,
            energy_pj=e_compute + e_array + e_sram + e_dram,
            sram_bytes=sram_if + sram_fl + sram_of,
            dram_bytes=dram,
            macs=macs,
            utilization=macs / (latency * rows * cols),
            kind=layer.kind,
            breakdown={"compute": e_compute, "array": e_array, "sram": e_sram, "dram": e_dram},
        )

    def _vector_cost(self, layer: Layer, d: _Derived) -> LayerCost:
        k = self.constants
        rows, cols, b = d.rows, d.cols, d.elem_bytes
        if layer.kind == "softmax":
            ops, passes = layer.vector_ops * k.softmax_ops_per_elem, k.softmax_passes
        elif layer.kind == "norm":
            ops, passes = layer.vector_ops * k.norm_ops_per_elem, k.norm_passes
        else:  # pool (a window per output element) and eltwise (one op per operand element)
            ops, passes = layer.vector_ops, 1
        if ops == 0:
            return _zero(layer)
        reads, writes = layer.ifmap_elems * passes, layer.ofmap_elems
        compute = (
            max(math.ceil(ops / (rows * cols)), -(-reads // rows), -(-writes // cols))
            + rows
            + cols
            - 2
        )
        dr_in, dr_out = layer.ifmap_elems * b, layer.ofmap_elems * b
        dram = dr_in + dr_out
        latency = (
            max(compute, dram / d.dram_bytes_per_cycle)
            + min(rows * b, dr_in) / d.dram_bytes_per_cycle
        )
        e_compute = ops * d.mac_pj  # a vector op uses the PE's multiply-add
        e_array = ops * b * k.reg_pj_per_byte
        e_sram = (reads * b + dr_in) * d.e_if + (writes * b + dr_out) * d.e_of
        e_dram = dram * d.e_dram
        return LayerCost(
            compute_cycles=compute,
            latency_cycles=latency,
            energy_pj=e_compute + e_array + e_sram + e_dram,
            sram_bytes=(reads + writes) * b,
            dram_bytes=dram,
            macs=0,
            utilization=0.0,
            kind=layer.kind,
            breakdown={"compute": e_compute, "array": e_array, "sram": e_sram, "dram": e_dram},
        )

    def _data_cost(self, layer: Layer, d: _Derived) -> LayerCost:
        elems = layer.ofmap_elems
        if elems == 0:
            return _zero(layer)
        cycles = -(-elems // d.rows)  # one SRAM row port's width per cycle
        nbytes = elems * d.elem_bytes
        e_sram = nbytes * (d.e_of + d.e_if)  # read from the ofmap SRAM, write the ifmap SRAM
        return LayerCost(
            compute_cycles=0,
            latency_cycles=cycles,
            energy_pj=e_sram,
            sram_bytes=2 * nbytes,
            dram_bytes=0.0,
            macs=0,
            utilization=0.0,
            kind=layer.kind,
            breakdown={"compute": 0.0, "array": 0.0, "sram": e_sram, "dram": 0.0},
        )

    # -- feasibility --------------------------------------------------------------------------
    def _stationary_tile(self, layer: Layer, acc: Accelerator) -> float:
        d = self._derive(acc)
        _, sr, sc, _ = gemm_view(layer, d.dataflow)
        return min(sr, d.rows) * min(sc, d.cols) * d.elem_bytes

    def check(self, layers: Sequence[Layer], acc: Accelerator) -> list[str]:
        """Violations: a fold's resident tile does not fit half of its double-buffered SRAM.

        Each fold keeps an array-sized tile in one buffer while the next one loads: the filter
        tile (WS), the ifmap tile (IS) or the output accumulators (OS), up to ``R x C``
        elements. Operands that do not fit otherwise only cost refetches (priced in latency
        and energy), so they are not violations.
        """
        d = self._derive(acc)
        buffer, cap = {
            "ws": ("filter", d.cap_fl),
            "is": ("ifmap", d.cap_if),
            "os": ("ofmap", d.cap_of),
        }[d.dataflow]
        worst, worst_layer = 0.0, None
        tile = self._tile
        for layer in layers:
            if layer.kind in _MAC_KINDS:
                need = tile(layer, acc)
                if need > worst:
                    worst, worst_layer = need, layer
        if worst_layer is None or worst <= cap:
            return []
        name = worst_layer.name or worst_layer.kind
        return [
            f"layer {name!r} needs a {worst / 1024:g} KiB stationary {buffer} tile on the "
            f"{d.dataflow.upper()} array, but {buffer}_sram_kib="
            f"{acc[f'{buffer}_sram_kib']} leaves {cap / 1024:g} KiB per double-buffer half"
        ]


def _zero(layer: Layer) -> LayerCost:
    return LayerCost(
        compute_cycles=0,
        latency_cycles=0,
        energy_pj=0.0,
        sram_bytes=0.0,
        dram_bytes=0.0,
        macs=0,
        utilization=0.0,
        kind=layer.kind,
        breakdown={"compute": 0.0, "array": 0.0, "sram": 0.0, "dram": 0.0},
    )
