"""The compiler: a ``QuantizedNet`` and the simulator's schedule (mappings, tiling, fusion, residency) -> an
instruction stream, a weight image, a DRAM memory map and a manifest (docs/isa.md).

Every MAC layer runs the GLB blocks of the mapping the simulator chose, in its DRAM loop order, with the tiles
of its array tile inside each block in the simulator's order (m chunk, n fold, k fold innermost); weights are
fetched when the block of weights changes, double-buffered against the tiles using them. Layers fused into a MAC
layer's output path by the simulator run there; a tensor the simulator keeps on chip stays in the GLB, any
other tensor is stored to DRAM after its producer and loaded before each consumer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from codesign.contract.isa import GatherMode, Instruction, Op, Reg
from codesign.contract.system_timing import LUT_BYTES, PARAM_ENTRY_BYTES
from codesign.errors import CodesignError
from codesign.integer.model import QStep, QuantizedNet

__all__ = ["CompileError", "Buffer", "Program", "compile_net", "DEFAULT_ACC_ROWS", "PARAM_ENTRIES", "DRAM_ALIGN",
           "tensor_layout"]

DEFAULT_ACC_ROWS = 2048  # accumulator rows of `cols` int32 lanes (64 KiB on an 8-column array)
PARAM_ENTRIES = 1024  # output channels the output path's parameter memory holds
DRAM_ALIGN = 4096


class CompileError(CodesignError):
    """The schedule cannot be turned into a program for this accelerator."""


@dataclass
class Buffer:
    """An int8 tensor [N][H][W][CP] (channels padded to the GLB word), where it lives in the GLB and in DRAM."""

    name: str
    shape: tuple[int, int, int, int]  # NCHW
    cp: int
    glb: int | None = None
    dram: int | None = None
    resident: bool = False

    @property
    def bytes(self) -> int:
        n, _, h, w = self.shape
        return n * h * w * self.cp


def tensor_layout(shape: tuple[int, int, int, int], word_bytes: int) -> int:
    """Channel pitch in bytes: channels rounded up to whole GLB words."""
    return -(-shape[1] // word_bytes) * word_bytes


class Allocator:
    """First-fit allocation of GLB byte ranges, word aligned."""

    def __init__(self, size: int, align: int):
        self.size, self.align = size, align
        self.used: dict[int, int] = {}
        self.peak = 0

    def alloc(self, size: int, what: str) -> int:
        size = -(-max(size, 1) // self.align) * self.align
        start = 0
        for base, length in sorted(self.used.items()):
            if base - start >= size:
                break
            start = max(start, base + length)
        if start + size > self.size:
            live = sum(self.used.values())
            raise CompileError(f"the {self.size}-byte global buffer cannot hold {what} ({size} bytes) beside the "
                               f"{live} bytes in use; use an accelerator with a larger glb.size_bytes")
        self.used[start] = size
        self.peak = max(self.peak, start + size)
        return start

    def free(self, base: int) -> None:
        del self.used[base]


@dataclass
class Program:
    """A compiled network: instructions, the weight image, the DRAM map, the layers' spans and parameters."""

    instructions: list[Instruction]
    weights: bytes
    memory_map: dict[str, int]
    input: Buffer
    output: Buffer
    layers: list[dict] = field(default_factory=list)  # per step: name, kind, first/last instruction, params
    acc_rows: int = DEFAULT_ACC_ROWS
    glb_peak_bytes: int = 0


def _set(out: list, reg: Reg, value: int) -> None:
    out.append(Instruction(Op.SET, {"reg": int(reg), "value": int(value)}))


