"""cosearch's ``systolic`` and ``row_stationary`` models against ZigZag 3.9.1, side by side.

    .venv/bin/python benchmarks/hwmodels/zigzag_compare.py            # full, ~15-20 min, 2 cores
    .venv/bin/python benchmarks/hwmodels/zigzag_compare.py --quick    # ~5 networks
    .venv/bin/python benchmarks/hwmodels/zigzag_compare.py --install  # (re)install ZigZag first

ZigZag (``zigzag-dse`` on PyPI) is installed by the benchmark into ``benchmarks/.peers/zigzag``
(see ``_peers.py``) and run through ``_zigzag_driver.py``. Two of ZigZag's bundled accelerators
are described the same way in cosearch (:data:`ACCELERATORS`, every correspondence documented
there). Networks: NB201, DARTS and OFA-MobileNetV3 candidates built by cosearch and saved as ONNX
(with inferred shapes), plus ZigZag's bundled ResNet-18, MobileNetV2 and AlexNet.

Per network and accelerator the report gives ZigZag's energy and latency (sum over its
Conv/Gemm/MatMul layers), cosearch's cost over the same layers (a: apples to apples) and
cosearch's full cost (b: every operation, pooling, element-wise and data movement included), the
Spearman rank correlations over networks and over layers, and each tool's wall time per network.
Results: ``benchmarks/results/hwmodels_zigzag{,_quick}.{md,csv}``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _peers  # benchmarks/hwmodels/ is on sys.path when this file runs as a script
import numpy as np
import onnx
from onnx import shape_inference
from scipy.stats import spearmanr

import cosearch
from cosearch.errors import OnnxImportError
from cosearch.hwmodels import Accelerator, Layer
from cosearch.hwmodels.layers import extract_layers
from cosearch.hwmodels.row_stationary import RowStationaryCostModel
from cosearch.hwmodels.systolic import SystolicCostModel
from cosearch.spaces import parse_accelerator
from cosearch.spaces.onnx_io import load_onnx

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / "results"
ZIGZAG = _peers.Peer(
    name="zigzag",
    distribution="zigzag-dse",
    version="3.9.1",
    # zigzag-dse 3.9.1 imports six (parser/upgraded_validator.py) without declaring it.
    requirements=("zigzag-dse==3.9.1", "six"),
)
MAC_KINDS = frozenset({"conv", "depthwise", "gemm", "matmul"})
#: ZigZag search settings: the fastest LOMA setting that still searches (lpf_limit 2 loop prime
#: factors per memory level; the api's default is 6) and one spatial mapping.
LPF_LIMIT = 2
SPATIAL_MAPPINGS = 1
NETWORK_TIMEOUT_S = 90
COSEARCH_REPS = 5

#: Eyeriss-like mapping for ZigZag (it ships none for eyeriss_like): the spatial-mapping hint
#: puts output rows and filters on the 14-wide D1 and filter rows and channels on the 12-high D2,
#: the row-stationary unrolling (Chen et al., ISCA 2016); ZigZag picks the factors.
EYERISS_MAPPING = """- name: default
  spatial_mapping_hint:
    D1: [OY, K]
    D2: [FY, C]
  memory_operand_links:
    O: O
    W: I2
    I: I1
