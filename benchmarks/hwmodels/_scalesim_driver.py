"""Runs SCALE-Sim jobs for ``scalesim_compare.py``, inside the SCALE-Sim peer venv.

Not imported by cosearch: ``_peers.run_driver`` starts it with the peer's interpreter as
``python _scalesim_driver.py REQUEST.json RESULTS.jsonl``. It only calls SCALE-Sim's public entry
point (``scalesim.scale_sim.scalesim``) on input files it writes, and reads the reports back.

REQUEST.json::

    {"workdir": "...", "jobs": [{"id": "...", "rows": 8, "cols": 8, "dataflow": "ws",
      "sram_kib": [ifmap, filter, ofmap],
      "topology": [[name, ifmap_h, ifmap_w, filter_h, filter_w, channels, num_filter, stride]]}]}

RESULTS.jsonl: first a header line ``{"header": {...versions...}}``, then one line per job::

    {"id": "...", "seconds": s, "layers": [{"total_cycles_incl_prefetch": ..., "total_cycles":
      ..., "stall_cycles": ..., "overall_util_pct": ..., "mapping_eff_pct": ...,
      "compute_util_pct": ...}, ...]}

``layers`` holds one entry per layer SCALE-Sim ran: a topology row whose name contains ``DP``
is expanded by SCALE-Sim itself into one single-channel layer per channel.

Timed (``seconds``, ``time.perf_counter``): constructing ``scalesim(...)`` (it parses the .cfg
and topology CSV), ``run_scale()`` (compute and memory simulation, writing its report CSVs) and
reading COMPUTE_REPORT.csv back. Not timed: interpreter start-up, imports, writing the inputs.

The configuration uses ``InterfaceBandwidth = CALC``: SCALE-Sim then sizes DRAM bandwidth so
that nothing stalls (its "Stall Cycles" stay 0), which makes "Total Cycles" its compute cycles.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import platform
import shutil
import sys
import time
import warnings
from pathlib import Path

# scalesim 3.0.0 converts 1-element arrays with int(); NumPy 2.x warns about it (2.4 raises).
warnings.filterwarnings("ignore", category=DeprecationWarning)

CFG = """[general]
run_name = job

[architecture_presets]
ArrayHeight = {rows}
ArrayWidth = {cols}
IfmapSramSzkB = {sram[0]}
FilterSramSzkB = {sram[1]}
OfmapSramSzkB = {sram[2]}
IfmapOffset = 0
FilterOffset = 10000000
OfmapOffset = 20000000
Bandwidth = 10
Dataflow = {dataflow}
ReadRequestBuffer = 32
WriteRequestBuffer = 32

[layout]
IfmapCustomLayout = False
IfmapSRAMBankBandwidth = 10
IfmapSRAMBankNum = 10
IfmapSRAMBankPort = 2
FilterCustomLayout = False
FilterSRAMBankBandwidth = 10
FilterSRAMBankNum = 10
FilterSRAMBankPort = 2

[sparsity]
SparsitySupport = false
SparseRep = ellpack_block
OptimizedMapping = false
BlockSize = 8
RandomNumberGeneratorSeed = 40

[run_presets]
InterfaceBandwidth = CALC
UseRamulatorTrace = False
"""

TOPO_HEADER = (
    "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
    "Num Filter, Strides,\n"
)
REPORT_KEYS = (
    "total_cycles_incl_prefetch",
    "total_cycles",
    "stall_cycles",
    "overall_util_pct",
    "mapping_eff_pct",
    "compute_util_pct",
)


def _read_report(path: Path) -> list[dict[str, float]]:
    rows = []
    for line in path.read_text().splitlines()[1:]:
        cells = [c.strip() for c in line.split(",") if c.strip()]
        if cells:
            rows.append(dict(zip(REPORT_KEYS, (float(c) for c in cells[1:]))))
    return rows


def main(request_path: str, results_path: str) -> None:
    from scalesim.scale_sim import scalesim

    request = json.loads(Path(request_path).read_text())
    workdir = Path(request["workdir"])
    header = {
        "scalesim": importlib.metadata.version("scalesim"),
        "numpy": importlib.metadata.version("numpy"),
        "python": platform.python_version(),
    }
    with open(results_path, "a") as out:
        out.write(json.dumps({"header": header}) + "\n")
        out.flush()
        for i, job in enumerate(request["jobs"]):
            job_dir = workdir / f"job{i}"
            job_dir.mkdir()
            cfg, topo, layout = job_dir / "c.cfg", job_dir / "t.csv", job_dir / "l.csv"
            cfg.write_text(
                CFG.format(
                    rows=job["rows"],
                    cols=job["cols"],
                    sram=job["sram_kib"],
                    dataflow=job["dataflow"],
                )
            )
            topo.write_text(
                TOPO_HEADER + "".join(", ".join(map(str, r)) + ",\n" for r in job["topology"])
            )
            layout.write_text("Layer name,\n")  # read even when no custom layout is used
            # SCALE-Sim prints a banner and progress; keep stdout for nothing but our protocol.
            with contextlib.redirect_stdout(sys.stderr):
                t0 = time.perf_counter()
                sim = scalesim(
                    save_disk_space=True,
                    verbose=False,
                    config=str(cfg),
                    topology=str(topo),
                    layout=str(layout),
                )
                sim.run_scale(top_path=str(job_dir / "out"))
                layers = _read_report(job_dir / "out" / "job" / "COMPUTE_REPORT.csv")
                seconds = time.perf_counter() - t0
            out.write(json.dumps({"id": job["id"], "seconds": seconds, "layers": layers}) + "\n")
            out.flush()
            shutil.rmtree(job_dir)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
