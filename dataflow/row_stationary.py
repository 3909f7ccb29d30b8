"""Row stationary (Eyeriss: Chen, Emer, Sze, ISCA 2016, Sec. IV; JSSC 2017): 1-D row primitives on PE sets.

A primitive is one PE convolving an S-tap filter row over one input row into one output row of Q
values. A PE set of r x e PEs (r = min(R, rows) filter rows, e = min(P, cols) output rows) computes
e output rows: filter rows are multicast along the set's rows, input rows diagonally, partial sums
accumulate up the columns. Each column computes its own output row, so a GLB block's output rows
(a strip of one image, or several whole images: ``rows_b = bm / Q``) are dealt to sets e at a time. Each PE keeps p filters x q channels in its
register files (p*q*S' <= weight RF, q*S' <= input RF, p <= psum RF, S' = min(S, RFs): longer filter
rows run as ceil(S/S') segments), so a pass runs p*q*S'*Q MACs per PE.
Sets replicate over the array: (rows // r) * (cols // e) sets run concurrently (the folding of
Sec. V-B onto 12 x 14). Per GLB block of rows_b output rows, cb channels and kb filters:

    units  = ceil(rows_b/e) * ceil(kb/p) * ceil(cb/q) * ceil(R/rows) * ceil(S/S')
    passes = ceil(units / sets)
    pass   = ceil(ceil(p/pack) * q * S' * Q * d) + r    (d = weight density when zero-skipping, else 1;
                                                         r cycles for the psums to climb the set)
    cycles = passes * pass * wide_operand_passes
"""

from __future__ import annotations

import math

import numpy as np

from codesign.arch import ArchSpec, Dataflow
from codesign.errors import MappingError
from dataflow.blocking import BlockSchedule
from dataflow.mapping import Mapping, Problem
from dataflow.systolic import OnChip

SPATIAL_ROWS = "R (filter rows)"
SPATIAL_COLS = "P (output rows, E)"
ZERO_SKIPPING = True  # a PE walks its compressed filter row and skips zero weights (docs: "Pruning")


def set_shape(problem: Problem, arch: ArchSpec) -> tuple[int, int, int, int, int]:
    """(r, e, r_folds, e_folds, sets): one PE set's rows and columns, folds of R and P, sets per array."""
    conv = problem.conv
    r = min(conv.r, arch.rows)
    e = min(conv.p, arch.cols)
    return r, e, math.ceil(conv.r / r), math.ceil(conv.p / e), (arch.rows // r) * (arch.cols // e)


def segment_taps(problem: Problem, arch: ArchSpec) -> int:
    """Taps of a filter-row segment: a row longer than the register files hold is split into segments
    run as separate primitives whose partial sums accumulate (like a fold over channels)."""
    pe = arch.pe
    return max(1, min(problem.conv.s, pe.weight_rf_words, pe.activation_rf_words))


def rf_choices(problem: Problem, arch: ArchSpec) -> list[tuple[int, int]]:
    """Legal (p, q): filters and channels one PE keeps in its register files; MappingError if none."""
    pe, s = arch.pe, segment_taps(problem, arch)
    kg, cg = problem.conv.k // problem.conv.groups, problem.conv.c // problem.conv.groups
    if pe.weight_rf_words < 1 or pe.activation_rf_words < 1 or pe.psum_rf_words < 1:
        raise MappingError(
            f"layer {problem.name}: row stationary needs at least one weight, input and partial-sum register "
            f"word per PE; the PE has {pe.weight_rf_words}, {pe.activation_rf_words} and {pe.psum_rf_words}"
        )
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


def pass_cycles(problem: Problem, arch: ArchSpec, p: int, q: int) -> int:
    r = set_shape(problem, arch)[0]
    density = problem.weight_density if ZERO_SKIPPING else 1.0
    work = math.ceil(-(-p // problem.pack) * q * segment_taps(problem, arch) * problem.conv.q * density)
    return max(1, work) + r


def block_cycles(problem: Problem, arch: ArchSpec, p: int, q: int, rows_b, cb, kb) -> np.ndarray:
    """Cycles of GLB blocks of rows_b output rows x cb channels x kb filters (formula in the module doc)."""
    r, e, r_folds, _, sets = set_shape(problem, arch)
    s_folds = -(-problem.conv.s // segment_taps(problem, arch))
    units = -(-np.asarray(rows_b) // e) * -(-np.asarray(kb) // p) * -(-np.asarray(cb) // q) * r_folds * s_folds
    passes = -(-units // sets)
    return passes * pass_cycles(problem, arch, p, q) * problem.passes


def _fold_sizes(total: int, chunk: int) -> list[int]:
    full, rest = divmod(total, chunk)
    return [chunk] * full + ([rest] if rest else [])


def onchip(problem: Problem, arch: ArchSpec, mapping: Mapping, sched: BlockSchedule) -> OnChip:
    conv = problem.conv
    p, q = mapping.rs_filters, mapping.rs_channels
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
    glb_bits = (a_reads * ab + w_reads * wb + (c_reads + c_writes) * acc + sched.load_bits + sched.write_bits)
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
    return OnChip(compute=compute, glb_bits=glb_bits, words=words, bits=bits)


DATAFLOW = Dataflow.ROW_STATIONARY
