"""Row stationary (Eyeriss: Chen, Emer, Sze, ISCA 2016, Sec. IV; JSSC 2017): 1-D row primitives on PE sets.

A primitive is one PE convolving an S-tap filter row over one input row into one output row of Q
values. A PE set of r x e PEs (r = min(R, rows) filter rows, e = min(P, cols) output rows) computes
e output rows: filter rows are multicast along the set's rows, input rows diagonally, partial sums
accumulate up the columns. Each column computes its own output row, so a GLB block's output rows
(a strip of one image, or several whole images: ``rows_b = bm / Q``) are dealt to sets e at a time. Each PE keeps p filters x q channels in its
register files (p*q*S' <= weight RF, q*S' <= input RF, p <= psum RF, S' = min(S, RFs): longer filter
rows run as ceil(S/S') segments; a PE holding a single tap of a longer row is a MappingError), so a pass
runs p*q*S'*Q MACs per PE.
Sets replicate over the array: (rows // r) * (cols // e) sets run concurrently (the folding of
Sec. V-B onto 12 x 14). Per GLB block of rows_b output rows, cb channels and kb filters:

    units  = ceil(rows_b/e) * ceil(kb/p) * ceil(cb/q) * ceil(R/rows) * ceil(S/S')
    passes = ceil(units / sets) * wide_operand_passes
    cycles = passes * interval + (p' - 1)                 (the passes back to back, the last one drained)

with the pass timing of the generated RS array (``codesign.contract.rs_timing``, docs/rs-array.md), p' =
ceil(p/pack) filter lanes and nz = ceil(p'*q*S'*d) the busiest PE's nonzero weights (d = weight density when
zero-skipping, else nz = p'*q*S'):

    interval = p'*q*S' + Q * max(nz, p', q*n) + 1       (filter fill, Q columns, back to idle)

with n = min(U, S') the inputs a window takes anew per column at column stride U. These are the RTL's cycles
for layers of equal row and column strides and dilation 1 (``rtl_runs``; the array must be built with
``max_stride >= U``); a dilated layer, or one of unequal strides, is costed with the same formula, a mapping
the generated array does not run (``rs_timing.runs_geometry``, docs/rs-array.md section 5).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Sequence

import numpy as np

from codesign.arch import ArchSpec
from codesign.contract import rs_timing
from codesign.errors import MappingError
from dataflow import registry, search
from dataflow.blocking import DRAM_ORDERS, BlockSchedule
from dataflow.interface import DataflowModel, OnChip, ReferenceBlock
from dataflow.mapping import GEMM_DIMS, Mapping, Problem, check_fits, glb_bits_needed

__all__ = ["SPATIAL_ROWS", "SPATIAL_COLS", "skips_zero_weights", "RowStationary", "MODEL", "set_shape", "check_filter_row_fits", "segment_taps",
           "rf_choices", "pass_cycles", "passes_cycles", "block_cycles", "rtl_runs"]

SPATIAL_ROWS = "R (filter rows)"
SPATIAL_COLS = "P (output rows, E)"


def skips_zero_weights(problem: Problem) -> bool:
    """A PE walks its filter row from its register file and skips zero weights when the accelerator says
    so (``sparsity.weights.action: skip``, the default): docs/simulator.md, "Pruning" and "Sparsity"."""
    return problem.weight_action == "skip"


def rtl_runs(problem: Problem, max_stride: int | None = None) -> bool:
    """Whether the layer's passes are passes of a generated RS array (built for strides up to ``max_stride``;
    None: any): equal row and column strides, dilation 1, so that the pass cycles this model charges are the
    RTL's (``codesign.contract.rs_timing.runs_geometry``)."""
    conv = problem.conv
    return rs_timing.runs_geometry(tuple(conv.stride), tuple(conv.dilation), max_stride)


