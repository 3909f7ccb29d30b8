"""The instruction-level executor: runs a binary program on a numpy model of the system, bit-exactly, and times
it with the same rules the RTL is built to (``codesign.contract.system_timing``).

State: DRAM (bytes), the GLB (bytes), four operand staging slots (A0, A1, B0, B1), two output buffers, the
accumulator (``acc_rows`` rows of ``cols`` lanes, kept to int32 as the hardware's), the output path's parameter
memory and table, the configuration registers. Instructions run in program order; each action captures the
registers when it issues. Two actions of different units that overlap in time must not touch the same GLB bytes,
staging slot, output buffer, parameter memory or table with at least one writing: such a program would race on
the hardware, and the executor stops with a hazard error (a compiler bug, not a data error).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codesign.contract.isa import (
    INSTRUCTION_BYTES, GatherMode, Instruction, Op, Reg, Unit, decode_program, unit_of,
)
from codesign.contract.system_timing import (
    IDLE_LANE, LUT_BYTES, PAD, PARAM_ENTRY_BYTES, STAGE_ROWS, Dispatcher, Target, b_rows, boot_cycles,
    gather_addresses, occupancy,
    instruction_cycles,
)
from codesign.contract import tile_timing
from codesign.errors import CodesignError
from codesign.integer.scheme import requantize

__all__ = ["ExecutionError", "ERROR_CODES", "Execution", "Machine", "run_program"]

ERROR_CODES = {"opcode": 1, "glb_range": 2, "dram_range": 3, "tile": 4, "staging": 5, "hazard": 6, "register": 7,
               "params": 8}


_LOCAL = {"slot": 0, "obuf": 4, "params": 6, "lut": 7}
_LOCAL_BASE = 1 << 40  # unit-local memories, as address ranges no GLB address reaches


def _local(memory: str, index: int = 0) -> tuple[int, int]:
    base = _LOCAL_BASE + (_LOCAL[memory] + index) * (1 << 24)
    return (base, base + 1)


def _where(start: int, end: int) -> str:
    if start < _LOCAL_BASE:
        return f"GLB bytes {start}..{end - 1}"
    number = (start - _LOCAL_BASE) >> 24
    name = max((item for item in _LOCAL.items() if item[1] <= number), key=lambda item: item[1])[0]
    return f"{name} {number - _LOCAL[name]}" if name in ("slot", "obuf") else name


class ExecutionError(CodesignError):
    """The program cannot run: the status register's error code and where it stopped."""

    def __init__(self, kind: str, index: int, message: str):
        super().__init__(f"instruction {index}: {message} (error code {ERROR_CODES[kind]})")
        self.kind, self.index, self.code = kind, index, ERROR_CODES[kind]


@dataclass(frozen=True)
class Execution:
    """What a run leaves: DRAM after the run, the cycle counter at done, each instruction's issue cycle and cycles."""

    dram: np.ndarray
    cycles: int
    boot_cycles: int
    issue: tuple[int, ...]
    busy: tuple[int, ...]