"""


@dataclass(frozen=True)
class AccPair:
    """One ZigZag accelerator and its cosearch description."""

    name: str
    hardware: str  # file name in zigzag/inputs/hardware
    mapping: str | None  # file name in zigzag/inputs/mapping, or None: EYERISS_MAPPING
    spec: str
    model: Callable[[], Any]
    notes: tuple[str, ...]


# All ZigZag numbers are cycles, so cosearch uses a 1000 MHz clock: then X GB/s is X bytes per
# cycle, and ZigZag's port widths in bits per cycle translate directly.
ACCELERATORS = (
    AccPair(
        name="tpu_like",
        hardware="tpu_like.yaml",
        mapping="tpu_like.yaml",
        spec=(
            "systolic:pe_rows=32,pe_cols=32,dataflow=ws,ifmap_sram_kib=1024,"
            "filter_sram_kib=128,ofmap_sram_kib=1024,dram_gbps=8.0,clock_mhz=1000,"
            "precision_bits=8"
        ),
        model=SystolicCostModel,
        notes=(
            "32 x 32 operational array (`sizes: [32, 32]`, `systolic_dimensions: [D1, D2]`) "
            "-> `pe_rows=32, pe_cols=32`.",
            "Mapping `tpu_like.yaml` default: K on D1, C on D2, weights in a per-PE 128 B "
            "register (`rf_128B`, I2): weight stationary -> `dataflow=ws`.",
            "`sram_2MB` (16 Mibit, I1 and O shared) -> `ifmap_sram_kib=1024` + "
            "`ofmap_sram_kib=1024` (cosearch has separate buffers; half each is an assumption).",
            "Weights go from DRAM straight to the PE registers (32 x 32 x 128 B = 128 KiB in "
            "all) -> `filter_sram_kib=128` (assumption: the registers play the filter buffer).",
            "DRAM port 64 bit/cycle -> 8 B/cycle -> `dram_gbps=8` at `clock_mhz=1000`.",
            "8-bit operands (ZigZag's ONNX default; partial sums 16 bit in ZigZag, 8 bit in "
            "cosearch, which uses one width for every element) -> `precision_bits=8`.",
            "Energies are not matched: ZigZag uses the YAML's per-access costs (MAC 0.04 pJ, "
            "SRAM ~400 pJ per 2048-bit access, DRAM 700/750 pJ per 64-bit access); cosearch its "
            "own 45 nm constants. Rank correlation is what is compared.",
        ),
    ),
    AccPair(
        name="eyeriss_like",
        hardware="eyeriss_like.yaml",
        mapping=None,
        spec=(
            "row_stationary:pe_rows=12,pe_cols=14,glb_kib=1096,rf_bytes=144,noc_gbps=64.0,"
            "dram_gbps=8.0,clock_mhz=1000,precision_bits=8"
        ),
        model=RowStationaryCostModel,
        notes=(
            "14 x 12 operational array (`sizes: [14, 12]`) -> `pe_rows=12` (filter rows, D2), "
            "`pe_cols=14` (output rows, D1).",
            "Per-PE register files 64 B ifmap + 64 B weight + 16 B psum -> `rf_bytes=144` "
            "(cosearch splits it 448:24:48 like Eyeriss v1, not 64:64:16: an assumption that "
            "differs).",
            "`sram_1M` (8 Mibit, I and O) + `sram_64KB` (512 Kibit, W) + `sram_8KB` (64 Kibit, O) "
            "-> one global buffer `glb_kib=1024+64+8=1096`.",
            "Buffer-to-array ports 384 + 128 bit/cycle -> 64 B/cycle -> `noc_gbps=64` at 1 GHz.",
            "DRAM port 64 bit/cycle -> `dram_gbps=8`; 8-bit operands -> `precision_bits=8`.",
            "Mapping: ZigZag ships none for eyeriss_like; the benchmark gives a spatial-mapping "
            "hint (D1: OY, K; D2: FY, C) and ZigZag chooses the unrolling.",
        ),
    ),
)


# -- networks ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Net:
    name: str
    family: str
    path: Path


def _save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(shape_inference.infer_shapes(model), str(path))
    return path


def build_networks(folder: Path, quick: bool, seed: int = 0) -> list[Net]:
    """Candidates of cosearch's spaces saved as ONNX, then ZigZag's bundled models."""
    rng = np.random.default_rng(seed)
    counts = {"nb201": 4, "darts": 1, "ofa_mbv3": 0} if quick else {
        "nb201": 44, "darts": 4, "ofa_mbv3": 2,
    }  # fmt: skip
    options: dict[str, dict[str, Any]] = {"nb201": {}, "darts": {}, "ofa_mbv3": {}}
    nets: list[Net] = []
    for family, n in counts.items():
        space = cosearch.get_space(family, **options[family])
        seen: set[str] = set()
        tries = 0
        while len([x for x in nets if x.family == family]) < n and tries < 20 * n:
            tries += 1
            arch = space.build(space.sample(rng))
            if arch.digest in seen:
                continue
            seen.add(arch.digest)
            name = f"{family}-{len(seen) - 1:02d}"
            nets.append(Net(name, family, _save(arch.onnx(), folder / f"{name}.onnx")))
    if not quick:
        bundled = _zigzag_inputs() / "workload"
        for m in ("resnet18", "mobilenetv2", "alexnet"):
            nets.append(Net(m, "zigzag_bundled", bundled / f"{m}.onnx"))
    return nets


def _zigzag_inputs() -> Path:
    site = next((ZIGZAG.venv / "lib").glob("python3*/site-packages"))
    return site / "zigzag" / "inputs"


# -- cosearch side -----------------------------------------------------------------------------
def cosearch_cost(net: Net, pair: AccPair) -> tuple[list[Layer], Any, float, float]:
    """(layers, Cost, median seconds per network, median seconds of ``evaluate`` alone):
    load + extract_layers + a fresh cost model's evaluate, so nothing is cached between
    repetitions."""
    acc: Accelerator = parse_accelerator(pair.spec)
    times, evals = [], []
    layers: list[Layer] = []
    cost = None
    for _ in range(COSEARCH_REPS):
        t0 = time.perf_counter()
        layers = extract_layers(load_onnx(net.path))
        t1 = time.perf_counter()
        cost = pair.model().evaluate(layers, acc)
        t2 = time.perf_counter()
        times.append(t2 - t0)
        evals.append(t2 - t1)
    return layers, cost, statistics.median(times), statistics.median(evals)


# -- ZigZag side -------------------------------------------------------------------------------
def run_zigzag(
    nets: list[Net], workdir: Path, deadline_s: float
) -> tuple[dict[str, str], dict[tuple[str, str], dict[str, Any]]]:
    inputs = _zigzag_inputs()
    (workdir / "eyeriss_like_mapping.yaml").write_text(EYERISS_MAPPING)
    accs = {
        p.name: {
            "hardware": str(inputs / "hardware" / p.hardware),
            "mapping": str(
                inputs / "mapping" / p.mapping
                if p.mapping
                else workdir / "eyeriss_like_mapping.yaml"
            ),
        }
        for p in ACCELERATORS
    }
    jobs = [
        {"id": f"{p.name}|{n.name}", "accelerator": p.name, "onnx": str(n.path)}
        for n in nets  # interleaved, so that a spent budget cuts both accelerators alike
        for p in ACCELERATORS
    ]
    request = {
        "lpf_limit": LPF_LIMIT,
        "spatial_mappings": SPATIAL_MAPPINGS,
        "network_timeout_s": NETWORK_TIMEOUT_S,
        "deadline_s": deadline_s,
        "accelerators": accs,
        "jobs": jobs,
    }
    start = time.monotonic()

    def progress(n: int) -> None:
        print(f"  ZigZag {max(n - 1, 0)}/{len(jobs)} jobs, {time.monotonic() - start:.0f} s")

    results = _peers.run_driver(
        ZIGZAG,
        HERE / "_zigzag_driver.py",
        request,
        timeout_s=deadline_s + 2 * NETWORK_TIMEOUT_S + 120,
        progress=progress,
    )
    header = results[0]["header"]
    out = {}
    for r in results[1:]:
        acc, net = r["id"].split("|", 1)
        out[(acc, net)] = r
    return header, out


# -- comparison --------------------------------------------------------------------------------
def _rho(a: Sequence[float], b: Sequence[float]) -> float:
    if len(a) < 3:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def compare(
    nets: list[Net], zz: dict[tuple[str, str], dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """(network rows, layer rows, failures)."""
    net_rows: list[dict[str, Any]] = []
    layer_rows: list[dict[str, Any]] = []
    failures: list[str] = []
    for pair in ACCELERATORS:
        for net in nets:
            res = zz.get((pair.name, net.name))
            try:
                layers, cost, cs_s, cs_eval_s = cosearch_cost(net, pair)
            except OnnxImportError as exc:  # an op cosearch does not know: reported, not dropped
                why = str(exc).split(". Supported")[0][-200:]
                failures.append(f"{pair.name} / {net.name}: cosearch: {why}")
                continue
            if res is None or not res["ok"]:
                why = "missing" if res is None else res["error"]
                failures.append(f"{pair.name} / {net.name}: {why}")
                continue
            zl = res["layers"]
            mac = [(ly, lc) for ly, lc in zip(layers, cost.per_layer) if ly.kind in MAC_KINDS]
            by_name = {ly.name: lc for ly, lc in mac}
            matched = 0
            cs_mac_e = sum(lc.energy_pj for _, lc in mac)
            cs_mac_l = sum(lc.latency_cycles for _, lc in mac)
            for i, z in enumerate(zl):
                lc = by_name.get(z["name"])
                if lc is None and len(zl) == len(mac):
                    lc = mac[i][1]  # ZigZag renamed the node: fall back to graph order
                if lc is None:
                    continue
                matched += 1
                layer_rows.append(
                    {
                        "accelerator": pair.name,
                        "network": net.name,
                        "layer": z["name"],
                        "kind": lc.kind,
                        "macs_zigzag": z["macs"],
                        "macs_cosearch": lc.macs,
                        "zigzag_latency_cycles": z["latency_cycles"],
                        "cosearch_latency_cycles": lc.latency_cycles,
                        "zigzag_energy_pj": z["energy_pj"],
                        "cosearch_energy_pj": lc.energy_pj,
                    }
                )
            zz_uncached = res["parse_seconds"] + sum(z["search_seconds"] for z in zl)
            non_mac = [
                (ly, lc) for ly, lc in zip(layers, cost.per_layer) if ly.kind not in MAC_KINDS
            ]
            net_rows.append(
                {
                    "accelerator": pair.name,
                    "network": net.name,
                    "family": net.family,
                    "layers_cosearch": len(layers),
                    "mac_layers_cosearch": len(mac),
                    "layers_zigzag": len(zl),
                    "layers_matched": matched,
                    "macs": sum(ly.macs for ly, _ in mac),
                    "zigzag_latency_cycles": sum(z["latency_cycles"] for z in zl),
                    "zigzag_energy_pj": sum(z["energy_pj"] for z in zl),
                    "cosearch_mac_latency_cycles": cs_mac_l,
                    "cosearch_mac_energy_pj": cs_mac_e,
                    "cosearch_full_latency_cycles": cost.latency_cycles,
                    "cosearch_full_energy_pj": cost.energy_mj * 1e9,
                    "non_mac_latency_share": sum(lc.latency_cycles for _, lc in non_mac)
                    / cost.latency_cycles,
                    "non_mac_energy_share": sum(lc.energy_pj for _, lc in non_mac)
                    / (cost.energy_mj * 1e9),
                    "zigzag_seconds_uncached": zz_uncached,
                    "zigzag_seconds_this_run": res["seconds"],
                    "cosearch_seconds": cs_s,
                    "cosearch_evaluate_seconds": cs_eval_s,
                    "violations": len(cost.violations),
                }
            )
    return net_rows, layer_rows, failures


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="~5 networks")
    ap.add_argument("--install", action="store_true", help="(re)install ZigZag into its venv")
    ap.add_argument("--out-dir", type=Path, default=RESULTS, help="where the .md/.csv go")
    ap.add_argument(
        "--budget-s", type=float, default=900.0, help="ZigZag run budget; later jobs skipped"
    )
    args = ap.parse_args(argv)

    version = _peers.ensure_peer(ZIGZAG, install=args.install)
    print(f"zigzag-dse {version} in {ZIGZAG.venv}")
    with tempfile.TemporaryDirectory(prefix="zigzag-compare-") as tmp:
        folder = Path(tmp)
        nets = build_networks(folder, args.quick)
        print(f"{len(nets)} networks x {len(ACCELERATORS)} accelerators")
        t0 = time.monotonic()
        header, zz = run_zigzag(nets, folder, args.budget_s)
        zz_wall = time.monotonic() - t0
        net_rows, layer_rows, failures = compare(nets, zz)

    suffix = "_quick" if args.quick else ""
    args.out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = args.out_dir / f"hwmodels_zigzag{suffix}.csv"
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(net_rows[0]))
        writer.writeheader()
        writer.writerows(net_rows)
    layer_csv = args.out_dir / f"hwmodels_zigzag{suffix}_layers.csv"
    with layer_csv.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(layer_rows[0]))
        writer.writeheader()
        writer.writerows(layer_rows)
    cmd = "python benchmarks/hwmodels/zigzag_compare.py" + (" --quick" if args.quick else "")
    md = render(
        net_rows=net_rows,
        layer_rows=layer_rows,
        failures=failures,
        nets=nets,
        header=header,
        machine=_peers.machine_info(),
        command=f".venv/bin/{cmd}",
        zz_wall_s=zz_wall,
        csv_names=(csv_path.name, layer_csv.name),
        accelerators=ACCELERATORS,
        settings={
            "lpf_limit": LPF_LIMIT,
            "spatial_mappings": SPATIAL_MAPPINGS,
            "network_timeout_s": NETWORK_TIMEOUT_S,
            "budget_s": args.budget_s,
            "cosearch_reps": COSEARCH_REPS,
        },
        rho=_rho,
        when=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
    md_path = args.out_dir / f"hwmodels_zigzag{suffix}.md"
    md_path.write_text(md)
    print(f"wrote {md_path}, {csv_path}, {layer_csv}; {len(failures)} jobs failed or skipped")
    return 0


# -- the report --------------------------------------------------------------------------------
def _g(x: float) -> str:
    return f"{x:.3g}"


def render(
    *,
    net_rows: list[dict[str, Any]],
    layer_rows: list[dict[str, Any]],
    failures: list[str],
    nets: list[Net],
    header: dict[str, str],
    machine: dict[str, Any],
    command: str,
    zz_wall_s: float,
    csv_names: tuple[str, str],
    accelerators: Sequence[AccPair],
    settings: dict[str, Any],
    rho: Callable[[Sequence[float], Sequence[float]], float],
    when: str,
) -> str:
    """The Markdown report of one run."""
    fams = sorted({n.family for n in nets})
    lines = [
        "# cosearch cost models vs ZigZag: network and layer latency and energy",
        "",
        f"Generated {when} by `{command}` (from the repository root). Per network: "
        f"[`{csv_names[0]}`]({csv_names[0]}); per layer: [`{csv_names[1]}`]({csv_names[1]}).",
        "",
        "## Setup",
        "",
        f"- Machine: CPU `{machine['cpu_model']}`, {machine['cpu_count']} logical cores "
        f"({machine['usable_cores']} usable), {machine['platform']}; shared with other "
        "processes during the run (wall times include that load).",
        f"- ZigZag: zigzag-dse {header['zigzag-dse']} (PyPI), onnx {header['onnx']}, numpy "
        f"{header['numpy']}, Python {header['python']}, own venv, `_zigzag_driver.py`. "
        f"LOMA `lpf_limit={settings['lpf_limit']}` (api default 6), "
        f"`nb_spatial_mappings_generated={settings['spatial_mappings']}`, `opt=latency`, "
        "uneven temporal mappings, no inter-layer data locality (api defaults otherwise); "
        f"per-network timeout {settings['network_timeout_s']} s, run budget "
        f"{settings['budget_s']:.0f} s per run (later jobs skipped); ZigZag took "
        f"{zz_wall_s / 60:.1f} min in all.",
        f"- cosearch: `load_onnx` + `extract_layers` + a fresh cost model's `evaluate` per "
        f"network (median of {settings['cosearch_reps']}; nothing cached between them).",
        f"- Networks ({len(nets)}): "
        + ", ".join(f"{sum(n.family == f for n in nets)} {f}" for f in fams)
        + ". cosearch candidates are random samples (numpy Generator, seed 0) at default "
        "options, saved with inferred shapes; `zigzag_bundled` are ZigZag's own ONNX files "
        "(weights stored externally and absent, so structure only).",
        "",
        "## Accelerator correspondence",
        "",
    ]
    for p in accelerators:
        lines += [f"**{p.name}** (`zigzag/inputs/hardware/{p.hardware}`) -> `{p.spec}`", ""]
        lines += [f"- {t}" for t in p.notes] + [""]
    lines += [
        "## Result: Spearman rank correlation",
        "",
        "(a) = cosearch over the Conv/Gemm/MatMul layers ZigZag costs; (b) = cosearch's full "
        "cost (pooling, element-wise, normalization, data movement included). Layer rows pair "
        "ZigZag's and cosearch's cost of the same ONNX node; all layer rows of all networks.",
        "",
        "| accelerator | networks | rho latency (a) | rho energy (a) | rho latency (b) "
        "| rho energy (b) | layers | rho layer latency | rho layer energy |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in accelerators:
        nr = [r for r in net_rows if r["accelerator"] == p.name]
        lr = [r for r in layer_rows if r["accelerator"] == p.name]
        if not nr:
            lines.append(f"| {p.name} | 0 | - | - | - | - | - | - | - |")
            continue
        zl, ze = [r["zigzag_latency_cycles"] for r in nr], [r["zigzag_energy_pj"] for r in nr]
        cells = [
            rho(zl, [r["cosearch_mac_latency_cycles"] for r in nr]),
            rho(ze, [r["cosearch_mac_energy_pj"] for r in nr]),
            rho(zl, [r["cosearch_full_latency_cycles"] for r in nr]),
            rho(ze, [r["cosearch_full_energy_pj"] for r in nr]),
            rho(
                [r["zigzag_latency_cycles"] for r in lr],
                [r["cosearch_latency_cycles"] for r in lr],
            ),
            rho([r["zigzag_energy_pj"] for r in lr], [r["cosearch_energy_pj"] for r in lr]),
        ]
        c = [f"{x:.3f}" for x in cells]
        lines.append(
            f"| {p.name} | {len(nr)} | {c[0]} | {c[1]} | {c[2]} | {c[3]} | {len(lr)} | "
            f"{c[4]} | {c[5]} |"
        )
    lines += [
        "",
        "Per layer kind (cosearch / ZigZag ratio: median, min..max; and rho within the kind):",
        "",
        "| accelerator | kind | layers | latency ratio | energy ratio | rho latency | rho energy |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in accelerators:
        lr = [r for r in layer_rows if r["accelerator"] == p.name]
        for kind in sorted({r["kind"] for r in lr}) + ["all but depthwise"]:
            k = [
                r
                for r in lr
                if (r["kind"] == kind or (kind[0] == "a" and r["kind"] != "depthwise"))
            ]
            if not k:
                continue
            lat = [r["cosearch_latency_cycles"] / r["zigzag_latency_cycles"] for r in k]
            en = [r["cosearch_energy_pj"] / r["zigzag_energy_pj"] for r in k]
            rl = rho(
                [r["zigzag_latency_cycles"] for r in k], [r["cosearch_latency_cycles"] for r in k]
            )
            re_ = rho([r["zigzag_energy_pj"] for r in k], [r["cosearch_energy_pj"] for r in k])
            lines.append(
                f"| {p.name} | {kind} | {len(k)} | {_g(statistics.median(lat))} "
                f"({_g(min(lat))}..{_g(max(lat))}) | {_g(statistics.median(en))} "
                f"({_g(min(en))}..{_g(max(en))}) | {rl:.3f} | {re_:.3f} |"
            )
    lines += [
        "",
        "Per family (networks; latency / energy, (a) then (b)):",
        "",
        "| accelerator | family | n | rho lat (a) | rho en (a) | rho lat (b) | rho en (b) "
        "| median non-MAC latency share (b) | median non-MAC energy share (b) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in accelerators:
        for f in fams:
            nr = [r for r in net_rows if r["accelerator"] == p.name and r["family"] == f]
            if not nr:
                continue
            zl, ze = [r["zigzag_latency_cycles"] for r in nr], [r["zigzag_energy_pj"] for r in nr]
            vals = [
                rho(zl, [r["cosearch_mac_latency_cycles"] for r in nr]),
                rho(ze, [r["cosearch_mac_energy_pj"] for r in nr]),
                rho(zl, [r["cosearch_full_latency_cycles"] for r in nr]),
                rho(ze, [r["cosearch_full_energy_pj"] for r in nr]),
            ]
            ls = statistics.median(r["non_mac_latency_share"] for r in nr)
            es = statistics.median(r["non_mac_energy_share"] for r in nr)
            lines.append(
                f"| {p.name} | {f} | {len(nr)} | "
                + " | ".join("n/a" if v != v else f"{v:.3f}" for v in vals)
                + f" | {100 * ls:.1f}% | {100 * es:.1f}% |"
            )
    lines += [
        "",
        "Ratios cosearch (a) / ZigZag per network (median, min, max): absolute numbers are not "
        "expected to match (different energy tables, see above); they show the scale.",
        "",
        "| accelerator | latency ratio | energy ratio |",
        "|---|---|---|",
    ]
    for p in accelerators:
        nr = [r for r in net_rows if r["accelerator"] == p.name]
        if not nr:
            continue
        lat = [r["cosearch_mac_latency_cycles"] / r["zigzag_latency_cycles"] for r in nr]
        en = [r["cosearch_mac_energy_pj"] / r["zigzag_energy_pj"] for r in nr]
        lines.append(
            f"| {p.name} | {_g(statistics.median(lat))} ({_g(min(lat))}..{_g(max(lat))}) | "
            f"{_g(statistics.median(en))} ({_g(min(en))}..{_g(max(en))}) |"
        )
    lines += [
        "",
        "## Speed per network",
        "",
        "ZigZag *uncached* = its parse time + the search time of every Conv/Gemm/MatMul layer "
        "(the driver searches each distinct layer once and reuses the result for identical "
        "layers, which ZigZag itself does not do; each layer's time is that of its first "
        "search). *This run* is the wall time the driver spent with reuse. cosearch: as above.",
        "",
        "| accelerator | networks | median ZigZag s (uncached) | median ZigZag s (this run) "
        "| median cosearch s | ratio of medians (uncached) | smallest per-network ratio "
        "| median cosearch `evaluate` s alone | ratio to it |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in accelerators:
        nr = [r for r in net_rows if r["accelerator"] == p.name]
        if not nr:
            continue
        zu = statistics.median(r["zigzag_seconds_uncached"] for r in nr)
        zr = statistics.median(r["zigzag_seconds_this_run"] for r in nr)
        cs = statistics.median(r["cosearch_seconds"] for r in nr)
        worst = min(r["zigzag_seconds_uncached"] / r["cosearch_seconds"] for r in nr)
        ev = statistics.median(r["cosearch_evaluate_seconds"] for r in nr)
        lines.append(
            f"| {p.name} | {len(nr)} | {_g(zu)} | {_g(zr)} | {_g(cs)} | {zu / cs:,.0f}x | "
            f"{worst:,.0f}x | {_g(ev)} | {zu / ev:,.0f}x |"
        )
    lines += ["", "## Jobs that failed, timed out or were skipped", ""]
    lines += [f"- {f}" for f in failures] or ["None."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
