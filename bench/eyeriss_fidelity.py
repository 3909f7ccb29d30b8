"""AlexNet's five conv layers on the ``eyeriss`` preset beside the Eyeriss chip's measurements (JSSC 2017).

Chen, Krishna, Emer, Sze, "Eyeriss: An Energy-Efficient Reconfigurable Accelerator for Deep Convolutional
Neural Networks", IEEE JSSC 52(1), 2017: Table V (batch 4, 200 MHz core, 60 MHz link clock, 16-bit) and
Sec. IV-B (RLC), V-A (GLB allocation). Per layer: MACs, cycles, DRAM bytes by operand against the compulsory
bytes (each layer's input, weights and output once, dense 16-bit), the refetch factors of the block schedule
with their closed form (``dataflow.blocking.refetch_factor``), and the factors between our totals and the
chip's, each from a formula over measured numbers (bench/README.eyeriss.md derives them). Usage:

    .venv/bin/python bench/eyeriss_fidelity.py [--json FILE]     # about 10 s
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
if str(REPO_DIR) not in sys.path:
    sys.path.insert(0, str(REPO_DIR))

from codesign.arch_loader import load_arch  # noqa: E402
from codesign.atomic_write import write_text_atomic  # noqa: E402
from codesign.cli import build_parser  # noqa: E402
from codesign.cli.model_args import workload_from_args  # noqa: E402
from codesign.sim_report import json_text  # noqa: E402
from dataflow import row_stationary, search  # noqa: E402
from dataflow.blocking import refetch_factor  # noqa: E402
from dataflow.mapping import OPERAND_DIMS, problem_of  # noqa: E402
from sim import engine  # noqa: E402
from sim.engine import simulate  # noqa: E402

MODEL = f"{BENCH_DIR / 'eyeriss_alexnet.py'}:model"
ARCH = "eyeriss"
BATCH = 4
WORD_BYTES = 2  # the paper counts accesses of 16-bit values (Table V, footnote 2)
CONVS = {"features.0": "CONV1", "features.3": "CONV2", "features.6": "CONV3", "features.8": "CONV4",
         "features.10": "CONV5"}
LINK_MHZ = 60  # Table V: link clock 60 MHz, 64-bit bus (Sec. III-A)
RLC_BITS = 64 / 3  # Sec. IV-B: three (5-bit run, 16-bit level) pairs per 64-bit word
RLC_MAX_RUN = 31

# JSSC 2017 Table V (AlexNet CONV layers, 1 V, N = 4): total and processing latency (ms), MACs (M), zeros in
# the ifmaps (%), GLB and DRAM accesses (MB, 16-bit accesses x 2 bytes).
PAPER = {
    "CONV1": dict(latency_ms=20.9, processing_ms=16.5, macs_m=422, ifmap_zeros=0.0001, glb_mb=18.5, dram_mb=5.0),
    "CONV2": dict(latency_ms=41.9, processing_ms=39.2, macs_m=896, ifmap_zeros=0.387, glb_mb=77.6, dram_mb=4.0),
    "CONV3": dict(latency_ms=23.6, processing_ms=21.8, macs_m=598, ifmap_zeros=0.725, glb_mb=50.2, dram_mb=3.0),
    "CONV4": dict(latency_ms=18.4, processing_ms=16.0, macs_m=449, ifmap_zeros=0.793, glb_mb=37.4, dram_mb=2.1),
    "CONV5": dict(latency_ms=10.5, processing_ms=10.0, macs_m=299, ifmap_zeros=0.776, glb_mb=24.9, dram_mb=1.3),
}
PAPER_TOTAL = dict(latency_ms=115.3, processing_ms=103.5, macs_m=2663, dram_mb=15.4, fps=34.7,
                   accesses_per_mac=0.0029)
# Zeros in each layer's ofmap as written (after ReLU, before pooling): the next layer's ifmap zeros where no
# pooling sits between (CONV3 -> CONV4 -> CONV5); across a pooling layer (CONV1, CONV2) the next layer's pooled
# ifmap zeros, a lower bound (max pooling removes zeros); CONV5's its own ifmap zeros. Assumptions.
OFMAP_ZEROS = {"CONV1": 0.387, "CONV2": 0.725, "CONV3": 0.793, "CONV4": 0.776, "CONV5": 0.776}


def rlc_ratio(zeros: float) -> float:
    """Stored over dense bits of the chip's RLC for a zero share ``zeros`` spread at random: one 64/3-bit
    (run, level) pair per nonzero, plus about one per 32 consecutive zeros (a run longer than 31 needs an extra
    pair; per value, the chance it closes such a stretch is about zeros^32), over 16 bits a value."""
    return ((1.0 - zeros) + zeros ** (RLC_MAX_RUN + 1)) * RLC_BITS / 16


def load(arch_name: str = ARCH):
    arch = load_arch(arch_name)
    args = build_parser().parse_args(["sim", MODEL, "--arch", arch_name, "--dataflow", "rs", "--bits", "16,16"])
    return arch, workload_from_args(args, arch)


def run(workload, arch, objective: str) -> dict:
    return json.loads(json_text([simulate(workload, arch, "rs", objective=objective)], False))


FILTER_SHARE_BYTES = 8 * 1024  # Sec. V-A: 8 kB of the 108 kB GLB preloads the next pass's filters


def spec_variant(arch, *, split: bool, word_bits: int, compress_input: bool):
    """The preset with its chip options set as given: the split GLB allocation (``glb.allocation: split``,
    ``filter_bytes``), the RLC packing (``sparsity.activations.word_bits``) and whether the network's input is
    RLC coded (``compress_network_input``). All off is the preset as it was before these options existed."""
    glb = replace(arch.glb, allocation="split" if split else "double_buffered",
                  filter_bytes=FILTER_SHARE_BYTES if split else 0)
    acts = replace(arch.sparsity.activations, word_bits=word_bits, compress_network_input=compress_input)
    return replace(arch, glb=glb, sparsity=replace(arch.sparsity, activations=acts))


def before(arch):
    """The preset before the chip options: double-buffered GLB, 21-bit RLC entries, the image RLC coded."""
    return spec_variant(arch, split=False, word_bits=0, compress_input=True)


def run_pre_relu_output(workload, arch, objective: str) -> dict:
    """``run`` as the engine was before a fused chain's output density counted: the conv's output stored at its
    own (pre-ReLU) density (a private monkeypatch, restored after)."""
    saved = engine._written_problem
    engine._written_problem = lambda layer, chain, by_name, alone, cache: alone.problem
    try:
        return run(workload, arch, objective)
    finally:
        engine._written_problem = saved


def every_row_below_two_sets(total: int, unit: int) -> list[int]:
    """The RS output-row block choices of the proposed row-stationary patch (bench/README.eyeriss.md): the
    sets-aligned ones, plus every row count below two PE sets' worth (a strip whose last set runs partial), so a
    GLB block can hold the psums of more filters for fewer rows."""
    values = _BLOCK_CHOICES(total, unit)
    if unit <= 1:
        return values
    return sorted(set(values) | set(range(1, min(total, 2 * unit) + 1)))


_BLOCK_CHOICES = search.block_choices


def run_rs_patch(workload, arch, objective: str) -> dict:
    """``run`` with the RS row-block choices of the patch (a private monkeypatch of the RS module's view of
    ``search.block_choices``, restored after); the other dimensions' choices are unchanged."""
    class _Search:
        def __getattr__(self, name):
            return every_row_below_two_sets if name == "block_choices" else getattr(search, name)
    saved = row_stationary.search
    row_stationary.search = _Search()
    try:
        return run(workload, arch, objective)
    finally:
        row_stationary.search = saved


