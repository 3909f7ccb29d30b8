"""Op coverage on real models: 56 torchvision and timm classification models with random weights.

For each model: capture it (``codesign.from_torch``), compare its MACs with an independent count
(FlopCounterMode flops / 2 with attention on the math backend, plus the closed formula for every LSTM /
GRU / RNN module FlopCounterMode counts 0 for: on the CPU those run as one fused kernel it has no formula
for), its parameter total with the model's, list the ops the capture leaves unsupported and whether
``codesign sim`` would refuse the model, count the ops of the coverage issue the exported program holds
(transposed and 3-D convolution, einsum, recurrent layers, roll, interpolation, grid_sample / affine_grid,
vector norms, new_zeros, reshape_as, MAC ops inside constant subgraphs), and check that each layer's graph
inputs come in the order of its ``input_shapes``. Prints a markdown table; ``--json FILE`` keeps the rows.

    .venv/bin/python bench/op_coverage.py [--json FILE] [NAME ...]

torchvision and timm are bench dependencies only (``pip install torchvision timm -c constraints.txt``). The
registry's torchvision wheel is built against CUDA torch: its compiled detection ops (nms, roi_align, ...)
do not load against the CPU torch, and classification models use none of them, so the two op schemas
torchvision's import registers fake kernels for are declared before importing it.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections import Counter

import torch

__all__ = ["MODELS", "ISSUE_OPS", "rnn_formula_macs", "measure", "main"]

# (source, name, input shape, keyword arguments of the constructor)
MODELS: list[tuple[str, str, tuple[int, ...], dict]] = [
    ("torchvision", "alexnet", (1, 3, 224, 224), {}),
    ("torchvision", "vgg11_bn", (1, 3, 224, 224), {}),
    ("torchvision", "resnet18", (1, 3, 224, 224), {}),
    ("torchvision", "resnet50", (1, 3, 224, 224), {}),
    ("torchvision", "resnext50_32x4d", (1, 3, 224, 224), {}),
    ("torchvision", "wide_resnet50_2", (1, 3, 224, 224), {}),
    ("torchvision", "squeezenet1_1", (1, 3, 224, 224), {}),
    ("torchvision", "densenet121", (1, 3, 224, 224), {}),
    ("torchvision", "googlenet", (1, 3, 224, 224), {"aux_logits": False, "init_weights": False}),
    ("torchvision", "inception_v3", (1, 3, 299, 299), {"aux_logits": False, "init_weights": False}),
    ("torchvision", "mobilenet_v2", (1, 3, 224, 224), {}),
    ("torchvision", "mobilenet_v3_large", (1, 3, 224, 224), {}),
    ("torchvision", "shufflenet_v2_x1_0", (1, 3, 224, 224), {}),
    ("torchvision", "mnasnet1_0", (1, 3, 224, 224), {}),
    ("torchvision", "efficientnet_b0", (1, 3, 224, 224), {}),
    ("torchvision", "efficientnet_v2_s", (1, 3, 224, 224), {}),
    ("torchvision", "regnet_x_400mf", (1, 3, 224, 224), {}),
    ("torchvision", "regnet_y_400mf", (1, 3, 224, 224), {}),
    ("torchvision", "convnext_tiny", (1, 3, 224, 224), {}),
    ("torchvision", "vit_b_16", (1, 3, 224, 224), {}),
    ("torchvision", "swin_t", (1, 3, 224, 224), {}),
    ("torchvision", "swin_v2_t", (1, 3, 256, 256), {}),
    ("torchvision", "maxvit_t", (1, 3, 224, 224), {}),
    ("torchvision.video", "r3d_18", (1, 3, 8, 112, 112), {}),
    ("timm", "resnet18", (1, 3, 224, 224), {}),
    ("timm", "efficientnet_b0", (1, 3, 224, 224), {}),
    ("timm", "mobilenetv3_large_100", (1, 3, 224, 224), {}),
    ("timm", "convnext_atto", (1, 3, 224, 224), {}),
    ("timm", "deit_tiny_patch16_224", (1, 3, 224, 224), {}),
    ("timm", "swin_tiny_patch4_window7_224", (1, 3, 224, 224), {}),
    ("timm", "swinv2_cr_tiny_ns_224", (1, 3, 224, 224), {}),
    ("timm", "edgenext_xx_small", (1, 3, 256, 256), {}),
    ("timm", "sequencer2d_s", (1, 3, 224, 224), {}),
    ("timm", "sequencer2d_s+gru", (1, 3, 224, 224), {}),
    ("timm", "hrnet_w18_small", (1, 3, 224, 224), {}),
    ("timm", "levit_128s", (1, 3, 224, 224), {}),
    ("timm", "nf_resnet26", (1, 3, 224, 224), {}),
    ("timm", "lambda_resnet26t", (1, 3, 256, 256), {}),
    ("timm", "convit_tiny", (1, 3, 224, 224), {}),
    ("timm", "mvitv2_tiny", (1, 3, 224, 224), {}),
    ("timm", "lowformer_b0", (1, 3, 224, 224), {}),
    ("timm", "xcit_nano_12_p16_224", (1, 3, 224, 224), {}),
    ("timm", "mobilevit_xxs", (1, 3, 256, 256), {}),
    ("timm", "efficientvit_b0", (1, 3, 224, 224), {}),
    ("timm", "fastvit_t8", (1, 3, 256, 256), {}),
    ("timm", "poolformer_s12", (1, 3, 224, 224), {}),
    ("timm", "resmlp_12_224", (1, 3, 224, 224), {}),
    ("timm", "pit_ti_224", (1, 3, 224, 224), {}),
    ("timm", "twins_svt_small", (1, 3, 224, 224), {}),
    ("timm", "ghostnet_100", (1, 3, 224, 224), {}),
    ("timm", "dla34", (1, 3, 224, 224), {}),
    ("timm", "rexnet_100", (1, 3, 224, 224), {}),
    ("timm", "coat_lite_tiny", (1, 3, 224, 224), {}),
    ("timm", "tiny_vit_5m_224", (1, 3, 224, 224), {}),
    ("timm", "halonet26t", (1, 3, 256, 256), {}),
    ("timm", "naflexvit_base_patch16_gap", (1, 3, 224, 224), {"pos_embed_use_grid_sample": True}),
]

# The ops of the coverage issue, by overload packet name (``convolution`` counts when transposed).
ISSUE_OPS = frozenset(
    """
    conv_transpose1d conv_transpose2d conv_transpose3d conv3d einsum lstm gru rnn_tanh rnn_relu roll
    upsample_nearest1d upsample_nearest2d upsample_bilinear2d upsample_bicubic2d _upsample_bilinear2d_aa
    grid_sampler grid_sampler_2d affine_grid_generator linalg_vector_norm new_zeros reshape_as
    """.split()
)


def _import_torchvision():
    """torchvision without its compiled detection ops (module docstring)."""
    if "torchvision" not in sys.modules:
        library = torch.library.Library("torchvision", "DEF")  # noqa: F841 -- kept alive by the registry
        library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        library.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _import_torchvision.library = library
    import torchvision

    return torchvision


def _gru_sequencer(**kwargs):
    """timm's Sequencer2d-S with its bidirectional LSTMs replaced by GRUs (timm's RNN2dBase, nn.GRU)."""
    from timm.models import sequencer

    class GRU2d(sequencer.RNN2dBase):
        def __init__(self, input_size, hidden_size, num_layers=1, bias=True, bidirectional=True, union="cat",
                     with_fc=True, device=None, dtype=None):
            super().__init__(input_size, hidden_size, num_layers, bias, bidirectional, union, with_fc, device, dtype)
            options = {"batch_first": True, "bias": bias, "bidirectional": bidirectional, "device": device,
                       "dtype": dtype}
            if self.with_vertical:
                self.rnn_v = torch.nn.GRU(input_size, hidden_size, num_layers, **options)
            if self.with_horizontal:
                self.rnn_h = torch.nn.GRU(input_size, hidden_size, num_layers, **options)

    return sequencer.Sequencer2d(layers=[4, 3, 8, 3], patch_sizes=[7, 2, 1, 1], embed_dims=[192, 384, 384, 384],
                                 hidden_sizes=[48, 96, 96, 96], mlp_ratios=[3.0, 3.0, 3.0, 3.0], rnn_layer=GRU2d,
                                 **kwargs)


def build(source: str, name: str, kwargs: dict) -> torch.nn.Module:
    """A model with random weights in eval mode."""
    if source.startswith("torchvision"):
        torchvision = _import_torchvision()
        models = torchvision.models.video if source == "torchvision.video" else torchvision.models
        return getattr(models, name)(weights=None, **kwargs).eval()
    _import_torchvision()
    import timm

    if name == "sequencer2d_s+gru":
        return _gru_sequencer(**kwargs).eval()
    return timm.create_model(name, pretrained=False, **kwargs).eval()


def rnn_formula_macs(module: torch.nn.Module, batch: int, steps: int) -> int:
    """MACs of an LSTM / GRU / RNN over ``steps`` timesteps: per layer and direction, every step multiplies
    the input (I, or H * directions above the first layer) and the hidden state (H) by the gates' weights
    (4 gates for LSTM, 3 for GRU, 1 for RNN): steps * batch * gates * H * (I + H)."""
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[type(module).__name__]
    hidden, directions = module.hidden_size, 2 if module.bidirectional else 1
    total = 0
    for layer in range(module.num_layers):
        inputs = module.input_size if layer == 0 else hidden * directions
        total += directions * steps * batch * gates * hidden * (inputs + hidden)
    return total


def _reference_macs(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[int, int]:
    """(independent MACs, of which by the RNN formula): FlopCounterMode, and the formula for every recurrent
    module FlopCounterMode counts 0 for (its shapes recorded by a forward hook)."""
    from codesign.capture.reference import flop_counter_macs

    shapes: dict[str, tuple[int, int]] = {}
    hooks = []
    for path, module in model.named_modules():
        if isinstance(module, (torch.nn.LSTM, torch.nn.GRU, torch.nn.RNN)):
            def record(mod, args, _out, path=path):
                x = args[0]
                batch, steps = (x.shape[0], x.shape[1]) if mod.batch_first else (x.shape[1], x.shape[0])
                calls = shapes.get(path, (0, 0))
                shapes[path] = (calls[0] + rnn_formula_macs(mod, int(batch), int(steps)), calls[1] + 1)
            hooks.append(module.register_forward_hook(record))
    try:
        total, per_module = flop_counter_macs(model, inputs)
    finally:
        for hook in hooks:
            hook.remove()
    formula = sum(macs for path, (macs, _) in shapes.items() if per_module.get(path, 0) == 0)
    return total + formula, formula


def _issue_ops(program) -> Counter:
    from codesign.capture import aten_ops
    from codesign.capture.constants import ConstantNodes
    from codesign.capture.folding import packet_name

    constants = ConstantNodes(program)
    found: Counter = Counter()
    for node in program.graph_module.graph.nodes:
        packet = packet_name(node)
        if packet is None:
            continue
        if packet in ("convolution", "_convolution") and len(node.args) > 6 and node.args[6]:
            packet = "conv_transpose"
        if packet in ISSUE_OPS or packet == "conv_transpose":
            found[packet] += 1
        if node in constants and packet in aten_ops.MAC_OPS:
            found["constant MAC op"] += 1
    return found


def _swapped_inputs(workload) -> int:
    """Layers whose graph inputs (producers) hold the shapes of ``input_shapes`` in another order."""
    shapes = {layer.name: tuple(layer.output_shape) for layer in workload.layers}
    swapped = 0
    for layer in workload.layers:
        preds = list(workload.graph.predecessors(layer.name))
        wanted = [tuple(shape) for shape in layer.input_shapes]
        if len(preds) < 2 or len(preds) != len(wanted):
            continue
        got = [shapes[name] for name in preds]
        if got != wanted and sorted(got) == sorted(wanted):
            swapped += 1
    return swapped


def measure(source: str, name: str, shape: tuple[int, ...], kwargs: dict) -> dict:
    """One model's row (see the module docstring)."""
    from codesign.capture import from_torch
    from codesign.capture.export import export_model
    from codesign.errors import UnmappedOpsError
    from codesign.unmapped import check_mapped

    torch.manual_seed(0)
    model = build(source, name, kwargs)
    inputs = (torch.randn(*shape),)
    params = sum(p.numel() for p in model.parameters())
    start = time.perf_counter()
    program = export_model(model, inputs)
    workload = from_torch(program, inputs, name=name, measure_activations=False)
    capture_s = time.perf_counter() - start
    reference, formula = _reference_macs(model, inputs)
    totals = workload.totals()
    try:
        check_mapped(workload, name, allow=False)
        refused = ""
    except UnmappedOpsError as exc:
        refused = str(exc)
    unmapped = workload.unmapped()
    return {
        "source": source, "model": name, "input": list(shape), "layers": totals["layers"], "macs": totals["macs"],
        "reference_macs": reference, "rnn_formula_macs": formula, "params": totals["params"], "model_params": params,
        "unsupported": [list(item) for item in workload.unsupported],
        "unsupported_macs_share": unmapped.macs_share if unmapped else 0.0,
        "issue_ops": dict(sorted(_issue_ops(program).items())), "swapped_inputs": _swapped_inputs(workload),
        "refused": refused, "capture_s": capture_s,
    }


