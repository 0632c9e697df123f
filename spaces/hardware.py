"""Hardware design spaces, one per accelerator template of :mod:`cosearch.hwmodels`:
``systolic``, ``row_stationary``, ``heterogeneous``, ``roofline``, and ``device`` (a fixed real
device with no knobs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from cosearch.errors import ConfigError
from cosearch.hwmodels._base import Accelerator
from cosearch.hwmodels.heterogeneous import MAX_SUBS, SUB_DATAFLOWS, sub_params
from cosearch.hwmodels.measured import DEFAULT_DEVICE, canonical_device
from cosearch.hwmodels.roofline import DEFAULTS as ROOFLINE_DEFAULTS
from cosearch.spaces._base import HardwareSpace, _kwargs, register_hardware_space
from cosearch.spaces._params import Param

__all__ = [
    "SystolicSpace",
    "RowStationarySpace",
    "HeterogeneousSpace",
    "DeviceSpace",
    "RooflineSpace",
]


@register_hardware_space("systolic")
class SystolicSpace(HardwareSpace):
    """A systolic array with three double-buffered SRAMs and a DRAM link.

    Default search ranges: ``pe_rows``/``pe_cols`` 4..64 in steps of 4 (a step of 4 keeps the
    space small while still allowing non-square and non-power-of-two arrays); SRAMs 16..512 KiB
    and DRAM 4..64 GB/s on a log scale (sizes matter by ratio); clock 200..1000 MHz in steps of
    50; ``precision_bits`` 8 or 16. With the systolic cost model about half of the random
    designs of these ranges meet ``area_mm2 <= 4`` (the quickstart constraint).

    Hard limits are what the template can mean: arrays up to 1024 x 1024, SRAMs up to 64 MiB
    each, 0.1..4096 GB/s, 1..5000 MHz, 4/8/16/32-bit operands.

    ``reference``: a 32 x 32 output-stationary array, 8-bit, 128 KiB per buffer, 16 GB/s
    (one LPDDR4x-class channel pair), 500 MHz: the array of SCALE-Sim v2's example configuration
    (``configs/scale.cfg``: 32 x 32, OS, 64 kB buffers) with twice the buffers; an edge-class
    design of ~2.5 mm2 in the model's 45 nm constants.
    """

    reference: ClassVar[dict[str, Any]] = {
        "pe_rows": 32,
        "pe_cols": 32,
        "dataflow": "os",
        "ifmap_sram_kib": 128,
        "filter_sram_kib": 128,
        "ofmap_sram_kib": 128,
        "dram_gbps": 16.0,
        "clock_mhz": 500,
        "precision_bits": 8,
    }

    @classmethod
    def default_params(cls) -> dict[str, Param]:
        sram = {"limits": (1, 65536), "log": True}
        return {
            "pe_rows": Param.integer(
                "pe_rows", 4, 64, step=4, limits=(1, 1024), help="PE array rows"
            ),
            "pe_cols": Param.integer(
                "pe_cols", 4, 64, step=4, limits=(1, 1024), help="PE array columns"
            ),
            "dataflow": Param.categorical(
                "dataflow", ("ws", "os", "is"), help="weight, output or input stationary"
            ),
            "ifmap_sram_kib": Param.integer(
                "ifmap_sram_kib",
                16,
                512,
                **sram,
                help="input feature map SRAM, KiB (double-buffered)",
            ),
            "filter_sram_kib": Param.integer(
                "filter_sram_kib", 16, 512, **sram, help="filter SRAM, KiB (double-buffered)"
            ),
            "ofmap_sram_kib": Param.integer(
                "ofmap_sram_kib",
                16,
                512,
                **sram,
                help="output feature map SRAM, KiB (double-buffered)",
            ),
            "dram_gbps": Param.real(
                "dram_gbps", 4.0, 64.0, limits=(0.1, 4096.0), log=True, help="DRAM bandwidth, GB/s"
            ),
            "clock_mhz": Param.integer(
                "clock_mhz", 200, 1000, step=50, limits=(1, 5000), help="clock, MHz"
            ),
            "precision_bits": Param.categorical(
                "precision_bits", (8, 16), allowed=(4, 8, 16, 32), help="operand width, bits"
            ),
        }


@register_hardware_space("row_stationary")
class RowStationarySpace(HardwareSpace):
    """An Eyeriss-like row-stationary PE array (:mod:`cosearch.hwmodels.row_stationary`).

    Default search ranges: ``pe_rows``/``pe_cols`` 8..32, global buffer 64..512 KiB and
    scratch pad 256..1024 B per PE on a log scale, NoC 2..64 GB/s and DRAM 1..64 GB/s on a log
    scale, clock 100..1000 MHz in steps of 50, 8- or 16-bit words. The ifmap pad (24/520 of
    ``rf_bytes``) must hold one kernel row: at 16 bits, 256 B fits 5-wide kernels, 304 B
    7-wide and 478 B 11-wide ones (half that at 8 bits); narrower pads are violations.

    ``rf_bytes`` is the whole scratch-pad storage of a PE; the model splits it in Eyeriss v1's
    proportions: filter 224, ifmap 12 and psum 24 words of 16 bits = 448 + 24 + 48 = 520 B
    (Chen et al., JSSC 2017). [E16]'s design-space baseline was 512 B per PE.

    ``reference``: Eyeriss v1 (Chen et al., JSSC 2017): 12 x 14 PEs, 108 KB global buffer,
    520 B of scratch pads per PE, 16-bit, 200 MHz core clock (the clock of its AlexNet
    measurements). DRAM: a 64-bit off-chip link at the 90 MHz maximum link clock, 0.72 GB/s
    (the 90 MHz is from the chip's specification as summarised from the JSSC paper; the
    64-bit width is as we recall the paper; a lower link clock may have been used for the
    published measurements). ``noc_gbps`` 6.4: four 64-bit buffer buses (ifmap, filter, psum
    in, psum out) per 200 MHz cycle, an assumption, not a published number.
    """

    reference: ClassVar[dict[str, Any]] = {
        "pe_rows": 12,
        "pe_cols": 14,
        "glb_kib": 108,
        "rf_bytes": 520,
        "noc_gbps": 6.4,
        "dram_gbps": 0.72,
        "clock_mhz": 200,
        "precision_bits": 16,
    }

    @classmethod
    def default_params(cls) -> dict[str, Param]:
        return {
            "pe_rows": Param.integer("pe_rows", 8, 32, limits=(1, 256), help="PE array rows"),
            "pe_cols": Param.integer("pe_cols", 8, 32, limits=(1, 256), help="PE array columns"),
            "glb_kib": Param.integer(
                "glb_kib", 64, 512, limits=(1, 65536), log=True, help="global buffer, KiB"
            ),
            "rf_bytes": Param.integer(
                "rf_bytes",
                256,
                1024,
                limits=(16, 65536),
                log=True,
                help="scratch pads per PE (filter + ifmap + psum), bytes",
            ),
            "noc_gbps": Param.real(
                "noc_gbps",
                2.0,
                64.0,
                limits=(0.01, 4096.0),
                log=True,
                help="global buffer <-> PE array bandwidth, GB/s",
            ),
            "dram_gbps": Param.real(
                "dram_gbps", 1.0, 64.0, limits=(0.01, 4096.0), log=True, help="DRAM bandwidth, GB/s"
            ),
            "clock_mhz": Param.integer(
                "clock_mhz", 100, 1000, step=50, limits=(1, 5000), help="clock, MHz"
            ),
            "precision_bits": Param.categorical(
                "precision_bits", (8, 16), allowed=(4, 8, 16, 32), help="word width, bits"
            ),
        }


@register_hardware_space("heterogeneous")
class HeterogeneousSpace(HardwareSpace):
    """Several sub-accelerators of different dataflows sharing a PE budget, a DRAM link and a
    clock (NASAIC, Yang et al., DAC 2020; :mod:`cosearch.hwmodels.heterogeneous`).

    Parameters: ``num_subs`` (2..4 searched, 1..4 allowed), ``total_pes`` (256..4096, log),
    ``sub{i}_dataflow`` in ws/os/is/rs and ``sub{i}_pe_share`` (0.1..1, normalized over the
    active subs) for ``i`` in 0..3, ``sram_kib`` per sub (32..512, log), ``dram_gbps``,
    ``clock_mhz``, ``precision_bits``. Subs ``i >= num_subs`` are inactive: :meth:`canonical`
    (applied by :meth:`build`) resets their parameters to sub 0's reference values, so designs
    that differ only there are the same accelerator (same digest).

    ``reference``: two halves of a 4096-PE budget, an NVDLA-like weight-stationary sub and a
    ShiDianNao-like output-stationary sub (the two dataflow styles NASAIC combines; 4096 PEs
    and 64 GB/s are the upper bounds of its design space as we recall the paper), 256 KiB SRAM
    each, 8-bit, 500 MHz.
    """

    reference: ClassVar[dict[str, Any]] = {
        "num_subs": 2,
        "total_pes": 4096,
        "sub0_dataflow": "ws",
        "sub0_pe_share": 0.5,
        "sub1_dataflow": "os",
        "sub1_pe_share": 0.5,
        "sub2_dataflow": "ws",
        "sub2_pe_share": 0.5,
        "sub3_dataflow": "ws",
        "sub3_pe_share": 0.5,
        "sram_kib": 256,
        "dram_gbps": 64.0,
        "clock_mhz": 500,
        "precision_bits": 8,
    }

    @classmethod
    def default_params(cls) -> dict[str, Param]:
        out: dict[str, Param] = {
            "num_subs": Param.integer(
                "num_subs", 2, MAX_SUBS, limits=(1, MAX_SUBS), help="active sub-accelerators"
            ),
            "total_pes": Param.integer(
                "total_pes", 256, 4096, limits=(4, 65536), log=True, help="PE budget of the chip"
            ),
        }
        for i in range(MAX_SUBS):
            kd, ks = sub_params(i)
            out[kd] = Param.categorical(
                kd, SUB_DATAFLOWS, help=f"dataflow of sub-accelerator {i} (rs: row stationary)"
            )
            out[ks] = Param.real(
                ks,
                0.1,
                1.0,
                limits=(0.01, 1.0),
                help=f"PE share of sub-accelerator {i} (normalized over the active subs)",
            )
        out.update(
            {
                "sram_kib": Param.integer(
                    "sram_kib", 32, 512, limits=(1, 65536), log=True, help="SRAM per sub, KiB"
                ),
                "dram_gbps": Param.real(
                    "dram_gbps",
                    4.0,
                    64.0,
                    limits=(0.1, 4096.0),
                    log=True,
                    help="shared DRAM bandwidth, GB/s",
                ),
                "clock_mhz": Param.integer(
                    "clock_mhz", 200, 1000, step=50, limits=(1, 5000), help="clock, MHz"
                ),
                "precision_bits": Param.categorical(
                    "precision_bits", (8, 16), allowed=(4, 8, 16, 32), help="word width, bits"
                ),
            }
        )
        return out

    def canonical(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` (``{name: value}``, no prefix) with the inactive subs' parameters reset
        to sub 0's reference values."""
        out = dict(values)
        n = int(out.get("num_subs", MAX_SUBS))
        for i in range(n, MAX_SUBS):
            kd, ks = sub_params(i)
            out[kd] = self.reference["sub0_dataflow"]
            out[ks] = self.reference["sub0_pe_share"]
        return out

    def build(self, params: Mapping[str, Any]) -> Accelerator:
        values = self.validate(params)
        return Accelerator(self.name, self.canonical(values))