def layer_rows(result: dict, workload, arch) -> list[dict]:
    by_name = {layer.name: layer for layer in workload.layers}
    rows = []
    for item in result["layers"]:
        if item["name"] not in CONVS:
            continue
        layer = by_name[item["name"]]
        problem = problem_of(layer, arch)
        tiles, order = item["mapping"]["tiles"]["glb"], tuple(item["mapping"]["temporal_order"]["dram"])
        sizes = {"m": problem.m, "k": problem.k, "n": problem.n}
        trips = {d: math.ceil(sizes[d] / tiles[d]) for d in "mkn"}
        factor = {op: refetch_factor(trips, order, OPERAND_DIMS[op]) for op in ("input", "weight", "output")}
        if problem.streams_weights:  # a split GLB reads every block's filters: trips(m) times
            factor["weight"] = trips["m"]
        words = item["accesses"]["dram"]
        bits = item["bits_moved"]["dram"]
        compulsory = {"input": layer.input_bytes // WORD_BYTES,
                      "weight": problem.groups * problem.k * problem.n,  # the filters (biases add on the way out)
                      "output": layer.output_bytes // WORD_BYTES}
        out_final = compulsory["output"]
        rows.append(dict(
            layer=CONVS[item["name"]], macs=item["macs"], cycles=item["cycles"], compute_cycles=item["compute_cycles"],
            dram_stall_cycles=item["dram_stall_cycles"], glb_stall_cycles=item["glb_stall_cycles"],
            order=order, block=tiles, trips=trips, rf=item["mapping"]["rf"], refetch_closed_form=factor,
            words=words, compulsory_words=compulsory,
            refetch_words={op: words[op] - compulsory[op] for op in compulsory},
            psum_spill_words=words["output"] - out_final,
            dram_bytes=item["dram_bytes"], compulsory_bytes=sum(compulsory.values()) * WORD_BYTES,
            stored_ratio={op: (bits[op] / (words[op] * 16) if words[op] else 1.0) for op in ("input", "output")},
            input_density=layer.input_density,
            # the density of what the layer writes: its fused chain's last output (a ReLU's zeros)
            output_density=by_name[item["fused"][-1]].output_density if item["fused"] else layer.output_density,
        ))
    for row in rows:
        row["chip_rlc_bytes"] = chip_rlc_bytes(row)
    return rows


def totals(rows: list[dict], clock_mhz: float) -> dict:
    macs = sum(r["macs"] for r in rows)
    cycles = sum(r["cycles"] for r in rows)
    dram = sum(r["dram_bytes"] for r in rows)
    return dict(macs=macs, cycles=cycles, latency_ms=cycles / clock_mhz / 1e3,
                fps=BATCH * clock_mhz * 1e6 / cycles, dram_bytes=dram,
                accesses_per_mac=dram / WORD_BYTES / macs,
                compulsory_accesses_per_mac=sum(r["compulsory_bytes"] for r in rows) / WORD_BYTES / macs)


def chip_rlc_bytes(row: dict) -> float:
    """The layer's DRAM bytes under the chip's RLC (Sec. IV-B): the image (CONV1's input) dense, every other
    ifmap and every ofmap at ``rlc_ratio`` of the paper's zero shares, filters and partial sums dense."""
    name = row["layer"]
    r_in = 1.0 if name == "CONV1" else rlc_ratio(PAPER[name]["ifmap_zeros"])
    r_out = rlc_ratio(OFMAP_ZEROS[name])
    w = row["words"]
    final = row["compulsory_words"]["output"]
    spill = w["output"] - final
    return WORD_BYTES * (w["input"] * r_in + w["weight"] + final * r_out + spill)


def serial_cycles(row: dict, bytes_per_cycle: float) -> float:
    """Cycles with DRAM transfers not overlapped with processing (the chip's Table V total latency):
    compute + GLB stalls + every DRAM byte at ``bytes_per_cycle``."""
    return row["compute_cycles"] + row["glb_stall_cycles"] + row["dram_bytes"] / bytes_per_cycle


def factors(rows: list[dict], arch) -> dict:
    """The factors between our totals and the chip's, each a formula over measured numbers."""
    macs = sum(r["macs"] for r in rows)
    ours = sum(r["dram_bytes"] for r in rows)
    compulsory = sum(r["compulsory_bytes"] for r in rows)
    refetch = {op: sum(r["refetch_words"][op] for r in rows) * WORD_BYTES for op in ("input", "weight")}
    spill = sum(r["psum_spill_words"] for r in rows) * WORD_BYTES
    dense_moved = sum(sum(r["words"].values()) for r in rows) * WORD_BYTES
    chip_rlc = sum(chip_rlc_bytes(r) for r in rows)
    conv1_image = next(r for r in rows if r["layer"] == "CONV1")
    compute = sum(r["compute_cycles"] for r in rows)
    clock = arch.clock_mhz * 1e6
    link = arch.dram.bytes_per_cycle * LINK_MHZ / arch.clock_mhz
    return dict(
        dram_bytes=ours, compulsory_bytes=compulsory, dense_bytes_moved=dense_moved,
        refetch_bytes=refetch, psum_spill_bytes=spill,
        preset_rlc_bytes=ours - dense_moved,
        conv1_image_rlc_bytes=conv1_image["words"]["input"] * WORD_BYTES * (conv1_image["stored_ratio"]["input"] - 1),
        chip_rlc_bytes=chip_rlc, chip_rlc_accesses_per_mac=chip_rlc / WORD_BYTES / macs,
        paper_dram_bytes=PAPER_TOTAL["dram_mb"] * 1e6,
        compute_fps=BATCH * clock / compute,
        link_bytes_per_core_cycle=link,
        serial_fps_preset_bus=BATCH * clock / sum(serial_cycles(r, arch.dram.bytes_per_cycle) for r in rows),
        serial_fps_chip_link=BATCH * clock / sum(serial_cycles(r, link) for r in rows),
        paper_processing_fps=BATCH * 1e3 / PAPER_TOTAL["processing_ms"],
    )


def print_layers(title: str, rows: list[dict], clock_mhz: float) -> None:
    print(title)
    print(f"{'layer':6} {'MACs':>5} {'cycles':>8} {'ms':>5} {'paper ms':>10} {'DRAM in/w/out kB':>20} "
          f"{'compulsory kB':>17} {'refetch in/w kB':>15} {'factor':>8} {'order':>5} {'dens in/out':>11} "
          f"{'MB':>5} {'chip-RLC MB':>11} {'paper MB':>8}")
    for r in rows:
        w, c = r["words"], r["compulsory_words"]
        f = r["refetch_closed_form"]
        paper = PAPER[r["layer"]]
        kb = lambda n: f"{n * WORD_BYTES / 1e3:.0f}"  # noqa: E731
        print(f"{r['layer']:6} {r['macs'] / 1e6:4.0f}M {r['cycles']:8d} {r['cycles'] / clock_mhz / 1e3:5.1f} "
              f"{paper['processing_ms']:4.1f}/{paper['latency_ms']:4.1f} "
              f"{kb(w['input']):>6}/{kb(w['weight']):>5}/{kb(w['output']):>6} "
              f"{kb(c['input']):>6}/{kb(c['weight']):>4}/{kb(c['output']):>5} "
              f"{kb(r['refetch_words']['input']):>7}/{kb(r['refetch_words']['weight']):>5} "
              f"{f['input']:>2}/{f['weight']:>2}/{f['output']:>2} {''.join(r['order']):>5} "
              f"{r['input_density']:5.2f}/{r['output_density']:4.2f} {r['dram_bytes'] / 1e6:5.2f} "
              f"{r['chip_rlc_bytes'] / 1e6:11.2f} {paper['dram_mb']:8.1f}")


def print_totals(label: str, t: dict) -> None:
    print(f"{label:34} {t['fps']:6.1f} frames/s  {t['accesses_per_mac']:.4f} DRAM accesses/MAC  "
          f"({t['dram_bytes'] / 1e6:.2f} MB; compulsory {t['compulsory_accesses_per_mac']:.4f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default=str(REPO_DIR / "build" / "bench" / "eyeriss_fidelity.json"),
                        help="where to write the JSON (default build/bench/eyeriss_fidelity.json)")
    args = parser.parse_args(argv)
    arch, workload = load()
    report = {"paper": {"layers": PAPER, "total": PAPER_TOTAL, "ofmap_zeros_assumed": OFMAP_ZEROS}, "runs": {}}
    old = before(arch)
    link_rate = arch.dram.bytes_per_cycle * LINK_MHZ / arch.clock_mhz  # the 64-bit link at 60 MHz, per core cycle

    def at_link(spec):
        return replace(spec, dram=replace(spec.dram, bytes_per_cycle=link_rate))

    def add(name, spec, result):
        rows = layer_rows(result, workload, spec)
        report["runs"][name] = {"layers": rows, "totals": totals(rows, arch.clock_mhz), "factors": factors(rows, arch)}

    for objective in ("latency", "energy"):  # the preset: split GLB, packed RLC, image dense
        add(objective, arch, run(workload, arch, objective))
    for objective in ("latency", "energy"):
        add(f"{objective}_before", old, run(workload, old, objective))
    for objective in ("latency", "energy"):
        add(f"{objective}_before_pre_relu_output", old, run_pre_relu_output(workload, old, objective))
    for objective in ("latency", "energy"):  # each option alone on the old preset
        split_only = spec_variant(arch, split=True, word_bits=0, compress_input=True)
        add(f"{objective}_split_only", split_only, run(workload, split_only, objective))
    rlc_only = spec_variant(arch, split=False, word_bits=64, compress_input=False)
    add("energy_rlc_only", rlc_only, run(workload, rlc_only, "energy"))
    add("energy_link", at_link(arch), run(workload, at_link(arch), "energy"))
    add("energy_before_link", at_link(old), run(workload, at_link(old), "energy"))
    for objective in ("latency", "energy"):
        add(f"{objective}_before_rs_patch", old, run_rs_patch(workload, old, objective))
    for name, entry in report["runs"].items():
        print_layers(f"\n{ARCH}, run {name}: conv layers (kB of 16-bit words; factor: closed-form refetch "
                     "in/w/out; paper ms: processing/total)", entry["layers"], arch.clock_mhz)
    print()
    print(f"{'JSSC 2017 Table V (chip)':34} {PAPER_TOTAL['fps']:6.1f} frames/s  "
          f"{PAPER_TOTAL['accesses_per_mac']:.4f} DRAM accesses/MAC  ({PAPER_TOTAL['dram_mb']:.2f} MB)")
    for name, entry in report["runs"].items():
        print_totals(f"ours, {name}", entry["totals"])
    for name, entry in report["runs"].items():
        f = entry["factors"]
        print(f"\nfactors, {name}:")
        print(f"  refetch (block schedule) input {f['refetch_bytes']['input'] / 1e6:.2f} MB, weight "
              f"{f['refetch_bytes']['weight'] / 1e6:.2f} MB, psum spill {f['psum_spill_bytes'] / 1e6:.2f} MB; "
              f"dense moved {f['dense_bytes_moved'] / 1e6:.2f} MB vs compulsory {f['compulsory_bytes'] / 1e6:.2f} MB")
        print(f"  preset RLC at measured densities {f['preset_rlc_bytes'] / 1e6:+.2f} MB (of which CONV1's image "
              f"{f['conv1_image_rlc_bytes'] / 1e6:+.2f} MB); chip RLC at the paper's zeros: "
              f"{f['chip_rlc_bytes'] / 1e6:.2f} MB = {f['chip_rlc_accesses_per_mac']:.4f} accesses/MAC")
        print(f"  frames/s: compute only {f['compute_fps']:.1f} (paper processing {f['paper_processing_fps']:.1f}); "
              f"DRAM not overlapped at 8 B/cycle {f['serial_fps_preset_bus']:.1f}, at the 60 MHz link "
              f"({f['link_bytes_per_core_cycle']:.1f} B/core cycle) {f['serial_fps_chip_link']:.1f}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.json, json.dumps(report, indent=1, default=list) + "\n")
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