def _row(row: dict) -> str:
    same = "yes" if row["macs"] == row["reference_macs"] else f"**no** ({row['reference_macs']:,})"
    if row["rnn_formula_macs"]:
        same += f" (RNN formula {row['rnn_formula_macs']:,})"
    params = "yes" if row["params"] == row["model_params"] else f"**no** ({row['model_params']:,})"
    ops = ", ".join(f"{op} x{count}" for op, count in row["issue_ops"].items())
    unsupported = ", ".join(f"{op} x{count}" for op, count in row["unsupported"]) or "none"
    sim = "refused (exit 2)" if row["refused"] else "runs"
    return (f"| {row['source']} | {row['model']} | {'x'.join(map(str, row['input']))} | {row['layers']} | "
            f"{row['macs']:,} | {same} | {params} | {ops} | {unsupported} | {sim} | {row['swapped_inputs']} | "
            f"{row['capture_s']:.1f} |")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="models to run (default: all 56)")
    parser.add_argument("--json", default=None, help="write the rows as JSON")
    args = parser.parse_args(argv)
    chosen = [entry for entry in MODELS if not args.names or entry[1] in args.names]
    torch.set_num_threads(1)
    print(f"Op coverage; torch {torch.__version__}, {len(chosen)} models, random weights.\n")
    print("| source | model | input | layers | MACs | = independent count | params = model | issue ops in the "
          "export | unsupported | sim | swapped inputs | capture s |")
    print("|---|---|---|---:|---:|---|:---:|---|---|---|---:|---:|")
    rows, failed = [], 0
    for source, name, shape, kwargs in chosen:
        try:
            row = measure(source, name, shape, kwargs)
        except Exception as exc:  # one model failing does not stop the sweep
            failed += 1
            reason = " ".join(str(exc).split())[:160]
            print(f"| {source} | {name} | {'x'.join(map(str, shape))} | | | | | | failed: {reason} | | | |")
            sys.stdout.flush()
            continue
        rows.append(row)
        print(_row(row))
        sys.stdout.flush()
        gc.collect()
    matched = sum(1 for row in rows if row["macs"] == row["reference_macs"])
    params_ok = sum(1 for row in rows if row["params"] == row["model_params"])
    refused = sum(1 for row in rows if row["refused"])
    swapped = sum(1 for row in rows if row["swapped_inputs"])
    print(f"\n{len(rows)} of {len(chosen)} captured; MACs equal the independent count on {matched}, parameters "
          f"on {params_ok}; {refused} refused by sim for unmapped ops; {swapped} with swapped layer inputs.")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)
    return 1 if failed or matched != len(rows) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