@register_hardware_space("device")
class DeviceSpace(HardwareSpace):
    """A fixed real device: no knobs. ``get_hardware_space("device", device="cpu")``.

    ``device`` (alias ``name`` when the class is called directly; the factory's own first
    argument is called ``name``, so ``get_hardware_space("device", name=...)`` cannot work):
    ``cpu`` (this machine, timed by the ``measured`` cost model through onnxruntime),
    ``cuda`` (a CUDA GPU, where onnxruntime has the CUDA provider), or a ``lat_<device>``
    column of the NAS-Bench-201 latency table (``TABLE_DEVICES``; the ``lat_`` prefix is
    optional), whose latencies come from the table.

    :meth:`build` and :meth:`default` return ``Accelerator("device", {"name": name})``, except
    for the default device ``cpu``, whose name is left out: ``Accelerator("device", {})``.
    That is what ``parse_accelerator("device")`` yields (it checks parameters against the
    empty :meth:`default_params`, so it cannot carry a name), and the two must agree; the
    ``measured`` model reads a missing name as ``cpu``.
    """

    reference: ClassVar[dict[str, Any]] = {}

    def __init__(
        self, device: str | None = None, *, name: str | None = None, **ranges: Any
    ) -> None:
        if device is not None and name is not None and device != name:
            raise ConfigError(
                f"hw:device takes one device; got device={device!r} and name={name!r}",
                key="device",
            )
        self.device_name = canonical_device(device or name or DEFAULT_DEVICE)
        super().__init__(**ranges)

    @classmethod
    def default_params(cls) -> dict[str, Param]:
        return {}

    def build(self, params: Mapping[str, Any]) -> Accelerator:
        self.validate(params)
        return self.default()

    def default(self) -> Accelerator:
        named = {} if self.device_name == DEFAULT_DEVICE else {"name": self.device_name}
        return Accelerator(self.name, named)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "device": self.device_name}

    def __repr__(self) -> str:
        ranges = _kwargs(self.ranges)
        return f"{type(self).__name__}({self.device_name!r}{', ' if ranges else ''}{ranges})"