class Machine:
    """The system's state; ``run`` executes a decoded program."""

    def __init__(self, target: Target, dram_bytes: int, acc_rows: int, param_entries: int = 1024):
        arch = target.arch
        self.target = target
        self.dram = np.zeros(dram_bytes, dtype=np.uint8)
        self.glb = np.zeros(arch.glb.size_bytes, dtype=np.uint8)
        width = max(arch.rows, arch.cols, target.word_bytes)
        self.slots = [np.zeros((STAGE_ROWS, width), dtype=np.int64) for _ in range(4)]  # A0, B0, A1, B1
        self.staged = [(0, 0, 0)] * 2  # A rows, A lanes, B rows of the last GATHER into each slot pair
        self.obufs = [np.zeros((STAGE_ROWS, arch.cols), dtype=np.int64) for _ in range(2)]
        self.filled = [(0, 0), (0, 0)]  # rows, lanes of the last MATMUL into each output buffer
        self.acc = np.zeros((acc_rows, arch.cols), dtype=np.int64)
        self.bias = np.zeros(param_entries, dtype=np.int64)
        self.mult = np.zeros(param_entries, dtype=np.int64)
        self.shift = np.ones(param_entries, dtype=np.int64)
        self.params_loaded = 0
        self.lut = np.arange(256, dtype=np.int64)
        self.regs: dict[Reg, int] = {}
        self.inflight: list[tuple[Unit, int, int, list, list, int]] = []

    # -- memory helpers ------------------------------------------------------------------------
    def _range(self, memory: np.ndarray, start: int, size: int, kind: str, index: int) -> slice:
        if start < 0 or size < 0 or start + size > memory.size:
            raise ExecutionError(kind, index, f"bytes {start}..{start + size - 1} outside the memory of "
                                 f"{memory.size} bytes")
        return slice(start, start + size)

    def _glb_i8(self, start: int, size: int, index: int) -> np.ndarray:
        return self.glb[self._range(self.glb, start, size, "glb_range", index)].view(np.int8).astype(np.int64)

    def _reg(self, reg: Reg) -> int:
        return int(self.regs.get(reg, 0))

    # -- hazards -------------------------------------------------------------------------------
    @staticmethod
    def _is_slot(address: int) -> bool:
        return (address - _LOCAL_BASE) >> 24 < _LOCAL["obuf"]

    def _check_hazard(self, unit: Unit, start: int, reads: list, writes: list, index: int) -> None:
        """Each access is (first byte, end byte, cycle it ends); another unit's in-flight access to the same bytes
        that is still going on at ``start`` conflicts when either writes."""
        self.inflight = [item for item in self.inflight if item[1] > start]
        for other, end, r, w, j in self.inflight:
            if other is unit:
                continue
            r = [(b0, b1) for b0, b1, e in r if e > start]
            w = [(b0, b1) for b0, b1, e in w if e > start]
            for a0, a1, _ in writes:
                for b0, b1 in r + w:
                    if a0 < b1 and b0 < a1:
                        raise ExecutionError("hazard", index, f"writes {_where(a0, a1)} while instruction {j} on "
                                             f"another unit uses {_where(b0, b1)}")
            for a0, a1, _ in reads:
                for b0, b1 in w:
                    if a0 < b1 and b0 < a1:
                        raise ExecutionError("hazard", index, f"reads {_where(a0, a1)} while instruction {j} on "
                                             f"another unit writes {_where(b0, b1)}")
        end = max([start] + [e for _, _, e in reads + writes])
        if end > start:
            self.inflight.append((unit, end, reads, writes, index))

    def _footprint(self, ins: Instruction) -> tuple[list, list]:
        """(reads, writes) of an action: GLB byte ranges, and the unit-local memories as ranges beyond the GLB."""
        reads, writes = self._glb_footprint(ins)
        op = ins.op
        if op is Op.GATHER:
            writes = writes + [_local("slot", ins["slot"])]
        elif op is Op.MATMUL:
            reads = reads + [_local("slot", ins["slot"])]
            if ins["out"]:
                reads = reads + [_local("params"), _local("lut")]
                writes = writes + [_local("obuf", ins["obuf"])]
        elif op is Op.WRITEBACK:
            reads = reads + [_local("obuf", ins["obuf"])]
        elif op is Op.LOADP:
            writes = writes + [_local("params")]
        elif op is Op.LOADLUT:
            writes = writes + [_local("lut")]
        elif op is Op.VACT and self._reg(Reg.LUT_EN):
            reads = reads + [_local("lut")]
        return reads, writes

    def _glb_footprint(self, ins: Instruction) -> tuple[list, list]:
        """GLB byte ranges (reads, writes) an action touches."""
        op, g = ins.op, self._reg
        if op is Op.LOAD:
            return [], [(ins["glb_addr"], ins["glb_addr"] + ins["bytes"])]
        if op is Op.STORE:
            return [(ins["glb_addr"], ins["glb_addr"] + ins["bytes"])], []
        if op is Op.GATHER:
            addresses = gather_addresses(ins, self.regs)
            valid = addresses[addresses >= 0]
            b = (ins["b_addr"], ins["b_addr"] + b_rows(ins) * self.target.word_bytes)
            return ([(int(valid.min()), int(valid.max()) + 1)] if valid.size else []) + [b], []
        if op is Op.WRITEBACK:
            base = g(Reg.OUT_ADDR) + ins["m0"] * g(Reg.OUT_CP)
            return [], [(base, base + ins["m"] * g(Reg.OUT_CP))]
        if op is Op.LOADP:
            return [(ins["glb_addr"], ins["glb_addr"] + ins["count"] * PARAM_ENTRY_BYTES)], []
        if op is Op.LOADLUT:
            return [(ins["glb_addr"], ins["glb_addr"] + LUT_BYTES)], []
        if op is Op.VACT:
            size = ins["words"] * self.target.word_bytes
            return [(ins["src"], ins["src"] + size)], [(ins["dst"], ins["dst"] + size)]
        if op is Op.VADD:
            size = ins["words"] * self.target.word_bytes
            return ([(ins["src"], ins["src"] + size), (ins["src2"], ins["src2"] + size)],
                    [(ins["dst"], ins["dst"] + size)])
        if op is Op.POOL:
            cp = g(Reg.IN_CP)
            src = g(Reg.BATCH) * g(Reg.IN_H) * g(Reg.IN_W) * cp
            dst = g(Reg.BATCH) * g(Reg.OUT_H) * g(Reg.OUT_W) * cp
            return [(ins["src"], ins["src"] + src)], [(ins["dst"], ins["dst"] + dst)]
        return [], []

    # -- the output path -----------------------------------------------------------------------
    def _tail(self, v: np.ndarray) -> np.ndarray:
        g = self._reg
        if g(Reg.LUT_EN):
            c = np.clip(v + g(Reg.ZP_PRE), g(Reg.PRE_LO), g(Reg.PRE_HI))
            c = np.clip(c, -128, 127)
            y = self.lut[c + 128] - 128
        else:
            y = v + g(Reg.ZP_OUT)
        return np.clip(np.clip(y, g(Reg.CLAMP_LO), g(Reg.CLAMP_HI)), -128, 127)

    def _write_i8(self, start: int, values: np.ndarray, index: int) -> None:
        self.glb[self._range(self.glb, start, values.size, "glb_range", index)] = (
            values.astype(np.int64).astype(np.int8).view(np.uint8).reshape(-1))

    # -- instructions --------------------------------------------------------------------------
    def execute(self, ins: Instruction, index: int) -> None:
        op, g = ins.op, self._reg
        if op is Op.SET:
            try:
                self.regs[Reg(ins["reg"])] = ins["value"]
            except ValueError:
                raise ExecutionError("register", index, f"no configuration register {ins['reg']}") from None
        elif op is Op.LOAD:
            src = self._range(self.dram, ins["dram_addr"], ins["bytes"], "dram_range", index)
            self.glb[self._range(self.glb, ins["glb_addr"], ins["bytes"], "glb_range", index)] = self.dram[src]
        elif op is Op.STORE:
            src = self._range(self.glb, ins["glb_addr"], ins["bytes"], "glb_range", index)
            self.dram[self._range(self.dram, ins["dram_addr"], ins["bytes"], "dram_range", index)] = self.glb[src]
        elif op is Op.GATHER:
            self._gather(ins, index)
        elif op is Op.MATMUL:
            self._matmul(ins, index)
        elif op is Op.WRITEBACK:
            self._writeback(ins, index)
        elif op is Op.LOADP:
            count = ins["count"]
            if count > self.bias.size:
                raise ExecutionError("params", index, f"{count} parameter entries; the memory holds {self.bias.size}")
            raw = self.glb[self._range(self.glb, ins["glb_addr"], count * PARAM_ENTRY_BYTES, "glb_range", index)]
            table = raw.reshape(count, PARAM_ENTRY_BYTES)
            self.bias[:count] = table[:, 0:4].copy().view("<i4").reshape(-1)
            self.mult[:count] = table[:, 4:8].copy().view("<i4").reshape(-1)
            self.shift[:count] = table[:, 8]
            self.params_loaded = count
        elif op is Op.LOADLUT:
            self.lut = self.glb[self._range(self.glb, ins["glb_addr"], LUT_BYTES, "glb_range", index)].astype(np.int64)
        elif op is Op.VACT:
            size = ins["words"] * self.target.word_bytes
            x = self._glb_i8(ins["src"], size, index)
            v = requantize(x - g(Reg.ZP_IN), g(Reg.VMULT1), self._shift(g(Reg.VSHIFT), index))
            self._write_i8(ins["dst"], self._tail(v), index)
        elif op is Op.VADD:
            size = ins["words"] * self.target.word_bytes
            a = self._glb_i8(ins["src"], size, index) - g(Reg.ZP_IN)
            b = self._glb_i8(ins["src2"], size, index) - g(Reg.ZP_IN2)
            s = self._shift(g(Reg.VSHIFT), index)
            v = (a * g(Reg.VMULT1) + b * g(Reg.VMULT2) + (1 << (s - 1))) >> s
            self._write_i8(ins["dst"], self._tail(v), index)
        elif op is Op.POOL:
            self._pool(ins, index)

    def _shift(self, value: int, index: int) -> int:
        if not 1 <= value <= 62:
            raise ExecutionError("register", index, f"shift {value} outside 1..62")
        return value

    def _gather(self, ins: Instruction, index: int) -> None:
        slot = ins["slot"]
        count, lanes, k = ins["count"], ins["lanes"], b_rows(ins)
        if count > STAGE_ROWS or k > STAGE_ROWS:
            raise ExecutionError("staging", index, f"{max(count, k)} rows; a staging slot holds {STAGE_ROWS}")
        a = self.slots[2 * slot]
        if lanes > a.shape[1]:
            raise ExecutionError("staging", index, f"{lanes} lanes; a staging row holds {a.shape[1]}")
        addresses = gather_addresses(ins, self.regs)
        valid = addresses >= 0
        if valid.any():
            low, high = int(addresses[valid].min()), int(addresses[valid].max())
            self._range(self.glb, low, high - low + 1, "glb_range", index)
        values = np.where(valid, self.glb.view(np.int8)[np.where(valid, addresses, 0)].astype(np.int64), 0)
        values = np.where(addresses == PAD, self._reg(Reg.ZP_IN), values)
        values = np.where(addresses == IDLE_LANE, 0, values)
        a[:count, :lanes] = values
        a[:count, lanes:] = 0
        word = self.target.word_bytes
        b = self.slots[2 * slot + 1]
        b[:k, :word] = self._glb_i8(ins["b_addr"], k * word, index).reshape(k, word)
        self.staged[slot] = (count, lanes, k)

    def _check_tile(self, ins: Instruction, index: int) -> None:
        arch, flow = self.target.arch, self.target.dataflow
        bounds = tile_timing.contract(flow).bounds(arch.rows, arch.cols)
        for dim in ("m", "k", "n"):
            limit = bounds[dim] if bounds[dim] is not None else STAGE_ROWS
            if ins[dim] > limit:
                raise ExecutionError("tile", index, f"tile {dim}={ins[dim]} above the {flow} core's {limit}")

    def _matmul(self, ins: Instruction, index: int) -> None:
        flow = self.target.dataflow
        m, k, n = ins["m"], ins["k"], ins["n"]
        a_slot, b_slot = 2 * ins["slot"], 2 * ins["slot"] + 1
        a_rows, a_lanes, b_staged = self.staged[ins["slot"]]
        if flow == "ws":
            if a_rows != m or a_lanes < k:
                raise ExecutionError("staging", index, f"a {m} x {k} tile over a staged A of {a_rows} x {a_lanes}")
            a = self.slots[a_slot][:m, :k]
        else:
            if a_rows != k or a_lanes < m:
                raise ExecutionError("staging", index, f"a {m} x {k} tile over a staged A of {a_lanes} x {a_rows}")
            a = self.slots[a_slot][:k, :m].T
        if b_staged != k:
            raise ExecutionError("staging", index, f"a tile of k={k} over {b_staged} staged rows of B")
        b = self.slots[b_slot][:k, :n]
        row = ins["acc_row"]
        if row + m > self.acc.shape[0]:
            raise ExecutionError("staging", index, f"accumulator rows {row}..{row + m - 1} beyond "
                                 f"{self.acc.shape[0]}")
        product = a @ b
        if ins["acc"]:
            self.acc[row:row + m, :n] += product
        else:
            self.acc[row:row + m, :n] = product
        self.acc[row:row + m, :n] = (self.acc[row:row + m, :n] + 2**31) % 2**32 - 2**31  # int32 lanes
        if not ins["out"]:
            return
        n0 = ins["n0"]
        if n0 + n > self.params_loaded:
            raise ExecutionError("params", index, f"channels {n0}..{n0 + n - 1} beyond the {self.params_loaded} "
                                 "parameter entries loaded")
        total = self.acc[row:row + m, :n] + self.bias[n0:n0 + n]
        total = (total + 2**31) % 2**32 - 2**31
        v = requantize(total, self.mult[n0:n0 + n], self.shift[n0:n0 + n])
        self.obufs[ins["obuf"]][:m, :n] = self._tail(v)
        self.filled[ins["obuf"]] = (m, n)

    def _writeback(self, ins: Instruction, index: int) -> None:
        m, n = ins["m"], ins["n"]
        if self.filled[ins["obuf"]] != (m, n):
            rows, lanes = self.filled[ins["obuf"]]
            raise ExecutionError("staging", index, f"writes back {m} x {n} results from an output buffer holding "
                                 f"{rows} x {lanes}")
        y = self.obufs[ins["obuf"]][:m, :n]
        base, pitch = self._reg(Reg.OUT_ADDR), self._reg(Reg.OUT_CP)
        for i in range(m):
            self._write_i8(base + (ins["m0"] + i) * pitch + ins["n0"], y[i], index)

    def _pool(self, ins: Instruction, index: int) -> None:
        g = self._reg
        n, h, w, cp = g(Reg.BATCH), g(Reg.IN_H), g(Reg.IN_W), g(Reg.IN_CP)
        oh, ow, kh, kw = g(Reg.OUT_H), g(Reg.OUT_W), g(Reg.KH), g(Reg.KW)
        x = self._glb_i8(ins["src"], n * h * w * cp, index).reshape(n, h, w, cp)
        sh, sw, ph, pw = g(Reg.STRIDE_H), g(Reg.STRIDE_W), g(Reg.PAD_H), g(Reg.PAD_W)
        average = ins["mode"] == 1
        fill = 0 if average else -(1 << 20)
        source = x - g(Reg.ZP_IN) if average else x
        padded = np.pad(source, ((0, 0), (ph, ph), (pw, pw), (0, 0)), constant_values=fill)
        taps = np.stack([padded[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
                         for i in range(kh) for j in range(kw)], axis=-1)
        if average:
            v = requantize(taps.sum(axis=-1), g(Reg.VMULT1), self._shift(g(Reg.VSHIFT), index))
            y = self._tail(v)
        else:
            y = taps.max(axis=-1)
        self._write_i8(ins["dst"], y.reshape(-1), index)

    # -- the whole program ---------------------------------------------------------------------
    def run(self, instructions: list[Instruction], program_bytes: int, max_instructions: int = 10_000_000) -> Execution:
        boot = boot_cycles(program_bytes, self.target.arch)
        dispatcher = Dispatcher(boot, self.target)
        issue, busy = [], []
        done = None
        for index, ins in enumerate(instructions[:max_instructions]):
            if ins.op is Op.SET:
                self.execute(ins, index)
            if ins.op is Op.MATMUL:
                self._check_tile(ins, index)
            cycles = instruction_cycles(ins, self.regs, self.target)
            t = dispatcher.issue(ins, cycles)
            unit = unit_of(ins.op)
            if unit is not Unit.CONTROL:
                reads, writes = self._footprint(ins)
                held = t + occupancy(ins, cycles, self.target)  # a MATMUL reads its slots only until then
                reads = [(a, b, held if a >= _LOCAL_BASE and ins.op is Op.MATMUL and self._is_slot(a) else t + cycles)
                         for a, b in reads]
                writes = [(a, b, t + cycles) for a, b in writes]
                self._check_hazard(unit, t, reads, writes, index)
                self.execute(ins, index)
            issue.append(t)
            busy.append(cycles)
            if ins.op is Op.END:
                done = t + 1
                break
        if done is None:
            raise ExecutionError("opcode", len(issue), "the program ends without END")
        return Execution(self.dram, done, boot, tuple(issue), tuple(busy))


def run_program(program_bytes: bytes, target: Target, dram: np.ndarray, acc_rows: int) -> Execution:
    """Decode ``program_bytes`` and run it on a machine whose DRAM starts as ``dram`` (copied)."""
    instructions = decode_program(program_bytes)
    machine = Machine(target, dram.size, acc_rows)
    machine.dram[:] = dram
    return machine.run(instructions, len(instructions) * INSTRUCTION_BYTES)
