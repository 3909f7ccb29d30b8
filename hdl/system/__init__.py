"""The whole accelerator system in RTL (docs/isa.md, docs/system-rtl.md): controller with boot, DMA unit on an
AXI4 memory port, banked global buffer, staging unit with the vector ops, the GEMM core with its accumulator and
output path. ``params`` fixes what every block is built from; ``ports`` the signatures the blocks meet at."""
