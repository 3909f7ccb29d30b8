"""The compiler for the generated system (its instruction set and timing are the contract's:
``codesign.contract.isa``, ``codesign.contract.system_timing``): code generation from the simulator's schedule (``program``), the numpy executor (``executor``),
the end-to-end build (``build``) and the files it writes (``artifacts``). docs/isa.md is the reference."""

__all__ = ["program", "executor", "build", "artifacts"]
