"""Hardware design spaces. ``systolic``: the template of :mod:`cosearch.hwmodels.systolic`."""

from __future__ import annotations

from typing import Any, ClassVar

from cosearch.spaces._base import HardwareSpace, register_hardware_space
from cosearch.spaces._params import Param

__all__ = ["SystolicSpace"]


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
