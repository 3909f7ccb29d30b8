"""Instruction timing: each instruction's cycles from its formula (the core's contract, the DRAM rates, one GLB
word per cycle), and the dispatcher's rules for a whole program."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.arch_loader import load_arch
from codesign.contract.isa import INSTRUCTION_BYTES, GatherMode, Instruction, Op, Reg
from codesign.contract.system_timing import (
    ACC_LATENCY, OUTPUT_LATENCY, VECTOR_LATENCY, VECTOR_SETUP_CYCLES, Target, a_cycles, gather_addresses, instruction_cycles,
    gather_setup_cycles, packed_cycles, schedule, strided_cycles,
)
from codesign.contract import tile_timing

ARCH = load_arch("fpga-8x8")


@given(st.sampled_from(["ws", "os"]), st.integers(1, 8), st.integers(1, 8), st.integers(1, 1024),
       st.booleans())
@settings(max_examples=200, deadline=None)
def test_a_matmul_takes_its_tile_cycles_plus_the_accumulator_and_output_pipelines(flow, spatial, n, streamed, out):
    m, k = (streamed, spatial) if flow == "ws" else (spatial, streamed)
    ins = Instruction(Op.MATMUL, {"m": m, "k": k, "n": n, "out": int(out)})
    expected = tile_timing.tile_cycles(flow, m, k, n, 8, 8) + ACC_LATENCY + (OUTPUT_LATENCY if out else 0)
    assert instruction_cycles(ins, {}, Target(ARCH, flow)) == expected


@given(st.integers(1, 2**20))
@settings(max_examples=100, deadline=None)
def test_dma_transfers_take_the_contracts_dram_time(words):
    size = 8 * words
    target = Target(ARCH, "ws")
    load = instruction_cycles(Instruction(Op.LOAD, {"bytes": size}), {}, target)
    store = instruction_cycles(Instruction(Op.STORE, {"bytes": size}), {}, target)
    assert load == ARCH.dram.latency_cycles + math.ceil(size / ARCH.dram.bytes_per_cycle)
    assert store == math.ceil(size / ARCH.dram.bytes_per_cycle)


def _conv_regs(channels: int, kernel: int = 1, pad: int = 0) -> dict:
    return {Reg.IN_ADDR: 0, Reg.IN_H: 4, Reg.IN_W: 4, Reg.IN_CP: -(-channels // 8) * 8, Reg.BATCH: 1, Reg.KH: kernel,
            Reg.KW: kernel, Reg.STRIDE_H: 1, Reg.STRIDE_W: 1, Reg.PAD_H: pad, Reg.PAD_W: pad, Reg.DIL_H: 1,
            Reg.DIL_W: 1, Reg.OUT_H: 4, Reg.OUT_W: 4, Reg.CIN_G: channels}


def _gather(mode, count, lanes, k0=0, group=0) -> Instruction:
    return Instruction(Op.GATHER, {"mode": int(mode), "count": count, "lanes": lanes, "m0": 0, "k0": k0,
                                   "group": group})


def test_accesses_share_a_cycle_when_their_banks_differ():
    words = np.array([[0, 1, 2, 3, 4], [0, 4, 8, -1, -1], [0, 1, 4, 5, -1], [-1, -1, -1, -1, -1]])
    assert packed_cycles(words, ARCH).tolist() == [2, 3, 2, 0]  # 4 banks, one word each per cycle
    assert strided_cycles(10, 1, ARCH) == 3 and strided_cycles(10, 2, ARCH) == 5 and strided_cycles(10, 4, ARCH) == 10


def test_a_row_of_one_words_channels_takes_one_cycle_and_b_four_words_a_cycle():
    ins = _gather(GatherMode.IM2COL_WS, 16, 8)
    assert a_cycles(gather_addresses(ins, _conv_regs(8)), ARCH) == 16
    # B (8 rows over 4 banks: 2 cycles) inside the start-up, then 16 rows, the last written a cycle later
    assert instruction_cycles(ins, _conv_regs(8), Target(ARCH, "ws")) == gather_setup_cycles(ARCH) + 16 + 1


def test_words_the_buffer_holds_are_not_read_again():
    # OS, a 1 x 16 image of one channel (one word per pixel), a 1x3 window: beat s reads pixels s .. s+7
    regs = {**_conv_regs(1, kernel=1), Reg.IN_H: 1, Reg.IN_W: 16, Reg.OUT_H: 1, Reg.OUT_W: 14, Reg.KW: 3,
            Reg.IN_CP: 8}
    ins = _gather(GatherMode.IM2COL_OS, 3, 8)
    # the start-up (3 rows of B inside it); beat 0: eight new words over 4 banks (2 cycles); beats 1, 2: one new
    # word each; the last row written a cycle later
    assert instruction_cycles(ins, regs, Target(ARCH, "os")) == gather_setup_cycles(ARCH) + 2 + 1 + 1 + 1


def test_channels_in_the_same_word_are_read_once_per_pixel():
    # OS over 16 channels (two words per pixel): a new word per lane at beats 0 and 8, 8 words in 2 of 4 banks
    ins = _gather(GatherMode.IM2COL_OS, 16, 8)
    assert a_cycles(gather_addresses(ins, _conv_regs(16)), ARCH) == 4 + 7 + 4 + 7


def test_padding_lanes_read_nothing_but_a_row_takes_a_cycle():
    regs = {**_conv_regs(8, kernel=3, pad=1), Reg.IN_H: 1, Reg.IN_W: 1, Reg.OUT_H: 1, Reg.OUT_W: 1}
    ins = _gather(GatherMode.IM2COL_WS, 1, 8, k0=0)  # tap (0, 0) of a 1x1 image: all padding
    assert (gather_addresses(ins, regs) < 0).all()
    assert a_cycles(gather_addresses(ins, regs), ARCH) == 1


def _vact(words: int) -> Instruction:
    return Instruction(Op.VACT, {"words": words})


def test_dma_and_the_staging_unit_overlap_and_sync_waits_for_both():
    program = [Instruction(Op.LOAD, {"bytes": 800}), _vact(400), Instruction(Op.SYNC, {"mask": 3}),
               Instruction(Op.END)]
    timing = schedule(program, Target(ARCH, "ws"), len(program) * INSTRUCTION_BYTES)
    boot = timing.boot_cycles
    load = ARCH.dram.latency_cycles + 400
    assert timing.cycles[1] == VECTOR_SETUP_CYCLES + 400 + VECTOR_LATENCY  # one word a cycle through the vector unit's multipliers
    assert boot == ARCH.dram.latency_cycles + math.ceil(len(program) * INSTRUCTION_BYTES / 2)
    assert timing.issue == (boot, boot + 1, boot + load, boot + load + 1)
    assert timing.total_cycles == boot + load + 2


def test_an_action_waits_for_its_unit_and_holds_the_instructions_behind_it():
    program = [_vact(100), _vact(20), Instruction(Op.LOAD, {"bytes": 8}), Instruction(Op.END)]
    timing = schedule(program, Target(ARCH, "ws"), 64)
    boot = timing.boot_cycles
    first, second = (VECTOR_SETUP_CYCLES + words + VECTOR_LATENCY for words in (100, 20))
    assert timing.issue[:3] == (boot, boot + first, boot + first + VECTOR_SETUP_CYCLES)
    assert timing.total_cycles == max(boot + first + second,
                                      boot + first + VECTOR_SETUP_CYCLES + ARCH.dram.latency_cycles + 4) + 1


def test_nothing_issues_during_a_vector_ops_setup():
    """A vector op's checks take VECTOR_SETUP_CYCLES; the dispatcher issues nothing in them (a fault found there
    stops at the vector op), so a LOAD for the idle DMA unit waits, and a SET too."""
    for follower in (Instruction(Op.LOAD, {"bytes": 8}), Instruction(Op.SET, {"reg": 0, "value": 1})):
        program = [_vact(10), follower, Instruction(Op.END)]
        timing = schedule(program, Target(ARCH, "ws"), 48)
        assert timing.issue[1] - timing.issue[0] == VECTOR_SETUP_CYCLES


def test_the_core_takes_the_next_tile_after_its_issue_interval_and_results_come_later():
    tile = {"m": 8, "k": 50, "n": 8, "out": 1}
    program = [Instruction(Op.MATMUL, {**tile, "obuf": 0}), Instruction(Op.MATMUL, {**tile, "obuf": 1}),
               Instruction(Op.WRITEBACK, {"obuf": 0, "m": 8, "n": 8}), Instruction(Op.END)]
    timing = schedule(program, Target(ARCH, "os"), 64)
    boot = timing.boot_cycles
    interval = tile_timing.issue_interval("os", 8, 50, 8, 8, 8)
    done = tile_timing.tile_cycles("os", 8, 50, 8, 8, 8) + ACC_LATENCY + OUTPUT_LATENCY
    assert timing.issue[:3] == (boot, boot + interval, boot + done)  # the write-back waits for tile 0's results
    assert timing.total_cycles == boot + interval + done + 1
