"""ZigZag (zigzag-dse) on our captured networks on a 32x32 array, its default LOMA search: time, memory, latency.

ZigZag runs as a subprocess in its own venv (``bench/setup_peers.sh``). The workload is given in its own
layer format, generated from our captured ``Workload`` (so it sees exactly the conv / linear shapes our
simulator and SCALE-Sim see); the accelerator and the spatial mapping are generated here too. Usage:

    .venv/bin/python bench/peer_zigzag.py --networks resnet18,mobilenetv2
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
for _path in (REPO_DIR, BENCH_DIR):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from codesign.errors import CodesignError  # noqa: E402
from codesign.workload import ConvDims, GemmDims, Workload  # noqa: E402
from peer_scalesim import PEAK_RSS_SNIPPET, PeerError, capture_network, run_child  # noqa: E402

ZIGZAG_PYTHON = BENCH_DIR / ".venv-zigzag" / "bin" / "python"
CONV_EQUATION = "O[b][g][k][oy][ox]+=W[g][k][c][fy][fx]*I[b][g][c][iy][ix]"

# Spatial mappings of a 32x32 array. ZigZag has no named dataflows: a dataflow is which loop dims unroll on
# which array axis. K x C keeps a 32x32 block of weights in the PEs (weight stationary, TPU-like);
# K x OX keeps 32x32 outputs in the PEs (output stationary).
SPATIAL_MAPPINGS = {"ws": ("K", "C"), "os": ("K", "OX")}


def zigzag_layer(layer_id: int, name: str, dims: ConvDims | GemmDims, weight_bits: int = 8,
                 activation_bits: int = 8, accumulator_bits: int = 32) -> dict[str, Any]:
    """One layer in ZigZag's workload format (an einsum over B, G, K, C, OY, OX, FY, FX), inputs constant.

    A GEMM batch x (M x K @ K x N) is the 1x1 conv with B = M, G = batch, C = K, K = N.
    """
    if isinstance(dims, ConvDims):
        sizes = dict(B=dims.n, K=dims.k // dims.groups, G=dims.groups, OX=dims.q, OY=dims.p,
                     C=dims.c // dims.groups, FX=dims.s, FY=dims.r)
        (stride_y, stride_x), (dil_y, dil_x), (pad_y, pad_x) = dims.stride, dims.dilation, dims.padding
        in_x, in_y = dims.w, dims.h
    else:
        sizes = dict(B=dims.m, K=dims.n, G=dims.batch, OX=1, OY=1, C=dims.k, FX=1, FY=1)
        stride_y = stride_x = dil_y = dil_x = 1
        pad_y = pad_x = 0
        in_x = in_y = 1
    return {
        "id": layer_id,
        "name": name,
        "operator_type": "Conv",
        "equation": CONV_EQUATION,
        "loop_dims": list(sizes),
        "loop_sizes": list(sizes.values()),
        "dimension_relations": [f"ix={stride_x}*ox+{dil_x}*fx", f"iy={stride_y}*oy+{dil_y}*fy"],
        "operand_precision": {"W": weight_bits, "I": activation_bits, "O": accumulator_bits,
                              "O_final": activation_bits},
        "operand_source": {"W": layer_id, "I": layer_id},
        "pr_loop_dims": ["IX", "IY"],
        "pr_loop_sizes": [in_x, in_y],
        "padding": [[pad_x, pad_x], [pad_y, pad_y]],
    }


def zigzag_workload(workload: Workload) -> list[dict[str, Any]]:
    """The conv / linear layers of ``workload`` (ZigZag's ONNX import also costs only Conv/MatMul/Gemm)."""
    layers = []
    for layer in workload.mac_layers():
        if layer.dims is None:
            continue
        bits = layer.bits
        layers.append(zigzag_layer(len(layers), layer.name, layer.dims, bits.weight, bits.activation,
                                   bits.accumulator))
    return layers


def _port(name: str, kind: str, bits: int, allocation: Sequence[str]) -> dict[str, Any]:
    return {"name": name, "type": kind, "bandwidth_min": bits, "bandwidth_max": bits, "allocation": list(allocation)}


def accelerator_spec(rows: int = 32, cols: int = 32, glb_bytes: int = 512 * 1024, glb_bits_per_cycle: int = 256,
                     dram_bits_per_cycle: int = 64) -> dict[str, Any]:
    """A rows x cols int8 array: per-PE weight / input / psum registers, one global buffer, DRAM.

    Per-access energies follow the Horowitz 45 nm table in relative terms; only latency is compared.
    """
    reads_writes = ["I1, fh", "I1, tl", "I2, fh", "I2, tl", "O, fh", "O, tl", "O, fl", "O, th"]
    return {
        "name": f"bench_{rows}x{cols}",
        "memories": {
            "reg_w": {"size": 8, "r_cost": 0.01, "w_cost": 0.01, "area": 0, "latency": 1, "operands": ["I2"],
                      "ports": [_port("r_port_1", "read", 8, ["I2, tl"]), _port("w_port_1", "write", 8, ["I2, fh"])],
                      "served_dimensions": []},
            "reg_i": {"size": 8, "r_cost": 0.01, "w_cost": 0.01, "area": 0, "latency": 1, "operands": ["I1"],
                      "ports": [_port("r_port_1", "read", 8, ["I1, tl"]), _port("w_port_1", "write", 8, ["I1, fh"])],
                      "served_dimensions": []},
            "reg_o": {"size": 32, "r_cost": 0.02, "w_cost": 0.02, "area": 0, "latency": 1, "operands": ["O"],
                      "ports": [_port("r_port_1", "read", 32, ["O, tl", "O, th"]),
                                _port("w_port_1", "write", 32, ["O, fh", "O, fl"])],
                      "served_dimensions": []},
            "glb": {"size": glb_bytes * 8, "r_cost": 20.0, "w_cost": 20.0, "area": 0, "latency": 1,
                    "operands": ["I1", "I2", "O"],
                    "ports": [_port("r_port_1", "read", glb_bits_per_cycle, ["I1, tl", "I2, tl", "O, tl", "O, th"]),
                              _port("w_port_1", "write", glb_bits_per_cycle, ["I1, fh", "I2, fh", "O, fh", "O, fl"])],
                    "served_dimensions": ["D1", "D2"]},
            "dram": {"size": 10_000_000_000, "r_cost": 640.0, "w_cost": 640.0, "area": 0, "latency": 1,
                     "operands": ["I1", "I2", "O"],
                     "ports": [_port("rw_port_1", "read_write", dram_bits_per_cycle, reads_writes)],
                     "served_dimensions": ["D1", "D2"]},
        },
        "operational_array": {"unit_energy": 0.2, "unit_area": 1, "dimensions": ["D1", "D2"],
                              "sizes": [rows, cols]},
    }


def mapping_spec(dataflow: str, rows: int = 32, cols: int = 32) -> list[dict[str, Any]]:
    """The default spatial mapping for every layer: ``SPATIAL_MAPPINGS[dataflow]`` on (D1, D2)."""
    if dataflow not in SPATIAL_MAPPINGS:
        raise PeerError(f"no ZigZag spatial mapping for dataflow {dataflow!r}; have {sorted(SPATIAL_MAPPINGS)}")
    d1, d2 = SPATIAL_MAPPINGS[dataflow]
    return [{"name": "default", "spatial_mapping": {"D1": [f"{d1}, {cols}"], "D2": [f"{d2}, {rows}"]},
             "memory_operand_links": {"O": "O", "W": "I2", "I": "I1"}}]


_DRIVER = PEAK_RSS_SNIPPET + r"""
import json, logging, sys, time, warnings
t0 = time.perf_counter()
from zigzag.api import get_hardware_performance_zigzag
t_import = time.perf_counter() - t0
logging.disable(logging.CRITICAL)
warnings.simplefilter("ignore")
workload = json.load(open(sys.argv[1]))
t1 = time.perf_counter()
energy, latency, cmes = get_hardware_performance_zigzag(
    workload=workload, accelerator=sys.argv[2], mapping=sys.argv[3], opt="latency", dump_folder=sys.argv[4],
    loma_show_progress_bar=False)
t_search = time.perf_counter() - t1
layers = []
for cme, _ in cmes[0][1]:
    layers.append(dict(name=str(cme.layer.name), latency=float(cme.latency_total2),
                       ideal=float(cme.ideal_cycle), ideal_temporal=float(cme.ideal_temporal_cycle)))
print("ZIGZAG_RESULT " + json.dumps(dict(energy_pj=float(energy), latency_cycles=float(latency), import_s=t_import,
                                        search_s=t_search, layers=layers)))
_print_peak_rss()
"""


@dataclass(frozen=True)
class ZigZagRun:
    network: str
    dataflow: str
    layers: int
    latency_cycles: float
    ideal_cycles: float
    search_s: float  # the API call: workload parse, LOMA search, cost model, its result files
    wall_s: float  # the whole child process, Python start and imports included
    peak_rss_mb: float
    per_layer: tuple[dict, ...] = ()


def require_zigzag() -> Path:
    if not ZIGZAG_PYTHON.exists():
        raise PeerError(f"ZigZag venv missing ({ZIGZAG_PYTHON}); run: bash bench/setup_peers.sh")
    return ZIGZAG_PYTHON


def yaml_text(data: Any) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False)


