"""The board's host link: an 8N1 UART and the framed protocol of docs/board.md ("The UART protocol") driving the
on-chip memory's host port and the system's CSR port (AXI4-Lite master).

``UartRx`` / ``UartTx``: one start bit, 8 data bits LSB first, one stop bit, ``divisor`` clock cycles a bit
(clk_hz / baud, ``baud_divisor``). The receiver samples each bit in its middle (the start bit at divisor // 2
after the falling edge it detects on a two-flip-flop synchronised line); a missing stop bit drops the byte.

``UartBridge`` decodes frames (``codesign.board_host``: command, 32-bit address, 16-bit length, payload,
checksum = sum of the bytes mod 256) and answers a status byte (and, for reads, the data and their checksum).
A memory write frame's payload bytes are written as they arrive when the range lies inside the memory; its status
(ACK, or why not) comes after the checksum, so a frame with a bad checksum may have written its bytes (the host
writes it again). A frame left unfinished for ``timeout_bytes`` byte times is dropped (the parser resynchronises).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from codesign.board_host import (ACK, CMD_READ_CSR, CMD_READ_MEM, CMD_WRITE_CSR, CMD_WRITE_MEM, CSR_BYTES,
                                 NAK_CHECKSUM, NAK_COMMAND, NAK_CSR, NAK_RANGE)
from codesign.errors import HdlError
from hdl.system.controller import axi4_lite_signature
from hdl.system.onchip_memory import host_port_signature

__all__ = ["UartRx", "UartTx", "UartBridge", "baud_divisor", "MIN_DIVISOR", "BAUD_TOLERANCE"]

MIN_DIVISOR = 4  # cycles a bit, at the least (the receiver's middle-of-bit sampling)
BAUD_TOLERANCE = 0.02  # the largest relative baud error accepted (8N1 tolerates about 4% end to end)
BITS_PER_BYTE = 10  # 8N1: start, 8 data, stop


def baud_divisor(clk_hz: float, baud: float) -> int:
    """Clock cycles a bit for ``baud`` at ``clk_hz``; HdlError when the rate cannot be made within 2%."""
    if clk_hz <= 0 or baud <= 0:
        raise HdlError(f"clock {clk_hz} Hz / baud {baud}: both must be positive")
    divisor = round(clk_hz / baud)
    if divisor < MIN_DIVISOR:
        raise HdlError(f"baud {baud:g} at {clk_hz / 1e6:g} MHz is {clk_hz / baud:.2f} cycles a bit; the UART needs "
                       f"at least {MIN_DIVISOR}")
    error = abs(clk_hz / divisor - baud) / baud
    if error > BAUD_TOLERANCE:
        raise HdlError(f"baud {baud:g} at {clk_hz / 1e6:g} MHz: divisor {divisor} gives {clk_hz / divisor:.0f} baud, "
                       f"{100 * error:.1f}% off (at most {100 * BAUD_TOLERANCE:g}%)")
    return divisor


def _check_divisor(divisor) -> None:
    if not isinstance(divisor, int) or divisor < MIN_DIVISOR:
        raise HdlError(f"UART divisor={divisor!r}: an integer of at least {MIN_DIVISOR} clock cycles a bit")


class UartRx(wiring.Component):
    """8N1 receiver: ``valid`` for one cycle with ``data`` after each byte's stop bit (module docstring)."""

    def __init__(self, divisor: int):
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__({"rx": In(1, init=1), "data": Out(8), "valid": Out(1)})

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        line = Signal(2, init=0b11)
        m.d.sync += line.eq(Cat(self.rx, line[0]))
        rx = line[1]
        timer = Signal(range(d))
        bit = Signal(range(8))
        shift = Signal(8)
        m.d.sync += self.valid.eq(0)
        with m.If(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.FSM():
            with m.State("idle"):
                with m.If(~rx):
                    m.d.sync += timer.eq(d // 2 - 1)
                    m.next = "start"
            with m.State("start"):
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(d - 1), bit.eq(0)]
                    with m.If(rx):  # a glitch, not a start bit
                        m.next = "idle"
                    with m.Else():
                        m.next = "data"
            with m.State("data"):
                with m.If(timer == 0):
                    m.d.sync += [shift.eq(Cat(shift[1:], rx)), bit.eq(bit + 1), timer.eq(d - 1)]
                    with m.If(bit == 7):
                        m.next = "stop"
            with m.State("stop"):
                with m.If(timer == 0):
                    with m.If(rx):
                        m.d.sync += [self.valid.eq(1), self.data.eq(shift)]
                        m.next = "idle"
                    with m.Else():
                        m.next = "break"
            with m.State("break"):  # framing error: wait for the line to go high
                with m.If(rx):
                    m.next = "idle"
        return m


class UartTx(wiring.Component):
    """8N1 transmitter: ``start`` with ``data`` when ``ready``; ``tx`` idles high."""

    def __init__(self, divisor: int):
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__({"data": In(8), "start": In(1), "ready": Out(1), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        shift = Signal(BITS_PER_BYTE, init=1)
        left = Signal(range(BITS_PER_BYTE + 1))
        timer = Signal(range(d))
        m.d.comb += [self.ready.eq(left == 0), self.tx.eq(shift[0])]
        with m.If(self.ready):
            with m.If(self.start):
                m.d.sync += [shift.eq(Cat(Const(0, 1), self.data, Const(1, 1))), left.eq(BITS_PER_BYTE),
                             timer.eq(d - 1)]
        with m.Elif(timer == 0):
            m.d.sync += [shift.eq(Cat(shift[1:], Const(1, 1))), left.eq(left - 1), timer.eq(d - 1)]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
        return m


class UartBridge(wiring.Component):
    """The UART protocol engine (module docstring). ``divisor``: clock cycles a bit; ``memory_bytes``: the on-chip
    memory's size (the range check); ``timeout_bytes``: byte times of silence that drop an unfinished frame.

    Ports: ``rx`` (In), ``tx`` (Out), ``mem`` (the on-chip memory's host port, Out), ``csr`` (AXI4-Lite master).
    """

    def __init__(self, divisor: int, memory_bytes: int, *, timeout_bytes: int = 64):
        _check_divisor(divisor)
        if not isinstance(memory_bytes, int) or memory_bytes <= 0:
            raise HdlError(f"UartBridge memory_bytes={memory_bytes!r}: a positive byte count")
        if not isinstance(timeout_bytes, int) or timeout_bytes < 2:
            raise HdlError(f"UartBridge timeout_bytes={timeout_bytes!r}: at least 2 byte times")
        self.divisor, self.memory_bytes, self.timeout_bytes = divisor, memory_bytes, timeout_bytes
        super().__init__({
            "rx": In(1, init=1), "tx": Out(1, init=1),
            "mem": Out(host_port_signature(memory_bytes)),
            "csr": Out(axi4_lite_signature()),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = urx = UartRx(self.divisor)
        m.submodules.uart_tx = utx = UartTx(self.divisor)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]
        byte, got = urx.data, urx.valid

        command = Signal(8)
        header = Signal(48)  # address (32 bits), length (16 bits), little-endian, shifted in
        address, length = header[:32], header[32:]
        total = Signal(8)  # checksum of the bytes received so far
        count = Signal(17)
        pointer = Signal(32)
        word = Signal(32)  # a CSR's value (payload or read data)
        status = Signal(8)
        out_sum = Signal(8)
        inside = Signal()  # address + length within the memory
        m.d.comb += inside.eq(Cat(address, Const(0, 1)) + length <= self.memory_bytes)
        payload = Mux(command == CMD_WRITE_MEM, length, Mux(command == CMD_WRITE_CSR, CSR_BYTES, 0))

        timeout = self.timeout_bytes * BITS_PER_BYTE * self.divisor
        silence = Signal(range(timeout + 1))
        receiving = Signal()
        with m.If(got | ~receiving):
            m.d.sync += silence.eq(0)
        with m.Elif(silence != timeout):
            m.d.sync += silence.eq(silence + 1)

        csr = self.csr
        aw_done, w_done = Signal(), Signal()
        m.d.comb += [csr.wstrb.eq(0b1111), csr.wdata.eq(word), csr.awaddr.eq(address), csr.araddr.eq(address)]

        def send(value, next_state):
            with m.If(utx.ready):
                m.d.comb += [utx.start.eq(1), utx.data.eq(value)]
                m.next = next_state

        with m.FSM():
            with m.State("idle"):
                with m.If(got):
                    m.d.sync += [command.eq(byte), total.eq(byte), count.eq(0)]
                    m.next = "header"
            with m.State("header"):
                m.d.comb += receiving.eq(1)
                next_header = Cat(header[8:], byte)
                with m.If(got):
                    m.d.sync += [header.eq(next_header), total.eq(total + byte), count.eq(count + 1)]
                    with m.If(count == 5):
                        m.d.sync += [count.eq(0), pointer.eq(next_header[:32])]
                        with m.If((command == CMD_WRITE_CSR) | ((command == CMD_WRITE_MEM) &
                                                               (next_header[32:] != 0))):
                            m.next = "payload"
                        with m.Else():
                            m.next = "check"
                with m.Elif(silence == timeout):
                    m.next = "idle"
            with m.State("payload"):
                m.d.comb += receiving.eq(1)
                with m.If(got):
                    m.d.sync += [total.eq(total + byte), count.eq(count + 1), pointer.eq(pointer + 1),
                                 word.eq(Cat(word[8:], byte))]
                    with m.If((command == CMD_WRITE_MEM) & inside):
                        m.d.comb += [self.mem.en.eq(1), self.mem.we.eq(1), self.mem.addr.eq(pointer),
                                     self.mem.wdata.eq(byte)]
                    with m.If(count == payload - 1):
                        m.next = "check"
                with m.Elif(silence == timeout):
                    m.next = "idle"
            with m.State("check"):
                m.d.comb += receiving.eq(1)
                with m.If(got):
                    m.d.sync += [pointer.eq(address), count.eq(0), out_sum.eq(0), aw_done.eq(0), w_done.eq(0)]
                    csr_ok = (length == CSR_BYTES) & (address < 1 << len(csr.awaddr))
                    with m.If(byte != total):
                        m.d.sync += status.eq(NAK_CHECKSUM)
                        m.next = "status"
                    with m.Elif((command == CMD_WRITE_MEM) | (command == CMD_READ_MEM)):
                        m.d.sync += status.eq(Mux(inside, ACK, NAK_RANGE))
                        m.next = "status"
                    with m.Elif((command == CMD_WRITE_CSR) & csr_ok):
                        m.next = "csr_write"
                    with m.Elif((command == CMD_READ_CSR) & csr_ok):
                        m.next = "csr_read"
                    with m.Else():
                        m.d.sync += status.eq(NAK_COMMAND)
                        m.next = "status"
                with m.Elif(silence == timeout):
                    m.next = "idle"
            with m.State("csr_write"):  # AW and W until each is taken, then the B response
                m.d.comb += [csr.awvalid.eq(~aw_done), csr.wvalid.eq(~w_done), csr.bready.eq(aw_done & w_done)]
                with m.If(csr.awready & ~aw_done):
                    m.d.sync += aw_done.eq(1)
                with m.If(csr.wready & ~w_done):
                    m.d.sync += w_done.eq(1)
                with m.If(aw_done & w_done & csr.bvalid):
                    m.d.sync += status.eq(Mux(csr.bresp == 0, ACK, NAK_CSR))
                    m.next = "status"
            with m.State("csr_read"):
                m.d.comb += [csr.arvalid.eq(~aw_done), csr.rready.eq(aw_done)]
                with m.If(csr.arready & ~aw_done):
                    m.d.sync += aw_done.eq(1)
                with m.If(aw_done & csr.rvalid):
                    m.d.sync += [word.eq(csr.rdata), status.eq(Mux(csr.rresp == 0, ACK, NAK_CSR))]
                    m.next = "status"
            with m.State("status"):
                with m.If(status != ACK):
                    send(status, "idle")
                with m.Elif(command == CMD_READ_MEM):
                    send(status, "mem_read")
                with m.Elif(command == CMD_READ_CSR):
                    send(status, "csr_byte")
                with m.Else():
                    send(status, "idle")
            with m.State("mem_read"):  # read the byte at pointer; the next state has it
                with m.If(count == length):
                    m.next = "sum"
                with m.Else():
                    m.d.comb += [self.mem.en.eq(1), self.mem.addr.eq(pointer)]
                    m.next = "mem_byte"
            with m.State("mem_byte"):
                with m.If(utx.ready):
                    m.d.comb += [utx.start.eq(1), utx.data.eq(self.mem.rdata)]
                    m.d.sync += [out_sum.eq(out_sum + self.mem.rdata), pointer.eq(pointer + 1),
                                 count.eq(count + 1)]
                    m.next = "mem_read"
            with m.State("csr_byte"):
                with m.If(utx.ready):
                    m.d.comb += [utx.start.eq(1), utx.data.eq(word[:8])]
                    m.d.sync += [out_sum.eq(out_sum + word[:8]), word.eq(word >> 8), count.eq(count + 1)]
                    with m.If(count == CSR_BYTES - 1):
                        m.next = "sum"
            with m.State("sum"):
                send(out_sum, "idle")
        return m