@register_hardware_space("roofline")
class RooflineSpace(HardwareSpace):
    """A roofline machine (:mod:`cosearch.hwmodels.roofline`): peak MAC rate, memory bandwidth
    and vector rate are searched; ``clock_mhz``, ``pj_per_mac``, ``pj_per_byte`` and
    ``area_mm2`` are fixed at the model's defaults unless a campaign opens their ranges.

    Default search ranges (log scale): 10..10000 GMAC/s, 1..1000 GB/s, 1..10000 Gop/s.
    ``reference``: an edge NPU of 512 GMAC/s (about 1 TOPS) with one 64-bit LPDDR4X-4266
    channel (34.1 GB/s) and 64 Gop/s of vector work.
    """

    reference: ClassVar[dict[str, Any]] = {
        "peak_gmacs": 512.0,
        "mem_gbps": 34.1,
        "vector_gops": 64.0,
        "clock_mhz": int(ROOFLINE_DEFAULTS["clock_mhz"]),
        "pj_per_mac": ROOFLINE_DEFAULTS["pj_per_mac"],
        "pj_per_byte": ROOFLINE_DEFAULTS["pj_per_byte"],
        "area_mm2": ROOFLINE_DEFAULTS["area_mm2"],
    }

    @classmethod
    def default_params(cls) -> dict[str, Param]:
        ref = cls.reference
        return {
            "peak_gmacs": Param.real(
                "peak_gmacs", 10.0, 10000.0, limits=(1e-3, 1e7), log=True, help="peak GMAC/s"
            ),
            "mem_gbps": Param.real(
                "mem_gbps", 1.0, 1000.0, limits=(1e-3, 1e6), log=True, help="memory GB/s"
            ),
            "vector_gops": Param.real(
                "vector_gops", 1.0, 10000.0, limits=(1e-3, 1e7), log=True, help="vector Gop/s"
            ),
            "clock_mhz": Param.integer(
                "clock_mhz",
                ref["clock_mhz"],
                ref["clock_mhz"],
                limits=(1, 100000),
                help="clock, MHz (converts seconds to cycles only)",
            ),
            "pj_per_mac": Param.real(
                "pj_per_mac",
                ref["pj_per_mac"],
                ref["pj_per_mac"],
                limits=(0.0, 1e6),
                help="energy per MAC or vector op, pJ",
            ),
            "pj_per_byte": Param.real(
                "pj_per_byte",
                ref["pj_per_byte"],
                ref["pj_per_byte"],
                limits=(0.0, 1e6),
                help="energy per byte of memory traffic, pJ",
            ),
            "area_mm2": Param.real(
                "area_mm2", ref["area_mm2"], ref["area_mm2"], limits=(0.0, 1e6), help="area, mm2"
            ),
        }
