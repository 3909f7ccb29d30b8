"""The host side of the board's UART link: the framed protocol of docs/board.md over any byte stream.

``BoardLink(stream)`` speaks it over an object with ``write(bytes)`` and ``read(n) -> bytes`` (which returns fewer
bytes when its timeout passes), a pyserial ``Serial`` in real use, a simulated stream in tests: write and read
memory bytes, write and read a CSR, and on top of them the host's part of docs/isa.md (load an image, START, wait
for DONE or ERROR, read CYCLES). ``frame`` and ``checksum`` are the encoding the bridge's RTL
(``hdl.system.uart_bridge``) decodes; the constants here are the protocol's single definition.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from codesign.errors import CodesignError

STATUS_DONE, STATUS_ERROR = 2, 4  # docs/isa.md, STATUS bits

__all__ = ["CMD_WRITE_MEM", "CMD_READ_MEM", "CMD_WRITE_CSR", "CMD_READ_CSR", "ACK", "NAK_CHECKSUM", "NAK_COMMAND",
           "NAK_RANGE", "NAK_CSR", "STATUS_NAMES", "MAX_LENGTH", "HEADER_BYTES", "CSR_BYTES", "checksum", "frame",
           "reply_bytes", "BoardLinkError", "BoardLink", "BoardResult"]

CMD_WRITE_MEM = 0x57  # 'W': addr, len, len payload bytes -> status
CMD_READ_MEM = 0x52  # 'R': addr, len -> status, len bytes, checksum
CMD_WRITE_CSR = 0x43  # 'C': CSR offset, len = 4, 4 payload bytes (little-endian) -> status
CMD_READ_CSR = 0x63  # 'c': CSR offset, len = 4 -> status, 4 bytes, checksum
ACK = 0x06
NAK_CHECKSUM = 0x15  # the frame's checksum byte is not the sum of its other bytes
NAK_COMMAND = 0x16  # unknown command, or a CSR command with len != 4
NAK_RANGE = 0x17  # a memory range beyond the on-chip memory (nothing written or read)
NAK_CSR = 0x18  # the CSR port answered SLVERR (an unmapped offset)
STATUS_NAMES = {ACK: "ACK", NAK_CHECKSUM: "bad checksum", NAK_COMMAND: "bad command", NAK_RANGE: "out of range",
                NAK_CSR: "CSR error"}
MAX_LENGTH = 0xFFFF  # bytes of one memory frame (the 16-bit len field)
HEADER_BYTES = 7  # command, 4 address bytes, 2 length bytes
CSR_BYTES = 4
PAYLOAD_COMMANDS = {CMD_WRITE_MEM, CMD_WRITE_CSR}


def checksum(data: bytes) -> int:
    """The protocol's checksum: the sum of the bytes modulo 256."""
    return sum(data) & 0xFF


def frame(command: int, address: int, length: int, payload: bytes = b"") -> bytes:
    """One host -> board frame: command, address (32-bit LE), length (16-bit LE), payload, checksum."""
    if not 0 <= address < 1 << 32 or not 0 <= length <= MAX_LENGTH:
        raise ValueError(f"address 0x{address:x} / length {length}: 32-bit address, length at most {MAX_LENGTH}")
    body = bytes([command & 0xFF]) + address.to_bytes(4, "little") + length.to_bytes(2, "little") + bytes(payload)
    return body + bytes([checksum(body)])


def reply_bytes(command: int, length: int) -> int:
    """Bytes of the board's reply to an acknowledged ``command`` frame (status included)."""
    if command == CMD_READ_MEM:
        return 1 + length + 1
    if command == CMD_READ_CSR:
        return 1 + CSR_BYTES + 1
    return 1


class BoardLinkError(CodesignError):
    """The board did not answer, or answered with an error (the message says which, in one line)."""


@dataclass(frozen=True)
class BoardResult:
    """What one run on the board reported."""

    done: bool
    error: bool
    error_code: int
    error_pc: int
    cycles: int
    seconds: float