def set_shape(problem: Problem, arch: ArchSpec) -> tuple[int, int, int, int, int]:
    """(r, e, r_folds, e_folds, sets): one PE set's rows and columns, folds of R and P, sets per array."""
    conv = problem.conv
    r = min(conv.r, arch.rows)
    e = min(conv.p, arch.cols)
    return r, e, math.ceil(conv.r / r), math.ceil(conv.p / e), (arch.rows // r) * (arch.cols // e)


def check_filter_row_fits(problem: Problem, arch: ArchSpec) -> None:
    """A row-stationary PE slides a filter row over an input row out of its register files; a row longer than
    they hold runs as segments of what fits (``segment_taps``), but a PE that holds a single tap of a longer
    row has no row primitive at all: a MappingError says so, rather than a mapping that spends nearly all its
    cycles moving partial sums between one-tap passes."""
    pe, s = arch.pe, problem.conv.s
    if s > 1 and min(pe.weight_rf_words, pe.activation_rf_words) < 2:
        raise MappingError(
            f"layer {problem.name}: row stationary needs room for a filter row (S={s} taps) in each PE's register "
            f"files; the PEs of {arch.name} hold {pe.weight_rf_words} weight and {pe.activation_rf_words} "
            "activation words"
        )


def segment_taps(problem: Problem, arch: ArchSpec) -> int:
    """Taps of a filter-row segment: a row longer than the register files hold is split into segments
    run as separate primitives whose partial sums accumulate (like a fold over channels)."""
    pe = arch.pe
    return max(1, min(problem.conv.s, pe.weight_rf_words, pe.activation_rf_words))


def rf_choices(problem: Problem, arch: ArchSpec) -> list[tuple[int, int]]:
    """Legal (p, q): filters and channels one PE keeps in its register files (every PE has at least one
    word of each, so (1, 1) is always legal)."""
    pe, s = arch.pe, segment_taps(problem, arch)
    kg, cg = problem.conv.k // problem.conv.groups, problem.conv.c // problem.conv.groups
    choices = []
    for p in _powers_up_to(min(kg, pe.psum_rf_words, pe.weight_rf_words // s)):
        for q in _powers_up_to(min(cg, pe.activation_rf_words // s, pe.weight_rf_words // (s * p))):
            choices.append((p, q))
    return choices


def _powers_up_to(limit: int) -> list[int]:
    values, v = [], 1
    while v <= limit:
        values.append(v)
        v *= 2
    if limit >= 1 and values[-1] != limit:
        values.append(limit)
    return values


def _pass_shape(problem: Problem, arch: ArchSpec, p: int, q: int) -> tuple[int, int, int, int, int | None, int]:
    """(p', q, S', Q, nonzeros, U) of one pass as ``codesign.contract.rs_timing`` takes it: p' = ceil(p/pack)
    filter lanes; nonzeros the busiest PE's when zero weights are skipped (None: dense); U the column stride."""
    lanes, taps = -(-p // problem.pack), segment_taps(problem, arch)
    nonzeros = None
    if skips_zero_weights(problem):
        nonzeros = rs_timing.estimated_nonzeros(lanes, q, taps, problem.weight_density)
    return lanes, q, taps, problem.conv.q, nonzeros, problem.conv.stride[1]


def pass_cycles(problem: Problem, arch: ArchSpec, p: int, q: int) -> int:
    """Edges from one pass's command to the next's, back to back (``rs_timing.issue_interval``)."""
    return rs_timing.issue_interval(*_pass_shape(problem, arch, p, q))


def passes_cycles(problem: Problem, arch: ArchSpec, p: int, q: int, passes):
    """Cycles of ``passes`` identical passes back to back, the last one drained (0 for none)."""
    lanes = _pass_shape(problem, arch, p, q)[0]
    passes = np.asarray(passes)
    return np.where(passes > 0, passes * pass_cycles(problem, arch, p, q) + rs_timing.last_pass_correction(lanes), 0)


def block_cycles(problem: Problem, arch: ArchSpec, p: int, q: int, rows_b, cb, kb) -> np.ndarray:
    """Cycles of GLB blocks of rows_b output rows x cb channels x kb filters (formula in the module doc)."""
    r, e, r_folds, _, sets = set_shape(problem, arch)
    s_folds = -(-problem.conv.s // segment_taps(problem, arch))
    units = -(-np.asarray(rows_b) // e) * -(-np.asarray(kb) // p) * -(-np.asarray(cb) // q) * r_folds * s_folds
    passes = -(-units // sets)
    return passes_cycles(problem, arch, p, q, passes * problem.passes)


def _fold_sizes(total: int, chunk: int) -> list[int]:
    full, rest = divmod(total, chunk)
    return [chunk] * full + ([rest] if rest else [])


class RowStationary(DataflowModel):
    """Row stationary on a multicast PE array (formulas in the module doc)."""

    name = "rs"
    description = "row stationary: filter rows held in the PEs' register files, 1-D convolutions on PE sets"

    def candidates(self, problem: Problem, arch: ArchSpec, objective: str, limit: int) -> list[Mapping]:
        """GLB blocks of whole output rows, channels and filters, times every legal (p, q) register-file
        loop, every DRAM order; ranked by the estimate. MappingError when a PE cannot hold a filter row."""
        check_filter_row_fits(problem, arch)
        conv = problem.conv
        taps = conv.r * conv.s
        rows, channels = problem.m // conv.q, problem.k // taps
        e = set_shape(problem, arch)[1]
        choices = {
            "m": [conv.q * v for v in search.block_choices(rows, min(e, rows))],
            "k": [taps * v for v in search.block_choices(channels, 1)],
            "n": search.block_choices(problem.n, 1),
        }
        blocks = search.grid(choices)
        keep = search.fits(problem, blocks, arch)
        if not keep.any():
            check_fits(problem, (conv.q * min(e, rows), taps, 1), arch)
            raise MappingError(f"layer {problem.name}: no mapping fits the global buffer")
        blocks = {d: v[keep] for d, v in blocks.items()}
        pool = []
        for p, q in rf_choices(problem, arch):
            busy = problem.groups * block_cycles(
                problem, arch, p, q, blocks["m"] // conv.q, blocks["k"] // taps, blocks["n"]) * (
                (-(-rows // (blocks["m"] // conv.q))) * (-(-channels // (blocks["k"] // taps)))
                * (-(-problem.n // blocks["n"])))
            busy = busy.astype(np.float64)
            zeros = np.zeros(busy.shape)
            for order in DRAM_ORDERS:
                value, cycles = search.score(objective, problem, arch, blocks, order, busy, zeros, zeros)

                def build(i, order=order, p=p, q=q):
                    block = tuple(int(blocks[d][i]) for d in GEMM_DIMS)
                    return Mapping(
                        dataflow=self.name, spatial_rows=SPATIAL_ROWS, spatial_cols=SPATIAL_COLS,
                        dram_order=order, block=block, array_tile=(conv.q * e, taps, p),
                        onchip_order=("output rows/e", "filters/p", "channels/q", "R/rows"),
                        glb_footprint_bits=glb_bits_needed(problem, block),
                        pe_loops=(("filters", p), ("channels", q)),
                    )

                pool.append((value, cycles, build))
        return search.rank(objective, pool, limit)

    def onchip(self, problem: Problem, arch: ArchSpec, mapping: Mapping, sched: BlockSchedule) -> OnChip:
        conv = problem.conv
        p, q = mapping.pe_loop("filters"), mapping.pe_loop("channels")
        rows_b = sched.bm // conv.q
        cb = sched.bk // (conv.r * conv.s)
        kb = sched.bn
        compute = block_cycles(problem, arch, p, q, rows_b, cb, kb).astype(np.int64)

        r, e, _, _, _ = set_shape(problem, arch)
        sh, sw = conv.stride
        dh, dw = conv.dilation
        s_sizes = _fold_sizes(conv.s, segment_taps(problem, arch))
        widths = sum((conv.q - 1) * sw + (si - 1) * dw + 1 for si in s_sizes)  # input columns, all segments
        r_sizes = _fold_sizes(conv.r, r)

        def rows_read_for(ei):  # input rows one e-unit of ei output rows reads, over all R folds
            return sum((ei - 1) * sh + (rj - 1) * dh + 1 for rj in r_sizes)

        full, rest = rows_b // e, rows_b % e
        e_units = -(-rows_b // e)
        rows_read = full * rows_read_for(e) + np.where(rest > 0, rows_read_for(rest), 0)
        filter_groups = -(-kb // p)
        channel_groups = -(-cb // q)

        w_reads = kb * cb * conv.r * conv.s * e_units
        a_reads = filter_groups * cb * rows_read * widths
        outputs = rows_b * conv.q * kb
        c_writes = outputs * channel_groups * len(r_sizes) * len(s_sizes)
        c_reads = c_writes - outputs * sched.k_first.astype(np.int64)

        ab, wb, acc = problem.activation_bits, problem.weight_bits, problem.accumulator_bits
        port_bits = (a_reads * ab + w_reads * wb + (c_reads + c_writes) * acc + sched.load_bits + sched.write_bits)
        macs = problem.macs
        dram = sched.dram_words
        tot = {name: int(v.sum()) for name, v in
               (("w", w_reads), ("a", a_reads), ("cr", c_reads), ("cw", c_writes))}
        noc_in = int((filter_groups * cb * rows_b).sum()) * conv.r * widths
        noc_psum = int((outputs * channel_groups).sum()) * conv.r * len(s_sizes)
        words = {
            "glb": {
                "input": tot["a"] + dram["input"][0],
                "weight": tot["w"] + dram["weight"][0],
                "output": tot["cr"] + tot["cw"] + dram["output"][0] + dram["output"][1],
            },
            "noc": {"input": noc_in, "weight": tot["w"] * e, "output": noc_psum},
            "rf": {"input": macs, "weight": macs, "output": macs},
        }
        operand_bits = {"input": ab, "weight": wb, "output": acc}
        bits = {level: {op: count * operand_bits[op] for op, count in ops.items()} for level, ops in words.items()}
        fill = sched.dram_bits
        bits["glb"]["input"] = tot["a"] * ab + fill["input"][0]
        bits["glb"]["weight"] = tot["w"] * wb + fill["weight"][0]
        bits["glb"]["output"] = (tot["cr"] + tot["cw"]) * acc + fill["output"][0] + fill["output"][1]
        return OnChip(compute=compute, glb_port_bits=port_bits, words=words, bits=bits)

    def adapt(self, mapping: Mapping, problem: Problem, arch: ArchSpec) -> Mapping:
        """Blocks clamped as for any dataflow; the array tile and the filters and channels per PE pass clamped
        to the filters and channels the layer still has."""
        adapted = super().adapt(mapping, problem, arch)
        conv = problem.conv
        p = min(mapping.pe_loop("filters"), conv.k // conv.groups)
        q = min(mapping.pe_loop("channels"), conv.c // conv.groups)
        e = set_shape(problem, arch)[1]
        return replace(adapted, array_tile=(conv.q * e, conv.r * conv.s, p), pe_loops=(("filters", p), ("channels", q)))

    def spatial_utilization(self, problem: Problem, arch: ArchSpec, mapping: Mapping) -> float:
        r, e, _, _, sets = set_shape(problem, arch)
        return sets * r * e / arch.pes

    def mac_slots(self, problem: Problem, arch: ArchSpec) -> float:
        """Zero weights are skipped (a PE walks its compressed filter row), so only nonzero ones take slots."""
        macs = problem.macs
        if skips_zero_weights(problem):
            macs = macs * problem.weight_density
        return macs * problem.passes / problem.pack

    def reference_blocks(self, problem: Problem, mapping: Mapping, arch: ArchSpec,
                         blocks: Sequence[tuple[int, int, int, bool]]) -> list[ReferenceBlock]:
        """Each block's units (e output rows x p filters x q channels x a fold of R x a segment of S) dealt
        to PE sets one by one, pass by pass."""
        return [_reference_block(problem, mapping, arch, *block) for block in blocks]


def _chunks(total: int, size: int) -> list[tuple[int, int]]:
    """(index, size) of ``total`` cut into ``size``-chunks."""
    return [(i, min(size, total - i * size)) for i in range(math.ceil(total / size))]


def _reference_block(problem: Problem, mapping: Mapping, arch: ArchSpec, bm: int, bk: int, bn: int,
                     k_first: bool) -> ReferenceBlock:
    conv = problem.conv
    p, q = mapping.pe_loop("filters"), mapping.pe_loop("channels")
    out_rows, channels, filters = bm // conv.q, bk // (conv.r * conv.s), bn
    r = min(conv.r, arch.rows)
    e = min(conv.p, arch.cols)
    sets = (arch.rows // r) * (arch.cols // e)
    seg = max(1, min(conv.s, arch.pe.weight_rf_words, arch.pe.activation_rf_words))
    ab, wb, acc = problem.activation_bits, problem.weight_bits, problem.accumulator_bits
    units, bits, macs = 0, 0, 0
    words = {"input": 0, "weight": 0, "output": 0}
    for _, ei in _chunks(out_rows, e):
        for _, pf in _chunks(filters, p):
            for ci, qc in _chunks(channels, q):
                for ri, rr in _chunks(conv.r, r):
                    for si, ss in _chunks(conv.s, seg):
                        units += 1
                        macs += pf * qc * rr * ss * ei * conv.q
                        w = pf * qc * rr * ss
                        rows_in = (ei - 1) * conv.stride[0] + (rr - 1) * conv.dilation[0] + 1
                        width = (conv.q - 1) * conv.stride[1] + (ss - 1) * conv.dilation[1] + 1
                        a = qc * rows_in * width
                        c = pf * ei * conv.q
                        reads_psum = not (k_first and ci == 0 and ri == 0 and si == 0)
                        words["weight"] += w
                        words["input"] += a
                        words["output"] += c * (2 if reads_psum else 1)
                        bits += w * wb + a * ab + c * acc * (2 if reads_psum else 1)
    # Every pass lasts the PE's configured loop (codesign.contract.rs_timing): the filter fill, Q columns of
    # the busiest PE's MACs (ceil(p/pack) filters x q channels x S' taps, its nonzero ones when zero weights
    # are skipped; at least p' psums drained and q*min(U, S') inputs staged), back to back; the last pass drains.
    lanes = math.ceil(p / problem.pack)
    nonzeros = None
    if skips_zero_weights(problem):
        nonzeros = rs_timing.estimated_nonzeros(lanes, q, seg, problem.weight_density)
    passes = math.ceil(units / sets) * problem.passes
    # equal passes back to back: sequence_cycles of n of them is n intervals plus the last one's drain
    compute = 0 if passes == 0 else (passes * rs_timing.issue_interval(lanes, q, seg, conv.q, nonzeros,
                                                                       conv.stride[1])
                                     + rs_timing.last_pass_correction(lanes))
    return ReferenceBlock(compute=compute, glb_bits=bits, macs=macs, glb_words=words)


MODEL = registry.register(RowStationary())
