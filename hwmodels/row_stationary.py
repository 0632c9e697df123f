"""Analytical cost model of an Eyeriss-like row-stationary accelerator (``row_stationary``).

References:
  [E16] Y.-H. Chen, J. Emer, V. Sze, "Eyeriss: A Spatial Architecture for Energy-Efficient
        Dataflow for Convolutional Neural Networks", ISCA 2016: the RS dataflow, the energy
        model (accesses per level times a normalized cost: RF 1x, inter-PE array 2x, global
        buffer 6x, DRAM 200x of a 16-bit MAC, 65 nm), and its baseline storage of 512 B RF per
        PE plus a global buffer of #PE x 512 B.
  [E17] Y.-H. Chen, T. Krishna, J. Emer, V. Sze, "Eyeriss: An Energy-Efficient Reconfigurable
        Accelerator for Deep Convolutional Neural Networks", JSSC 52(1), 2017: the chip (12 x 14
        PEs, 108 KB global buffer, 16-bit, filter/ifmap/psum scratch pads of 224/12/24 words
        per PE, processing passes of p filters x q channels per PE and r x t replicated sets).

Accelerator parameters: ``pe_rows`` x ``pe_cols`` PEs, ``glb_kib`` global buffer, ``rf_bytes``
scratch-pad bytes per PE (split into filter, ifmap and psum pads in Eyeriss v1's proportions
448 : 24 : 48 B, see :class:`RowStationaryConstants`), ``noc_gbps`` bandwidth between the
global buffer and the array, ``dram_gbps``, ``clock_mhz``, ``precision_bits`` (every word,
partial sums included).

Mapping of a MAC layer (see :meth:`RowStationaryCostModel.mapping`). A logical PE set is
``R`` filter rows x ``P`` output rows; PE ``(r, e)`` convolves filter row ``r`` with ifmap row
``e * stride + r`` into psum row ``e``, and psums accumulate up each column. Filter rows fold
when ``R > pe_rows`` (``fr`` folds of ``hr`` rows), output rows when ``P > pe_cols`` (``fc``
strips of ``wc``). Inside a PE, ``q`` channels (at most as many S-wide ifmap windows as fit
the ifmap pad) times ``p`` filters (at most as many as fit the filter and psum pads) share one
processing pass; the channels and filters are cut into blocks of equal size (64 channels in a
pad of 33 windows are two passes of 32, not 33 + 31, which left the last pass a third idle:
v1 did that, and more RF made some layers up to 1.7x slower).
Sets are replicated over the array: stacked vertically they take further channel blocks (their
psums accumulate down the same columns), side by side further filter blocks (they share one
ifmap multicast). Time is one MAC per PE per cycle: ``ceil(tasks / sets) * p * q * S * Q``.
A GEMM is a 1 x 1 convolution over ``P = M`` rows; a batched MatMul is ``n`` of them; a
grouped or depthwise convolution is ``groups`` independent ones.

Loop order. Filters stay in the RF while the batch and the column strips stream past (order
"batch") when the global buffer holds the partial sums of a whole filter block for the batch;
else they are reloaded per image ("image") or per strip ("strip"). The first order whose psum
working set fits is taken; if none fits, narrower strips and fewer side-by-side sets are
tried, and the fastest mapping is kept (psums spill to DRAM if it still does not fit).
Filter blocks that must be reloaded, and the ifmap when several filter blocks reread it, stay
in the remaining buffer space or are refetched from DRAM.

Counted accesses (words) per level for the energy of [E16]: every MAC reads a filter weight
and an ifmap value and reads and writes a psum in the RF (4 per MAC), and every word the NoC
delivers is written into an RF; the array level counts ifmap and filter deliveries to each
PE, psum hops between neighbours and psums returning from the buffer; the buffer counts ifmap
and filter reads (one per multicast), psum writes and reads, and DRAM fills; DRAM counts every
layer's inputs and output (layers are costed independently, so costs add) plus refetches and
spills. Latency is ``max(compute, buffer traffic / noc_gbps, DRAM traffic / dram_gbps)`` plus
the first fetch.

Non-MAC layers (pool, eltwise, softmax, norm) run on the PE array as vector work (the
template has no separate vector unit, as in the systolic model); ``data`` layers are a copy
inside the global buffer. Static power is not modelled.
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
from cosearch.hwmodels import _energy as tech
from cosearch.hwmodels._base import Accelerator, CostModel, Layer, LayerCost, register_cost_model

__all__ = ["RowStationaryConstants", "RowStationaryCostModel", "RSMapping", "PARAMS"]

_MAC_KINDS = frozenset({"conv", "depthwise", "gemm", "matmul"})
#: the accelerator parameters of the template
PARAMS = (
    "pe_rows",
    "pe_cols",
    "glb_kib",
    "rf_bytes",
    "noc_gbps",
    "dram_gbps",
    "clock_mhz",
    "precision_bits",
)
_LEVELS = ("compute", "rf", "array", "glb", "dram")


@dataclass(frozen=True)
class RowStationaryConstants:
    """Constants of the row-stationary model. Override any field through
    ``get_cost_model("row_stationary", field=value)``.

    Energy: [E16]'s normalized costs per 16-bit word are scaled to picojoules by a 16-bit MAC
    of Horowitz's 45 nm numbers (:func:`cosearch.hwmodels._energy.mac_pj`: 0.89 pJ), so an RF
    access is 0.89 pJ, a buffer access 5.3 pJ and a DRAM access 178 pJ per 16-bit word (89 pJ
    per byte: about half of Horowitz's 162 pJ per byte; raise ``dram_norm`` to 365 to match
    it). Word energies scale with the word's bytes; RF energy with ``(rf_bytes / 512) **
    0.5`` and the buffer's with Horowitz's SRAM curve relative to 128 KiB ([E16]'s 256 PEs x
    512 B baseline), so that bigger memories cost more per access.
    """

    # -- energy --------------------------------------------------------------------------
    #: [E16] normalized access energies relative to one 16-bit MAC
    rf_norm: float = 1.0
    array_norm: float = 2.0
    glb_norm: float = 6.0
    dram_norm: float = 200.0
    #: storage sizes at which the normalized costs hold ([E16]'s baseline)
    rf_ref_bytes: float = 512.0
    glb_ref_kib: float = 128.0
    #: RF energy ~ size ** exponent (Horowitz's SRAM curve has slope 0.5 from 8 to 32 KB)
    rf_size_exponent: float = 0.5
    #: [E17] scratch pads per PE: 224 filter, 12 ifmap, 24 psum 16-bit words = 448 : 24 : 48 B
    filter_pad_share: float = 448 / 520
    ifmap_pad_share: float = 24 / 520
    psum_pad_share: float = 48 / 520
    #: ALU operations per element of vector work (as the systolic model; assumption)
    softmax_ops_per_elem: float = 3.0
    norm_ops_per_elem: float = 2.0
    softmax_passes: int = 2
    norm_passes: int = 2
    # -- area ----------------------------------------------------------------------------
    #: pipeline register bits per PE, in words (operand latches and a double-width psum)
    pe_reg_words: float = 4.0
    #: standard-cell placement density
    logic_utilization: float = 0.7
    #: scratch-pad area per bit: a small register-file macro, between a 6T SRAM cell over its
    #: array efficiency (0.49 um2) and a flip-flop (4.5 um2); assumption
    rf_um2_per_bit: float = 1.0
    #: per-PE control FSM, NoC multicast controller and configuration registers (assumption)
    pe_overhead_um2: float = 1500.0
    #: top-level control, DMA and NoC buses, fixed (assumption)
    control_mm2: float = 0.2


class _Derived(NamedTuple):
    rows: int
    cols: int
    elem_bytes: float
    fb: int  # filter pad words
    ib: int  # ifmap pad words
    pb: int  # psum pad words
    glb_words: float
    noc_bpc: float  # bytes per cycle between the buffer and the array
    dram_bpc: float
    e_mac: float  # pJ per MAC / per word access at each level
    e_rf: float
    e_array: float
    e_glb: float
    e_dram: float
    area_mm2: float
    clock_mhz: float


class RSMapping(NamedTuple):
    """How a MAC layer maps onto the array, and the resulting access counts (words)."""

    units: int  # independent convolutions (groups, or MatMul batches)
    p: int  # filters per PE pass
    q: int  # channels per PE pass
    fr: int  # filter-row folds
    hr: int  # PE rows per logical set
    fc: int  # output-row strips
    wc: int  # PE columns per logical set
    sets: int  # logical sets that fit the array at once
    side: int  # sets side by side that take further filter blocks (sharing the ifmap)
    active_pes: int  # PEs of all sets together
    order: str  # "batch", "image" or "strip": what the filters stay resident across
    spill: bool  # partial sums spill to DRAM
    window_fits: bool  # an S-wide ifmap window fits the ifmap pad
    compute_cycles: int
    rf: float
    array: float
    glb: float
    glb_array: float  # the part of glb that crosses the NoC (bounded by noc_gbps)
    dram: float


def _ceil(a: float, b: float) -> int:
    return -(-int(a) // int(b))


@register_cost_model("row_stationary")
class RowStationaryCostModel(CostModel):
    """Eyeriss-like row-stationary PE array: RS mapping, Eyeriss energy levels, RF+GLB area.

    ``RowStationaryCostModel(constants=None, **overrides)``: ``overrides`` replace fields of
    :class:`RowStationaryConstants`; non-default constants change :attr:`version`.

    Raises:
        ConfigError: an override names no constant, or an accelerator lacks a parameter or
            holds an impossible value.
    """

    version = "v2"  # v2: equal channel and filter blocks
    templates = ("row_stationary",)

    def __init__(self, constants: RowStationaryConstants | None = None, **overrides: Any) -> None:
        super().__init__()
        base = constants if constants is not None else RowStationaryConstants()
        valid = [f.name for f in fields(RowStationaryConstants)]
        unknown = sorted(set(overrides) - set(valid))
        if unknown:
            raise ConfigError(
                f"the row_stationary cost model has no constant {unknown[0]!r}; its "
                f"constants are: {', '.join(valid)}",
                key=unknown[0],
            )
        self.constants = replace(base, **overrides) if overrides else base
        if self.constants != RowStationaryConstants():
            blob = json.dumps(asdict(self.constants), sort_keys=True).encode()
            self.version = (
                f"{RowStationaryCostModel.version}+{hashlib.sha256(blob).hexdigest()[:10]}"
            )
        self._derive = lru_cache(maxsize=4096)(self._derive_uncached)
        self._mapping = lru_cache(maxsize=65536)(self._mapping_uncached)

    # -- per-accelerator ----------------------------------------------------------------------
    def _derive_uncached(self, acc: Accelerator) -> _Derived:
        p = acc.params
        missing = [k for k in PARAMS if k not in p]
        if missing:
            raise ConfigError(
                f"a row_stationary accelerator needs parameter {missing[0]!r}; got {acc.spec()}",
                key=missing[0],
            )
        for k in PARAMS:
            value = p[k]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(
                    f"The {k!r} parameter of hw:row_stationary must be a positive number. "
                    f"Got {value!r} instead.",
                    key=k,
                )
        tc = self.constants
        rows, cols, bits = int(p["pe_rows"]), int(p["pe_cols"]), float(p["precision_bits"])
        if rows < 1 or cols < 1:
            raise ConfigError(
                f"The PE array of hw:row_stationary needs at least one row and column. "
                f"Got {p['pe_rows']} x {p['pe_cols']} instead.",
                key="pe_rows" if rows < 1 else "pe_cols",
            )
        b = bits / 8
        rf_words = p["rf_bytes"] / b
        clock = float(p["clock_mhz"])
        # Normalized costs are per 16-bit word relative to a 16-bit MAC [E16]; per byte here.
        unit = tech.mac_pj(16) / 2
        e_glb_scale = tech.sram_pj_per_byte(p["glb_kib"]) / tech.sram_pj_per_byte(tc.glb_ref_kib)
        pe_um2 = (
            (tech.mac_um2(bits) + tc.pe_reg_words * bits * tech.DFF_UM2) / tc.logic_utilization
            + p["rf_bytes"] * 8 * tc.rf_um2_per_bit
            + tc.pe_overhead_um2
        )
        area = (
            rows * cols * pe_um2 * 1e-6
            + p["glb_kib"] * tech.sram_um2_per_kib() * 1e-6
            + tc.control_mm2
        )
        return _Derived(
            rows=rows,
            cols=cols,
            elem_bytes=b,
            fb=int(rf_words * tc.filter_pad_share),
            ib=int(rf_words * tc.ifmap_pad_share),
            pb=max(1, int(rf_words * tc.psum_pad_share)),
            glb_words=p["glb_kib"] * 1024 / b,
            noc_bpc=p["noc_gbps"] * 1e9 / (clock * 1e6),
            dram_bpc=p["dram_gbps"] * 1e9 / (clock * 1e6),
            e_mac=tech.mac_pj(bits),
            e_rf=tc.rf_norm * unit * b * (p["rf_bytes"] / tc.rf_ref_bytes) ** tc.rf_size_exponent,
            e_array=tc.array_norm * unit * b,
            e_glb=tc.glb_norm * unit * b * e_glb_scale,
            e_dram=tc.dram_norm * unit * b,
            area_mm2=area,
            clock_mhz=clock,
        )

    def area_mm2(self, acc: Accelerator) -> float:
        """PEs (MAC, pipeline registers, scratch pads, control) + global buffer + fixed
        control, in mm2 (45 nm constants)."""
        return self._derive(acc).area_mm2

    def clock_mhz(self, acc: Accelerator) -> float:
        return self._derive(acc).clock_mhz

    # -- mapping ------------------------------------------------------------------------------
    def mapping(self, layer: Layer, acc: Accelerator) -> RSMapping:
        """The RS mapping of a MAC layer and its access counts.

        Raises:
            ValueError: ``layer`` carries no MACs.
        """
        if layer.kind not in _MAC_KINDS or layer.macs == 0:
            raise ValueError(f"layer {layer.name or layer.kind!r} has no MACs to map")
        return self._mapping(layer, acc)

    def _mapping_uncached(self, layer: Layer, acc: Accelerator) -> RSMapping:
        # The widest strip (fewest folds) with every side-by-side set fills the columns, but
        # its partial sums may not fit the buffer, which then spills them to DRAM and leaves
        # no room to keep filters and the ifmap. A mapper would use narrower strips or fewer
        # side-by-side filter blocks: when the widest spills, every such mapping is tried and
        # the fastest (then the least energy) taken, so a bigger array can map a spilling
        # layer the way a smaller one does instead of falling off a cliff (ResNet-50's stem
        # on 12 x 23 PEs and 108 KiB took 2.5x the cycles of 12 x 22).
        d = self._derive(acc)
        pp = layer.p
        widest = _ceil(pp, _ceil(pp, d.cols))
        m = self._map(layer, d, widest, d.cols)
        if not m.spill:
            # Without a spill it stays, even when filters or the ifmap are fetched more than
            # once: choosing there too changed most ofa_mbv3 designs' costs by a few percent
            # (and AlexNet's mappings away from the chip's), which needs its own validation.
            return m
        widths = sorted({_ceil(pp, f) for f in range(1, pp + 1) if _ceil(pp, f) <= widest})
        best = (*self._score(layer, d, m), m)
        for wc in widths:
            for side in range(1, d.cols // wc + 1):
                m = self._map(layer, d, wc, side)
                if m.side < side:
                    break  # as many side-by-side filter blocks as the layer has
                latency, energy = self._score(layer, d, m)
                if (latency, energy) < best[:2]:
                    best = (latency, energy, m)
        return best[2]

    def _score(self, layer: Layer, d: _Derived, m: RSMapping) -> tuple[float, float]:
        """(latency cycles, energy pJ) of ``layer`` mapped as ``m``."""
        b = d.elem_bytes
        dram_bytes = m.dram * b
        # First fetch before the array can start: one filter block row set and q ifmap rows.
        first = (min(layer.k, m.p) * m.q * layer.r * layer.s + m.q * layer.r * layer.w) * b
        latency = (
            max(m.compute_cycles, m.glb_array * b / d.noc_bpc, dram_bytes / d.dram_bpc)
            + min(first, dram_bytes) / d.dram_bpc
        )
        energy = (
            layer.macs * d.e_mac
            + m.rf * d.e_rf
            + m.array * d.e_array
            + m.glb * d.e_glb
            + m.dram * d.e_dram
        )
        return latency, energy

    def _map(self, layer: Layer, d: _Derived, wc: int, side: int) -> RSMapping:
        """The mapping with strips of ``wc`` output rows and at most ``side`` sets side by
        side (filter blocks sharing one ifmap multicast)."""
        if layer.kind == "matmul":
            units, nb, kk, cc = layer.n, 1, layer.k, layer.c
        else:
            g = max(layer.groups, 1)
            units, nb, kk, cc = g, layer.n, layer.k // g, layer.c // g
        pp, qq, rr_, ss = layer.p, layer.q, layer.r, layer.s
        u = max(layer.stride, 1)

        fr = _ceil(rr_, d.rows)
        hr = _ceil(rr_, fr)
        fc = _ceil(pp, wc)
        # PE pass: q channels of S-wide ifmap windows, p filters of q x S weights each. The
        # filter pad is sized for the full q the ifmap pad allows (not min(C, that)), so p
        # does not shrink when a layer gains channels: work growth never speeds a layer up.
        window_fits = ss <= d.ib
        qcap = max(1, d.ib // ss)
        pcap = max(1, min(kk, d.pb, d.fb // (qcap * ss)))
        n_kb, n_cb = _ceil(kk, pcap), _ceil(cc, qcap)  # then blocks of equal size
        p, q = _ceil(kk, n_kb), _ceil(cc, n_cb)
        set_r, set_c = d.rows // hr, d.cols // wc
        sets = set_r * set_c
        rr = min(set_r, n_cb)  # stacked sets: more channel blocks down the same columns
        rc = min(set_c, n_kb, side)  # side-by-side sets: filter blocks sharing the ifmap
        tasks = units * nb * n_kb * n_cb * fr * fc
        compute = _ceil(tasks, sets) * p * q * ss * qq + hr * rr + min(pp, d.cols) - 1

        n_ks = _ceil(n_kb, rc)  # filter super-blocks: each streams the whole ifmap once
        n_pass = _ceil(n_cb, rr) * fr  # psum contributions per output after the columns
        kblk = min(kk, p * rc)

        # Loop order: the psum working set of one filter super-block must stay in the buffer.
        cap = d.glb_words
        orders = (
            ("batch", 1, nb * kblk * pp * qq),
            ("image", nb, kblk * pp * qq),
            ("strip", nb * fc, kblk * wc * qq),
        )
        order, reloads, working = next((o for o in orders if o[2] <= cap), orders[-1])
        spill = working > cap
        room = max(cap - working, 0.0)
        filter_dram_times = 1
        if reloads > 1:
            if kblk * cc * rr_ * ss <= room:
                room -= kblk * cc * rr_ * ss
            else:
                filter_dram_times = reloads
        ifmap_dram_times = 1
        if n_ks > 1 and nb * cc * layer.h * layer.w > room:
            ifmap_dram_times = n_ks

        ifm, flt, ofm, macs = layer.ifmap_elems, layer.filter_elems, layer.ofmap_elems, layer.macs
        # An ifmap row delivered to a PE: the window it slides over, or (no room for the
        # window) S values per output; a filter row stays unless even one row overflows.
        width = (qq - 1) * min(u, ss) + ss
        delivered = width if window_fits else qq * ss
        filter_redeliver = 1 if ss <= d.fb else qq
        rows_per_fold = (wc - 1) * min(u, hr) + hr

        dram_if = ifm * ifmap_dram_times
        dram_f = flt * filter_dram_times
        dram_o = ofm * (2 * n_pass - 1 if spill else 1)

        glb_if = n_ks * units * nb * cc * fr * fc * rows_per_fold * delivered
        glb_f = flt * reloads * filter_redeliver
        glb_ps = ofm * n_pass + ofm * (n_pass - 1)  # writes, and reads back to accumulate
        glb_fill = dram_if + dram_f + (ofm * (n_pass - 1) if spill else 0)
        glb = glb_if + glb_f + glb_ps + ofm + glb_fill  # + ofm: the output read out to DRAM

        arr_if = n_kb * units * nb * cc * rr_ * pp * delivered
        arr_f = flt * wc * reloads * filter_redeliver
        arr_ps = ofm * n_pass * (hr * rr - 1) + ofm * (n_pass - 1)
        array = arr_if + arr_f + arr_ps
        return RSMapping(
            units=units,
            p=p,
            q=q,
            fr=fr,
            hr=hr,
            fc=fc,
            wc=wc,
            sets=sets,
            side=rc,
            active_pes=min(sets, tasks) * hr * wc,
            order=order,
            spill=spill,
            window_fits=window_fits,
            compute_cycles=compute,
            rf=4.0 * macs + array,
            array=float(array),
            glb=float(glb),
            glb_array=float(glb_if + glb_f + glb_ps),
            dram=float(dram_if + dram_f + dram_o),
        )

    # -- per-layer ----------------------------------------------------------------------------
    def layer_cost(self, layer: Layer, acc: Accelerator) -> LayerCost:
        d = self._derive(acc)
        if layer.kind in _MAC_KINDS:
            if layer.macs == 0:
                return _zero(layer)
            return self._mac_cost(layer, acc, d)
        if layer.kind == "data":
            return self._data_cost(layer, d)
        return self._vector_cost(layer, d)

    def _mac_cost(self, layer: Layer, acc: Accelerator, d: _Derived) -> LayerCost:
        m = self._mapping(layer, acc)
        b = d.elem_bytes
        dram_bytes = m.dram * b
        latency, _ = self._score(layer, d, m)
        energy = {
            "compute": layer.macs * d.e_mac,
            "rf": m.rf * d.e_rf,
            "array": m.array * d.e_array,
            "glb": m.glb * d.e_glb,
            "dram": m.dram * d.e_dram,
        }
        return LayerCost(
            compute_cycles=m.compute_cycles,
            latency_cycles=latency,
            energy_pj=sum(energy.values()),
            sram_bytes=m.glb * b,
            dram_bytes=dram_bytes,
            macs=layer.macs,
            utilization=layer.macs / (latency * d.rows * d.cols),
            kind=layer.kind,
            breakdown=energy,
        )

    def _vector_cost(self, layer: Layer, d: _Derived) -> LayerCost:
        k = self.constants
        if layer.kind == "softmax":
            ops, passes = layer.vector_ops * k.softmax_ops_per_elem, k.softmax_passes
        elif layer.kind == "norm":
            ops, passes = layer.vector_ops * k.norm_ops_per_elem, k.norm_passes
        else:  # pool (a window per output element) and eltwise (one op per operand element)
            ops, passes = layer.vector_ops, 1
        if ops == 0:
            return _zero(layer)
        b = d.elem_bytes
        reads, writes = layer.ifmap_elems * passes, layer.ofmap_elems
        dram_in, dram_out = layer.ifmap_elems, layer.ofmap_elems
        compute = math.ceil(ops / (d.rows * d.cols)) + d.rows + d.cols - 2
        dram_bytes = (dram_in + dram_out) * b
        latency = (
            max(compute, (reads + writes) * b / d.noc_bpc, dram_bytes / d.dram_bpc)
            + min(d.rows * b, dram_in * b) / d.dram_bpc
        )
        glb = reads + writes + dram_in + dram_out  # array traffic plus the DRAM fill/drain
        energy = {
            "compute": ops * d.e_mac,  # a vector op uses the PE's multiply-add
            "rf": 2 * ops * d.e_rf,  # operand in, result out of the PE's pad
            "array": (reads + writes) * d.e_array,
            "glb": glb * d.e_glb,
            "dram": (dram_in + dram_out) * d.e_dram,
        }
        return LayerCost(
            compute_cycles=compute,
            latency_cycles=latency,
            energy_pj=sum(energy.values()),
            sram_bytes=glb * b,
            dram_bytes=dram_bytes,
            macs=0,
            utilization=0.0,
            kind=layer.kind,
            breakdown=energy,
        )

    def _data_cost(self, layer: Layer, d: _Derived) -> LayerCost:
        elems = layer.ofmap_elems
        if elems == 0:
            return _zero(layer)
        nbytes = elems * d.elem_bytes
        e_glb = 2 * elems * d.e_glb  # read and write back inside the global buffer
        return LayerCost(
            compute_cycles=0,
            latency_cycles=math.ceil(nbytes / d.noc_bpc),
            energy_pj=e_glb,
            sram_bytes=2 * nbytes,
            dram_bytes=0.0,
            macs=0,
            utilization=0.0,
            kind=layer.kind,
            breakdown={**dict.fromkeys(_LEVELS, 0.0), "glb": e_glb},
        )

    # -- feasibility --------------------------------------------------------------------------
    def check(self, layers: Sequence[Layer], acc: Accelerator) -> list[str]:
        """Violations: a kernel row wider than the ifmap scratch pad.

        Row stationary needs an S-wide ifmap window in every PE; without it each ifmap value
        is re-sent once per tap (priced in energy and buffer traffic, but the design is not
        the dataflow any more). Too small a global buffer only costs refetches and spills.
        """
        d = self._derive(acc)
        worst: Layer | None = None
        for layer in layers:
            if layer.kind in _MAC_KINDS and layer.s > d.ib and layer.macs:
                if worst is None or layer.s > worst.s:
                    worst = layer
        if worst is None:
            return []
        return [
            f"layer {worst.name or worst.kind!r} needs a {worst.s}-word ifmap window per PE, "
            f"but rf_bytes={acc['rf_bytes']} at {acc['precision_bits']} bits leaves "
            f"{d.ib} words for the ifmap scratch pad"
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
        breakdown=dict.fromkeys(_LEVELS, 0.0),
    )
