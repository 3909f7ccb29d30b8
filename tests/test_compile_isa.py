"""The instruction encoding: every instruction survives encode -> decode, fields stay in their bits, and words that
are not instructions are refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.contract.isa import (
    FORMATS, INSTRUCTION_BYTES, EncodingError, Instruction, Op, decode, decode_program, encode, encode_program,
)


@st.composite
def instructions(draw):
    op = draw(st.sampled_from(list(Op)))
    fields = {f.name: draw(st.integers(*f.bounds)) for f in FORMATS[op]}
    return Instruction(op, fields)


@given(instructions())
@settings(max_examples=600, deadline=None)
def test_every_instruction_round_trips_through_its_128_bit_word(instruction):
    word = encode(instruction)
    assert 0 <= word < 1 << 128 and word & 0xFF == instruction.op
    assert decode(word) == instruction


@given(st.lists(instructions(), min_size=1, max_size=20))
@settings(max_examples=100, deadline=None)
def test_a_program_is_its_instructions_back_to_back(program):
    data = encode_program(program)
    assert len(data) == INSTRUCTION_BYTES * len(program)
    assert decode_program(data) == program


def test_fields_do_not_overlap_and_fit_128_bits():
    for op, formats in FORMATS.items():
        used = 0xFF
        for f in formats:
            mask = ((1 << f.width) - 1) << f.lsb
            assert not used & mask, f"{op.name}.{f.name} overlaps"
            used |= mask
        assert used < 1 << 128


def test_out_of_range_fields_and_unknown_fields_are_refused():
    with pytest.raises(EncodingError, match="MATMUL.n=32"):
        encode(Instruction(Op.MATMUL, {"m": 1, "k": 1, "n": 32}))
    with pytest.raises(EncodingError, match="MATMUL.m=0"):
        encode(Instruction(Op.MATMUL, {"m": 0, "k": 1, "n": 1}))
    with pytest.raises(EncodingError, match="no field"):
        encode(Instruction(Op.SYNC, {"mask": 1, "wait": 2}))


def test_words_that_are_not_instructions_are_refused():
    with pytest.raises(EncodingError, match="unknown opcode 0x7f"):
        decode(0x7F)
    with pytest.raises(EncodingError, match="reserved bits"):
        decode(encode(Instruction(Op.END)) | 1 << 100)
    with pytest.raises(EncodingError, match="whole 16-byte"):
        decode_program(bytes(17))


def test_signed_fields_keep_their_sign():
    word = encode(Instruction(Op.SET, {"reg": 16, "value": -128}))
    assert decode(word)["value"] == -128 and (word >> 32) & 0xFFFFFFFF == 2**32 - 128


def test_docs_list_every_instruction_with_its_fields_at_their_bits():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "isa.md").read_text()
    for op, formats in FORMATS.items():
        cells = [f"`opcode` [7:0] = 0x{int(op):02x}"]
        for f in formats:
            extra = " signed" if f.signed else (f" >= {f.low}" if f.low else "")
            cells.append(f"`{f.name}` [{f.lsb + f.width - 1}:{f.lsb}]{extra}")
        assert f"| {op.name} | {', '.join(cells)} |" in text, op.name
