"""Testbenches of the generated RTL: the golden model and cases, a simulator-neutral driver, and the
cocotb benches (run through ``hdl.cocotb_run``) plus the Amaranth-simulator runner."""

__all__: list[str] = []