def run_zigzag(layers: list[dict[str, Any]], dataflow: str, network: str = "", rows: int = 32, cols: int = 32,
               timeout_s: float | None = None) -> ZigZagRun:
    """Run ZigZag's default flow (LOMA, lpf_limit 6, latency) on ``layers``; time and peak RSS of the child."""
    python = require_zigzag()
    with tempfile.TemporaryDirectory(prefix="zigzag-") as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "workload.json").write_text(json.dumps(layers))
        (tmp_path / "accelerator.yaml").write_text(yaml_text(accelerator_spec(rows, cols)))
        (tmp_path / "mapping.yaml").write_text(yaml_text(mapping_spec(dataflow, rows, cols)))
        (tmp_path / "driver.py").write_text(_DRIVER)
        wall, rss_mb, out, err, code = run_child(
            [str(python), "driver.py", "workload.json", "accelerator.yaml", "mapping.yaml", str(tmp_path / "out")],
            cwd=tmp, timeout_s=timeout_s)
    result = next((line for line in out.splitlines() if line.startswith("ZIGZAG_RESULT ")), None)
    if code != 0 or result is None:
        tail = (err or out).strip().splitlines()[-3:]
        raise PeerError(f"ZigZag failed (exit {code}): {' | '.join(tail)}")
    data = json.loads(result[len("ZIGZAG_RESULT "):])
    return ZigZagRun(network, dataflow, len(layers), data["latency_cycles"],
                     sum(layer["ideal"] for layer in data["layers"]), data["search_s"], wall, rss_mb,
                     tuple(data["layers"]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", default="resnet18,mobilenetv2")
    parser.add_argument("--dataflows", default="ws", help="spatial mappings: ws (K x C), os (K x OX)")
    parser.add_argument("--array", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--json", default=None, help="write the runs here as JSON")
    args = parser.parse_args(argv)
    runs = []
    try:
        for network in [n for n in args.networks.split(",") if n]:
            layers = zigzag_workload(capture_network(network))
            for dataflow in [d for d in args.dataflows.split(",") if d]:
                run = run_zigzag(layers, dataflow, network, args.array, args.array, args.timeout)
                runs.append(run)
                print(f"{network} {dataflow} {args.array}x{args.array}: {run.layers} layers, latency "
                      f"{run.latency_cycles:.0f} cycles (ideal {run.ideal_cycles:.0f}); search {run.search_s:.1f} s, "
                      f"process {run.wall_s:.1f} s, peak RSS {run.peak_rss_mb:.0f} MB")
    except (PeerError, CodesignError, ValueError) as exc:  # bad input or a failed peer: one line
        print(f"peer_zigzag: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        from codesign.atomic_write import write_text_atomic

        write_text_atomic(args.json, json.dumps([run.__dict__ for run in runs], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
