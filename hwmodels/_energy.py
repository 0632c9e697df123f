"""Technology numbers shared by the analytical cost models (45 nm, 0.9 V).

Sources:
  [H] M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014:
      energies and areas of integer adders and multipliers, SRAM energy per 64-bit access at
      8 KB, 32 KB and 1 MB, DRAM 1.3-2.6 nJ per 64-bit access.
  [I] Intel 45 nm 6T SRAM cell, 0.346 um2 (K. Mistry et al., IEDM 2007).
  [N] NanGate FreePDK45 Open Cell Library: DFF_X1 flip-flop, 4.522 um2.

These are the numbers :class:`cosearch.hwmodels.systolic.SystolicConstants` documents; they are
repeated here (not imported) so the row-stationary and roofline models do not change when the
systolic model's constants are calibrated. Widths between the published 8- and 32-bit points
follow a power law through them (multiplier energy ~ bits^2, adder ~ bits^0.9).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = [
    "MULT8_PJ",
    "MULT32_PJ",
    "ADD8_PJ",
    "ADD32_PJ",
    "MULT8_UM2",
    "MULT32_UM2",
    "ADD8_UM2",
    "ADD32_UM2",
    "DFF_UM2",
    "SRAM_CELL_UM2",
    "SRAM_ARRAY_EFFICIENCY",
    "SRAM_PJ_PER_64B",
    "DRAM_PJ_PER_BYTE",
    "power_law",
    "mac_pj",
    "mac_um2",
    "sram_pj_per_byte",
    "sram_um2_per_kib",
]

#: [H] integer multiply / add energy, pJ
MULT8_PJ, MULT32_PJ = 0.2, 3.1
ADD8_PJ, ADD32_PJ = 0.03, 0.1
#: [H] integer multiplier / adder area, um2
MULT8_UM2, MULT32_UM2 = 282.0, 3495.0
ADD8_UM2, ADD32_UM2 = 36.0, 137.0
#: [N] one flip-flop bit, um2
DFF_UM2 = 4.522
#: [I] 6T cell, um2; the share of an SRAM macro that is cells (periphery is the rest)
SRAM_CELL_UM2, SRAM_ARRAY_EFFICIENCY = 0.346, 0.7
#: [H] SRAM energy per 64-bit access, (capacity KiB, pJ)
SRAM_PJ_PER_64B: tuple[tuple[float, float], ...] = ((8.0, 10.0), (32.0, 20.0), (1024.0, 100.0))
#: [H] DRAM, low end of 1.3-2.6 nJ per 64-bit access, per byte
DRAM_PJ_PER_BYTE = 1300.0 / 8


def power_law(x: float, x0: float, y0: float, x1: float, y1: float) -> float:
    """``y`` on the line through ``(x0, y0)`` and ``(x1, y1)`` in log-log space."""
    return y0 * (x / x0) ** (math.log(y1 / y0) / math.log(x1 / x0))


def mac_pj(bits: float) -> float:
    """Energy of one ``bits``-wide multiply plus a ``2 * bits``-wide accumulate, pJ [H]."""
    return power_law(bits, 8, MULT8_PJ, 32, MULT32_PJ) + power_law(
        2 * bits, 8, ADD8_PJ, 32, ADD32_PJ
    )


def mac_um2(bits: float) -> float:
    """Area of a ``bits``-wide multiplier and a ``2 * bits``-wide adder, um2 (cells only) [H]."""
    return power_law(bits, 8, MULT8_UM2, 32, MULT32_UM2) + power_law(
        2 * bits, 8, ADD8_UM2, 32, ADD32_UM2
    )


def sram_pj_per_byte(kib: float, points: Sequence[tuple[float, float]] = SRAM_PJ_PER_64B) -> float:
    """Per-byte access energy of a ``kib`` KiB SRAM: piecewise log-log through ``points``
    (pJ per 64-bit access), extrapolated past the ends with the nearest segment."""
    pts = sorted(points)
    if len(pts) == 1:
        return pts[0][1] / 8.0
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if kib <= x1:
            return power_law(kib, x0, y0, x1, y1) / 8.0
    (x0, y0), (x1, y1) = pts[-2], pts[-1]
    return power_law(kib, x0, y0, x1, y1) / 8.0


def sram_um2_per_kib(
    cell_um2: float = SRAM_CELL_UM2, efficiency: float = SRAM_ARRAY_EFFICIENCY
) -> float:
    """Area of one KiB of SRAM macro: 8192 cells over the array efficiency, um2 [I]."""
    return 8192 * cell_um2 / efficiency
