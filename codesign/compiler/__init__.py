"""The compiler for the generated system: its instruction set (``isa``), instruction and program timing
(``timing``), code generation from the simulator's schedule (``program``), the numpy executor (``executor``),
the end-to-end build (``build``) and the files it writes (``artifacts``). docs/isa.md is the reference."""

__all__ = ["isa", "timing", "program", "executor", "build", "artifacts"]