class BoardLink:
    """The protocol client (module docstring). ``chunk``: bytes per memory frame (at most ``MAX_LENGTH``)."""

    def __init__(self, stream, *, chunk: int = 4096):
        if not 1 <= chunk <= MAX_LENGTH:
            raise ValueError(f"chunk={chunk}: 1 .. {MAX_LENGTH}")
        self.stream, self.chunk = stream, chunk

    # -- one frame --------------------------------------------------------------------------------------
    def _read_exact(self, count: int, what: str) -> bytes:
        data = b""
        while len(data) < count:
            got = self.stream.read(count - len(data))
            if not got:
                raise BoardLinkError(f"no answer from the board within the timeout ({what}: {len(data)} of "
                                     f"{count} bytes)")
            data += bytes(got)
        return data

    def _transact(self, command: int, address: int, length: int, payload: bytes = b"") -> bytes:
        self.stream.write(frame(command, address, length, payload))
        what = f"command 0x{command:02x} at 0x{address:x}"
        status = self._read_exact(1, what)[0]
        if status != ACK:
            name = STATUS_NAMES.get(status, f"unknown status 0x{status:02x}")
            raise BoardLinkError(f"the board refused {what} (length {length}): {name}")
        rest = reply_bytes(command, length) - 1
        if not rest:
            return b""
        answer = self._read_exact(rest, what)
        data, check = answer[:-1], answer[-1]
        if checksum(data) != check:
            raise BoardLinkError(f"the board's reply to {what} has a bad checksum")
        return data

    def write_memory(self, address: int, data: bytes) -> None:
        data = bytes(data)
        for offset in range(0, len(data), self.chunk):
            part = data[offset:offset + self.chunk]
            self._transact(CMD_WRITE_MEM, address + offset, len(part), part)

    def read_memory(self, address: int, length: int) -> bytes:
        out = bytearray()
        for offset in range(0, length, self.chunk):
            part = min(self.chunk, length - offset)
            out += self._transact(CMD_READ_MEM, address + offset, part)
        return bytes(out)

    def write_csr(self, offset: int, value: int) -> None:
        self._transact(CMD_WRITE_CSR, offset, CSR_BYTES, int(value & 0xFFFFFFFF).to_bytes(4, "little"))

    def read_csr(self, offset: int) -> int:
        return int.from_bytes(self._transact(CMD_READ_CSR, offset, CSR_BYTES), "little")

    # -- the host's part of docs/isa.md ---------------------------------------------------------------------
    def run(self, program_addr: int, program_count: int, *, timeout_s: float = 60.0,
            poll_s: float = 0.01) -> BoardResult:
        """Write PROGRAM_ADDR, PROGRAM_COUNT, START; poll STATUS until DONE or ERROR (BoardLinkError after
        ``timeout_s``); read ERROR_CODE, ERROR_PC and CYCLES."""
        from hdl.system.generate import CSR_OFFSETS as CSR

        self.write_csr(CSR["PROGRAM_ADDR"], program_addr)
        self.write_csr(CSR["PROGRAM_COUNT"], program_count)
        started = time.monotonic()
        self.write_csr(CSR["CTRL"], 1)
        while True:
            status = self.read_csr(CSR["STATUS"])
            if status & (STATUS_DONE | STATUS_ERROR):
                break
            if time.monotonic() - started > timeout_s:
                raise BoardLinkError(f"the board reported neither DONE nor ERROR within {timeout_s:g} s "
                                     f"(STATUS 0x{status:x})")
            time.sleep(poll_s)
        seconds = time.monotonic() - started
        cycles = self.read_csr(CSR["CYCLES_LO"]) | self.read_csr(CSR["CYCLES_HI"]) << 32
        return BoardResult(done=bool(status & STATUS_DONE), error=bool(status & STATUS_ERROR),
                           error_code=self.read_csr(CSR["ERROR_CODE"]), error_pc=self.read_csr(CSR["ERROR_PC"]),
                           cycles=cycles, seconds=seconds)
