"""The files ``codesign compile`` writes: program.bin (16-byte instructions), program.lst (one line per
instruction with its issue cycle and cycles), weights.bin (the weight image) and manifest.json (layers, DRAM map,
scales, multipliers and shifts, predicted cycles per layer beside the simulator's). All or nothing: the files are
written to a temporary folder beside DIR and moved in only when every one is complete.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path

from codesign.atomic_write import check_folder, current_umask
from codesign.compiler.build import Compiled
from codesign.contract.isa import INSTRUCTION_BYTES, Op, listing_line
from codesign.compiler.program import PARAM_ENTRIES
from codesign.contract.system_timing import ACC_LATENCY, OUTPUT_LATENCY, STAGE_ROWS, VECTOR_LATENCY, WORD_BUFFER_ROWS_FACTOR
from codesign.errors import OutputError

__all__ = ["FILES", "manifest", "listing", "write_artifacts"]

FILES = ("program.bin", "program.lst", "weights.bin", "manifest.json")


def _finite(value: float):
    return value if math.isfinite(value) else ("inf" if value > 0 else "-inf")


def manifest(compiled: Compiled, sqnr_db: float | None = None, model: str = "") -> dict:
    program, timing, arch = compiled.program, compiled.schedule, compiled.target.arch
    sim_layers = {layer.name: layer for layer in compiled.sim.layers}
    layers = []
    for record in program.layers:
        first, last = record["first_instruction"], record["last_instruction"]
        if last >= first:
            start = timing.issue[first]
            end = max(timing.issue[i] + timing.cycles[i] for i in range(first, last + 1))
            predicted = end - start
        else:
            predicted = 0
        entry = dict(record)
        entry["predicted_cycles"] = predicted
        entry["simulator_cycles"] = sum(sim_layers[name].cycles for name in record["layers"] if name in sim_layers)
        layers.append(entry)
    counts: dict[str, int] = {}
    for ins in program.instructions:
        counts[ins.op.name] = counts.get(ins.op.name, 0) + 1
    net = compiled.net
    return {
        "model": model,
        "arch": arch.name,
        "dataflow": compiled.target.dataflow,
        "isa": "docs/isa.md",
        "instruction_bytes": INSTRUCTION_BYTES,
        "instructions": len(program.instructions),
        "instruction_counts": counts,
        "system": {
            "rows": arch.rows, "cols": arch.cols, "glb_bytes": arch.glb.size_bytes, "glb_banks": arch.glb.banks,
            "glb_word_bits": arch.glb.word_bits, "dram_bytes_per_cycle": float(arch.dram.bytes_per_cycle),
            "dram_latency_cycles": arch.dram.latency_cycles, "accumulator_rows": program.acc_rows,
            "staging_rows": STAGE_ROWS, "word_buffer_words": WORD_BUFFER_ROWS_FACTOR * arch.rows,
            "parameter_entries": PARAM_ENTRIES, "instruction_memory_needed": len(program.instructions),
            "glb_peak_bytes": program.glb_peak_bytes,
            "acc_latency": ACC_LATENCY, "output_latency": OUTPUT_LATENCY, "vector_latency": VECTOR_LATENCY,
        },
        "memory_map": program.memory_map,
        "input": {"tensor": net.input_name, "shape_nchw": list(program.input.shape), "channel_pitch": program.input.cp,
                  "scale": net.input_qparams.scale, "zero_point": net.input_qparams.zero_point,
                  "layout": "int8 [N][H][W][channel_pitch], padding channels = zero point"},
        "output": {"tensor": net.output_name, "shape_nchw": list(program.output.shape),
                   "channel_pitch": program.output.cp, "scale": net.output_qparams.scale,
                   "zero_point": net.output_qparams.zero_point, "layout": "int8 [N][H][W][channel_pitch]"},
        "cycles": {"predicted": timing.total_cycles, "boot": timing.boot_cycles,
                   "after_boot": timing.total_cycles - timing.boot_cycles, "simulator": int(compiled.sim.cycles)},
        "reference_sqnr_db": None if sqnr_db is None else _finite(sqnr_db),
        "layers": layers,
    }


def listing(compiled: Compiled) -> str:
    timing = compiled.schedule
    lines = [f"; {len(compiled.program.instructions)} instructions, {INSTRUCTION_BYTES} bytes each; "
             f"'@issue +cycles' from docs/isa.md; boot {timing.boot_cycles} cycles, done at {timing.total_cycles}"]
    for index, ins in enumerate(compiled.program.instructions):
        busy = timing.cycles[index] if ins.op not in (Op.SET, Op.NOP) else None
        lines.append(listing_line(index, ins, timing.issue[index], busy))
    return "\n".join(lines) + "\n"


def write_artifacts(compiled: Compiled, out_dir: str | os.PathLike, sqnr_db: float | None = None,
                    model: str = "") -> Path:
    """Write the four files into ``out_dir`` (created if missing; its parent must exist)."""
    target = check_folder(out_dir)
    parent = target.parent if str(target.parent) else Path(".")
    contents = {
        "program.bin": compiled.binary,
        "program.lst": listing(compiled).encode(),
        "weights.bin": compiled.program.weights,
        "manifest.json": (json.dumps(manifest(compiled, sqnr_db, model), indent=2) + "\n").encode(),
    }
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=parent))
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror}") from None
    try:
        for name, data in contents.items():
            (staging / name).write_bytes(data)
            os.chmod(staging / name, 0o666 & ~current_umask())
        target.mkdir(exist_ok=True)
        for name in contents:
            os.replace(staging / name, target / name)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