class _Builder:
    def __init__(self, net: QuantizedNet, sim: Any, arch, dataflow: str, acc_rows: int):
        self.net, self.arch, self.dataflow, self.acc_rows = net, arch, dataflow, acc_rows
        self.word = arch.glb.word_bits // 8
        if arch.glb.word_bits % 8 or self.word < 1:
            raise CompileError(f"glb.word_bits={arch.glb.word_bits} is not whole bytes")
        if arch.rows > self.word or arch.cols > self.word:
            raise CompileError(f"the compiler needs an array of at most {self.word} x {self.word} PEs (one GLB word "
                               f"of int8 per row); {arch.name} is {arch.rows} x {arch.cols}")
        self.results = {layer.name: layer for layer in sim.layers}
        self.ins: list[Instruction] = []
        self.image = bytearray()
        self.alloc = Allocator(arch.glb.size_bytes, self.word)
        self.layers: list[dict] = []
        self.buffers: dict[str, Buffer] = {}
        self.input_refs: list[tuple[int, str]] = []

    # -- the weight image ---------------------------------------------------------------------
    def put(self, data: bytes) -> int:
        """Append to the weight image (word aligned); returns its offset."""
        offset = len(self.image)
        self.image += data
        self.image += bytes(-len(self.image) % self.word)
        return offset

    def emit(self, op: Op, note: str = "", **fields) -> None:
        self.ins.append(Instruction(op, fields, note))

    def dma(self, op: Op, glb: int, dram: int, size: int, note: str, image: bool = False) -> None:
        size = -(-size // self.word) * self.word
        self.emit(op, note, glb_addr=glb, bytes=size, dram_addr=dram)
        if image:
            self.image_refs.append(len(self.ins) - 1)

    # -- tensors -----------------------------------------------------------------------------
    def buffer(self, name: str) -> Buffer:
        return self.buffers[name]

    def build(self) -> Program:
        net = self.net
        self.image_refs: list[int] = []  # DMA instructions whose dram_addr is an image offset
        self.spill_refs: list[int] = []
        alias = {}
        consumers: dict[str, list[int]] = {}
        for index, q in enumerate(net.steps):
            for name in q.step.inputs:
                consumers.setdefault(alias.get(name, name), []).append(index)
            if q.kind == "alias":
                alias[q.step.output] = alias.get(q.step.inputs[0], q.step.inputs[0])
        self.alias = alias
        shape = net.graph.shapes[net.input_name]
        self.buffers[net.input_name] = Buffer(net.input_name, shape, tensor_layout(shape, self.word))
        last_use = {name: max(uses) for name, uses in consumers.items()}
        out_root = alias.get(net.output_name, net.output_name)
        for index, q in enumerate(net.steps):
            first = len(self.ins)
            if q.kind == "alias":
                self.buffers[q.step.output] = self.buffers[alias[q.step.output]]
                self.layers.append(self._layer_record(q, first))
                continue
            loaded = [self._ensure_in_glb(name) for name in dict.fromkeys(alias.get(n, n) for n in q.step.inputs)]
            out = self._output_buffer(q, out_root)
            params = {"mac": self._mac, "add": self._add, "act": self._act, "avgpool": self._pool,
                      "maxpool": self._pool}[q.kind](q, out)
            self.emit(Op.SYNC, f"end of {q.name}", mask=7)
            for name in loaded:  # inputs loaded from DRAM for this step only
                if name is not None:
                    self._release(self.buffers[name])
            for name in dict.fromkeys(alias.get(n, n) for n in q.step.inputs):
                buffer = self.buffers[name]
                if buffer.resident and last_use.get(name) == index:
                    self._release(buffer)
            if not out.resident:
                self._spill(out, out_root)
            record = self._layer_record(q, first)
            record.update(params)
            self.layers.append(record)
        self.emit(Op.END, "done")
        return self._finish(out_root)

    def _layer_record(self, q: QStep, first: int) -> dict:
        return {"name": q.name, "kind": q.kind, "layers": list(q.step.layers), "first_instruction": first,
                "last_instruction": len(self.ins) - 1, "output": q.step.output,
                "output_scale": q.output.scale, "output_zero_point": q.output.zero_point}

    def _release(self, buffer: Buffer) -> None:
        if buffer.glb is not None:
            self.alloc.free(buffer.glb)
            buffer.glb = None

    def _ensure_in_glb(self, name: str) -> str | None:
        """Load a tensor that is not in the GLB; returns its name when it was loaded for this step only."""
        buffer = self.buffers[name]
        if buffer.glb is not None:
            return None
        buffer.glb = self.alloc.alloc(buffer.bytes, f"tensor {name}")
        self.emit(Op.LOAD, f"load {name}", glb_addr=buffer.glb, bytes=buffer.bytes, dram_addr=0)
        (self.input_refs if name == self.net.input_name else self.spill_refs).append((len(self.ins) - 1, name))
        self.emit(Op.SYNC, f"{name} loaded", mask=1)
        return name

    def _output_buffer(self, q: QStep, out_root: str) -> Buffer:
        shape = q.step.output_shape
        buffer = Buffer(q.step.output, shape, tensor_layout(shape, self.word))
        result = self.results.get(q.name)
        has_consumers = any(q.step.output == self.alias.get(n, n) for s in self.net.steps for n in s.step.inputs)
        buffer.resident = bool(result is not None and result.output_onchip and has_consumers
                               and q.step.output != out_root)
        buffer.glb = self.alloc.alloc(buffer.bytes, f"the output of {q.name}")
        self.buffers[q.step.output] = buffer
        return buffer

    def _spill(self, buffer: Buffer, out_root: str) -> None:
        self.emit(Op.STORE, f"store {buffer.name}", glb_addr=buffer.glb, bytes=buffer.bytes, dram_addr=0)
        self.spill_refs.append((len(self.ins) - 1, buffer.name))
        self.emit(Op.SYNC, f"{buffer.name} stored", mask=1)
        self._release(buffer)

    # -- output-path registers ----------------------------------------------------------------
    def _tail_regs(self, q: QStep) -> None:
        tail = q.tail
        _set(self.ins, Reg.ZP_OUT, tail.zp_out)
        _set(self.ins, Reg.CLAMP_LO, tail.low)
        _set(self.ins, Reg.CLAMP_HI, tail.high)
        _set(self.ins, Reg.LUT_EN, int(tail.table is not None))
        if tail.table is not None:
            _set(self.ins, Reg.ZP_PRE, tail.zp_pre)
            _set(self.ins, Reg.PRE_LO, tail.pre_low)
            _set(self.ins, Reg.PRE_HI, tail.pre_high)

    def _load_lut(self, q: QStep) -> int | None:
        if q.tail.table is None:
            return None
        offset = self.put(bytes(int(v) for v in q.tail.table))
        glb = self.alloc.alloc(LUT_BYTES, f"the table of {q.name}")
        self.dma(Op.LOAD, glb, offset, LUT_BYTES, f"table {q.step.activation.lut_name}", image=True)
        return glb

    def _geometry_regs(self, src: Buffer, dst: Buffer, kernel, stride, padding, dilation, cin_g: int) -> None:
        n, _, h, w = src.shape
        _, _, p, q = dst.shape
        for reg, value in ((Reg.IN_ADDR, src.glb), (Reg.IN_H, h), (Reg.IN_W, w), (Reg.IN_CP, src.cp),
                           (Reg.BATCH, n), (Reg.KH, kernel[0]), (Reg.KW, kernel[1]), (Reg.STRIDE_H, stride[0]),
                           (Reg.STRIDE_W, stride[1]), (Reg.PAD_H, padding[0]), (Reg.PAD_W, padding[1]),
                           (Reg.DIL_H, dilation[0]), (Reg.DIL_W, dilation[1]), (Reg.OUT_H, p), (Reg.OUT_W, q),
                           (Reg.CIN_G, cin_g), (Reg.OUT_ADDR, dst.glb), (Reg.OUT_CP, dst.cp)):
            _set(self.ins, reg, value)

    # -- MAC layers ---------------------------------------------------------------------------
    def _mapping(self, q: QStep) -> tuple[tuple[int, int, int], tuple[int, int, int], tuple[str, ...]]:
        result = self.results.get(q.name)
        if result is None or result.unit != "array" or "tiles" not in result.mapping:
            raise CompileError(f"layer {q.name}: the simulator did not map it on the array")
        mapping = result.mapping
        if mapping["dataflow"] != self.dataflow:
            raise CompileError(f"layer {q.name}: mapped under {mapping['dataflow']}, not {self.dataflow}")
        block = tuple(int(mapping["tiles"]["glb"][d]) for d in "mkn")
        tile = tuple(int(mapping["tiles"]["array"][d]) for d in "mkn")
        order = tuple(mapping["temporal_order"]["dram"])
        return block, tile, order

    def _mac(self, q: QStep, out: Buffer) -> dict:
        step = q.step
        src = self.buffer(self.alias.get(step.inputs[0], step.inputs[0]))
        k_out, cin_g, kh, kw = q.weight.shape
        groups = step.geometry.groups
        n_g = k_out // groups
        batch, _, p, qq = step.output_shape
        gm, gk, gn = batch * p * qq, cin_g * kh * kw, n_g
        (bm, bk, bn), (tm, tk, tn), order = self._mapping(q)
        if k_out > PARAM_ENTRIES:
            raise CompileError(f"layer {q.name}: {k_out} output channels; the output path holds parameters of "
                               f"{PARAM_ENTRIES}")
        # hardware reduction order: k = (r * KW + s) * CIN_G + c
        w_hw = q.weight.transpose(0, 2, 3, 1).reshape(groups, n_g, gk).transpose(0, 2, 1)  # [G][K][N]
        colsum = q.weight.reshape(k_out, -1).sum(axis=1)
        bias = q.bias - q.inputs[0].zero_point * colsum
        if np.abs(bias).max(initial=0) >= 2**31:
            raise CompileError(f"layer {q.name}: its bias with the zero-point term leaves int32")
        table = np.zeros((k_out, PARAM_ENTRY_BYTES), dtype=np.uint8)
        table[:, 0:4] = bias.astype("<i4").view(np.uint8).reshape(-1, 4)
        table[:, 4:8] = q.multiplier.astype("<i4").view(np.uint8).reshape(-1, 4)
        table[:, 8] = q.shift.astype(np.uint8)
        param_offset = self.put(table.tobytes())
        param_glb = self.alloc.alloc(k_out * PARAM_ENTRY_BYTES, f"the output-path parameters of {q.name}")
        self.dma(Op.LOAD, param_glb, param_offset, k_out * PARAM_ENTRY_BYTES, f"parameters of {q.name}", image=True)
        lut_glb = self._load_lut(q)
        g = step.geometry
        self._geometry_regs(src, out, g.kernel, g.stride, g.padding, g.dilation, cin_g)
        _set(self.ins, Reg.ZP_IN, q.inputs[0].zero_point)
        self._tail_regs(q)
        # blocks in the simulator's DRAM order (groups outermost), as dataflow.blocking walks them
        trips = {"m": -(-gm // bm), "k": -(-gk // bk), "n": -(-gn // bn)}
        blocks = []
        for group in range(groups):
            for index in np.ndindex(*(trips[d] for d in order)):
                position = dict(zip(order, index))
                blocks.append((group, position["m"], position["k"], position["n"]))
        weight_blocks: dict[tuple, tuple[int, int]] = {}
        plan = []
        for group, mi, ki, ni in blocks:
            key = (group, ki, ni)
            if key not in weight_blocks:
                weight_blocks[key] = self._weight_block(w_hw[group], ki * bk, min(bk, gk - ki * bk), ni * bn,
                                                        min(bn, gn - ni * bn), tk, tn)
            plan.append(key)
        slot_bytes = max(size for _, size in weight_blocks.values())
        slots = [self.alloc.alloc(slot_bytes, f"weight buffer {i} of {q.name}") for i in range(2)]
        self.emit(Op.SYNC, "parameters loaded", mask=1)
        self.emit(Op.LOADP, f"parameters of {q.name}", glb_addr=param_glb, count=k_out)
        if lut_glb is not None:
            self.emit(Op.LOADLUT, "table", glb_addr=lut_glb)
        acc_rows_used = -(-bn // tn) * bm
        if acc_rows_used > self.acc_rows:
            raise CompileError(f"layer {q.name}: a GLB block of {bm} x {bn} outputs needs {acc_rows_used} "
                               f"accumulator rows; the accelerator has {self.acc_rows}")
        uses, slot = [], 0
        for index, key in enumerate(plan):
            if index and key != plan[index - 1]:
                slot ^= 1
            uses.append(slot)
        tiles = []
        current_out = None
        for index, (group, mi, ki, ni) in enumerate(blocks):
            out_key = (group, mi, ni)
            if current_out is not None and out_key != current_out[0] and not current_out[1]:
                raise CompileError(f"layer {q.name}: its mapping leaves partial sums of a block before their last "
                                   "K block (DRAM order with K outside M or N); the compiler keeps partial sums "
                                   "in the accumulator only")
            current_out = (out_key, ki == trips["k"] - 1)
            tiles += self._block_tiles(q, index, group, mi * bm, min(bm, gm - mi * bm), ki * bk,
                                       min(bk, gk - ki * bk), ni * bn, min(bn, gn - ni * bn), tm, tk, tn,
                                       slots[uses[index]], n_g, ki == 0, ki == trips["k"] - 1)
        self._load_weights(q, weight_blocks[plan[0]], slots[uses[0]])
        self.emit(Op.SYNC, "first weights loaded", mask=1)
        self._pipeline(q, tiles, blocks, plan, weight_blocks, slots, uses)
        for base in slots + [param_glb] + ([lut_glb] if lut_glb is not None else []):
            self.alloc.free(base)
        weight_bytes = sum(size for _, size in weight_blocks.values())
        return {"mapping": {"glb_block": [bm, bk, bn], "array_tile": [tm, tk, tn], "dram_order": list(order),
                            "blocks": len(blocks), "weight_blocks": len(weight_blocks)},
                "weight_bytes": weight_bytes, "input_scale": q.inputs[0].scale,
                "input_zero_point": q.inputs[0].zero_point,
                "weight_scales": [float(v) for v in q.weight_scale],
                "multipliers": [int(v) for v in q.multiplier], "shifts": [int(v) for v in q.shift],
                "parameters_offset": param_offset}

    def _weight_block(self, w: np.ndarray, k0: int, kn: int, n0: int, nn: int, tk: int, tn: int) -> tuple[int, int]:
        """Store a block of B (k0.., n0..) tile-ready: per n fold, per k fold, one word per row of B."""
        words = []
        for nf in range(0, nn, tn):
            width = min(tn, nn - nf)
            for kf in range(0, kn, tk):
                depth = min(tk, kn - kf)
                part = np.zeros((depth, self.word), dtype=np.int64)
                part[:, :width] = w[k0 + kf:k0 + kf + depth, n0 + nf:n0 + nf + width]
                words.append(part.astype(np.int8).tobytes())
        data = b"".join(words)
        return self.put(data), len(data)

    def _load_weights(self, q: QStep, block: tuple[int, int], slot: int) -> None:
        offset, size = block
        self.dma(Op.LOAD, slot, offset, size, f"weights of {q.name}", image=True)

    def _block_tiles(self, q, block, group, m0, mn, k0, kn, n0, nn, tm, tk, tn, slot, n_g, first_k,
                     last_k) -> list[dict]:
        """The tiles of one GLB block in the simulator's order (m chunk, n fold, k fold innermost): for each, its
        GATHER (A and B) and its MATMUL fields (slots and output buffer are chosen by ``_pipeline``)."""
        ws = self.dataflow == "ws"
        offset = 0
        fold_offsets = {}
        for nf in range(0, nn, tn):
            for kf in range(0, kn, tk):
                fold_offsets[(nf, kf)] = offset
                offset += min(tk, kn - kf) * self.word
        tiles = []
        for mc in range(0, mn, tm):
            rows = min(tm, mn - mc)
            for fold, nf in enumerate(range(0, nn, tn)):
                width = min(tn, nn - nf)
                for kf in range(0, kn, tk):
                    depth = min(tk, kn - kf)
                    pixel = m0 + mc
                    channel = group * n_g + n0 + nf
                    if channel % self.word + width > self.word:
                        raise CompileError(f"layer {q.name}: a tile's output channels {channel}..{channel + width - 1} "
                                           "straddle two GLB words (groups whose channel count does not divide "
                                           "the word)")
                    b_addr = slot + fold_offsets[(nf, kf)]
                    if ws:
                        a = dict(mode=int(GatherMode.IM2COL_WS), count=rows, lanes=depth, m0=pixel, k0=k0 + kf,
                                 group=group, b_addr=b_addr)
                    else:
                        a = dict(mode=int(GatherMode.IM2COL_OS), count=depth, lanes=rows, m0=pixel, k0=k0 + kf,
                                 group=group, b_addr=b_addr)
                    mm = dict(acc=int(not (first_k and kf == 0)), out=int(last_k and kf + depth >= kn), m=rows,
                              k=depth, n=width, acc_row=fold * mn + mc, n0=channel)
                    tiles.append({"block": block, "gather": a, "matmul": mm, "m0": pixel})
        return tiles

    def _pipeline(self, q, tiles, blocks, plan, weight_blocks, slots, uses) -> None:
        """Emit the tiles software-pipelined: the staging unit gathers tile i+1 and writes tile i-1's results back
        while the core runs tile i; operands alternate between staging slots 0 and 1, results between output
        buffers 0 and 1. Block b+1's weights are loaded by the DMA unit once every gather of block b-1 (which read
        the buffer they go to) is done, and waited for before block b+1's first gather."""
        first_of = {}
        for index, tile in enumerate(tiles):
            first_of.setdefault(tile["block"], index)
        outputs = 0
        obuf_of = {}
        for index, tile in enumerate(tiles):
            if tile["matmul"]["out"]:
                obuf_of[index] = outputs % 2
                outputs += 1

        def gather(index: int) -> None:
            tile = tiles[index]
            block = tile["block"]
            if index == first_of[block] and block and plan[block] != plan[block - 1]:
                self.emit(Op.SYNC, f"weights of block {block} loaded", mask=1)
            self.emit(Op.GATHER, "A and B", slot=index % 2, **tile["gather"])

        def writeback(index: int) -> None:
            tile = tiles[index]
            mm = tile["matmul"]
            self.emit(Op.WRITEBACK, f"results of {q.name}", obuf=obuf_of[index], m=mm["m"], n=mm["n"],
                      m0=tile["m0"], n0=mm["n0"])

        gather(0)
        for index, tile in enumerate(tiles):
            block = tile["block"]
            if index == first_of[block] and block + 1 < len(blocks) and plan[block + 1] != plan[block]:
                self._load_weights(q, weight_blocks[plan[block + 1]], slots[uses[block + 1]])
            self.emit(Op.MATMUL, q.name, slot=index % 2, obuf=obuf_of.get(index, 0),
                      **tile["matmul"])
            if index + 1 < len(tiles):
                gather(index + 1)
            if index and tiles[index - 1]["matmul"]["out"]:
                writeback(index - 1)
        self.emit(Op.SYNC, "last tile done", mask=4)
        if tiles[-1]["matmul"]["out"]:
            writeback(len(tiles) - 1)

    # -- vector steps -------------------------------------------------------------------------
    def _add(self, q: QStep, out: Buffer) -> dict:
        a = self.buffer(self.alias.get(q.step.inputs[0], q.step.inputs[0]))
        b = self.buffer(self.alias.get(q.step.inputs[1], q.step.inputs[1]))
        for reg, value in ((Reg.ZP_IN, q.inputs[0].zero_point), (Reg.ZP_IN2, q.inputs[1].zero_point),
                           (Reg.VMULT1, q.multiplier[0]), (Reg.VMULT2, q.multiplier[1]), (Reg.VSHIFT, q.shift[0])):
            _set(self.ins, reg, value)
        self._tail_regs(q)
        self.emit(Op.VADD, q.name, src=a.glb, src2=b.glb, dst=out.glb, words=out.bytes // self.word)
        return {"multipliers": [int(v) for v in q.multiplier], "shift": int(q.shift[0])}

    def _act(self, q: QStep, out: Buffer) -> dict:
        src = self.buffer(self.alias.get(q.step.inputs[0], q.step.inputs[0]))
        lut_glb = self._load_lut(q)
        for reg, value in ((Reg.ZP_IN, q.inputs[0].zero_point), (Reg.VMULT1, q.multiplier[0]),
                           (Reg.VSHIFT, q.shift[0])):
            _set(self.ins, reg, value)
        self._tail_regs(q)
        if lut_glb is not None:
            self.emit(Op.SYNC, "table loaded", mask=1)
            self.emit(Op.LOADLUT, "table", glb_addr=lut_glb)
        self.emit(Op.VACT, q.name, src=src.glb, dst=out.glb, words=out.bytes // self.word)
        if lut_glb is not None:
            self.emit(Op.SYNC, "table read", mask=2)
            self.alloc.free(lut_glb)
        return {"multiplier": int(q.multiplier[0]), "shift": int(q.shift[0])}

    def _pool(self, q: QStep, out: Buffer) -> dict:
        src = self.buffer(self.alias.get(q.step.inputs[0], q.step.inputs[0]))
        g = q.step.geometry
        self._geometry_regs(src, out, g.kernel, g.stride, g.padding, (1, 1), 1)
        average = q.kind == "avgpool"
        if average:
            for reg, value in ((Reg.ZP_IN, q.inputs[0].zero_point), (Reg.VMULT1, q.multiplier[0]),
                               (Reg.VSHIFT, q.shift[0])):
                _set(self.ins, reg, value)
            self._tail_regs(q)
        self.emit(Op.POOL, q.name, mode=int(average), src=src.glb, dst=out.glb)
        return {"multiplier": int(q.multiplier[0]), "shift": int(q.shift[0])} if average else {}

    # -- DRAM layout ---------------------------------------------------------------------------
    def _finish(self, out_root: str) -> Program:
        align = lambda value: -(-value // DRAM_ALIGN) * DRAM_ALIGN  # noqa: E731
        weights = bytes(self.image)
        input_buffer = self.buffers[self.net.input_name]
        output_buffer = self.buffers[out_root]
        memory_map = {"weights": 0, "weights_bytes": len(weights)}
        memory_map["input"] = align(len(weights))
        memory_map["input_bytes"] = input_buffer.bytes
        memory_map["output"] = align(memory_map["input"] + input_buffer.bytes)
        memory_map["output_bytes"] = output_buffer.bytes
        spill = align(memory_map["output"] + output_buffer.bytes)
        memory_map["spill"] = spill
        offsets = {}
        for index, name in self.spill_refs:
            if name == out_root:
                continue
            if name not in offsets:
                offsets[name] = spill
                spill = align(spill + self.buffers[name].bytes)
        memory_map["spill_bytes"] = spill - memory_map["spill"]
        memory_map["program"] = spill
        instructions = list(self.ins)
        for index in self.image_refs:
            ins = instructions[index]
            instructions[index] = Instruction(ins.op, {**ins.fields, "dram_addr": memory_map["weights"]
                                                       + ins["dram_addr"]}, ins.note)
        for index, name in self.spill_refs + self.input_refs:
            ins = instructions[index]
            if name == self.net.input_name:
                address = memory_map["input"]
            elif name == out_root:
                address = memory_map["output"]
            else:
                address = offsets[name]
            instructions[index] = Instruction(ins.op, {**ins.fields, "dram_addr": address}, ins.note)
        input_buffer.dram, output_buffer.dram = memory_map["input"], memory_map["output"]
        return Program(instructions, weights, memory_map, input_buffer, output_buffer, self.layers, self.acc_rows,
                       self.alloc.peak)


def compile_net(net: QuantizedNet, sim: Any, arch, dataflow: str, *, acc_rows: int = DEFAULT_ACC_ROWS) -> Program:
    """The program of ``net`` under the simulator's result ``sim`` (``sim.engine.simulate`` of the same workload on
    ``arch`` under ``dataflow``)."""
    return _Builder(net, sim, arch, dataflow, acc_rows).build()
