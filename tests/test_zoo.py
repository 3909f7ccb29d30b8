"""The model zoo: every model builds, runs, exports, and has the size the literature reports.

MACs are measured as ``FlopCounterMode`` total / 2 (it counts conv, linear and matmul, two flops per
multiply-accumulate). The mobile-network papers' "FLOPs" are multiply-adds, so they compare directly.
Tolerances follow the precision a source states: exact for a reference implementation's parameter count,
the rounding of a figure printed as "5.2M" or "141M" otherwise.
"""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from codesign import zoo
from codesign.errors import CodesignError, ModelLoadError

FAMILIES = ["resnet18", "mobilenetv2", "shufflenetv2", "ghostnet", "densenet-bc", "condensenet", "deit-tiny"]
IMAGENET = FAMILIES
CIFAR = [f"{name}-cifar" for name in FAMILIES]


@functools.cache
def _built(name: str) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    return zoo.build(name)


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _macs(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(*inputs)
    return counter.get_total_flops() // 2


@functools.cache
def _run(name: str) -> tuple[int, int, torch.Tensor]:
    """Parameters, MACs and the logits of one forward pass of zoo model ``name`` (each model runs once)."""
    model, inputs = _built(name)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        logits = model(*inputs)
    return _params(model), counter.get_total_flops() // 2, logits


def _measured(name: str) -> tuple[int, int]:
    params, macs, _ = _run(name)
    return params, macs


# --- registry -------------------------------------------------------------------------------------


def test_names_are_every_family_at_imagenet_and_cifar_size():
    assert sorted(zoo.names()) == sorted(IMAGENET + CIFAR)


def test_unknown_name_is_a_model_load_error_listing_the_valid_names_on_one_line():
    with pytest.raises(ModelLoadError) as info:
        zoo.build("resnet-18")
    message = str(info.value)
    assert "\n" not in message
    assert "'resnet-18'" in message
    assert all(name in message for name in zoo.names())
    assert isinstance(info.value, CodesignError)


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_a_seed_that_is_not_a_non_negative_integer_is_rejected(seed):
    with pytest.raises(ModelLoadError, match="seed"):
        zoo.build("resnet18-cifar", seed=seed)


def test_same_seed_gives_the_same_weights_and_inputs_and_another_seed_does_not():
    a, (xa,) = zoo.build("shufflenetv2-cifar", seed=3)
    b, (xb,) = zoo.build("shufflenetv2-cifar", seed=3)
    c, (xc,) = zoo.build("shufflenetv2-cifar", seed=4)
    assert torch.equal(xa, xb) and not torch.equal(xa, xc)
    state_a, state_b, state_c = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert any(not torch.equal(state_a[k], state_c[k]) for k in state_a if state_a[k].is_floating_point())


# --- every model runs ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", IMAGENET + CIFAR)
def test_model_is_in_eval_mode_and_maps_one_image_to_class_logits(name):
    model, inputs = _built(name)
    size, classes = (32, 10) if name.endswith("-cifar") else (224, 1000)
    assert not model.training
    assert len(inputs) == 1 and inputs[0].shape == (1, 3, size, size)
    _, _, out = _run(name)
    assert out.shape == (1, classes)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", CIFAR + ["deit-tiny", "condensenet"])
def test_model_is_exportable_and_the_exported_program_computes_the_same(name):
    model, inputs = _built(name)
    program = torch.export.export(model, inputs)
    with torch.no_grad():
        assert torch.allclose(program.module()(*inputs), model(*inputs), rtol=1e-4, atol=1e-5)


def _exported_ops(name: str) -> set[str]:
    model, inputs = _built(name)
    graph = torch.export.export(model, inputs).graph
    return {str(node.target) for node in graph.nodes if node.op == "call_function"}


def test_deit_attention_is_explicit_matmuls_and_softmax_not_fused_attention():
    ops = _exported_ops("deit-tiny-cifar")
    assert not any("scaled_dot_product" in op for op in ops)
    assert any(op.startswith("aten.matmul") or op.startswith("aten.bmm") for op in ops)
    assert any("softmax" in op for op in ops)


def test_condensenet_deployed_layers_index_select_then_shuffle():
    ops = _exported_ops("condensenet-cifar")
    assert any("index_select" in op for op in ops)
    assert any("transpose" in op for op in ops)


def test_condensenet_convolutions_past_the_stem_have_four_groups():
    model, _ = _built("condensenet-cifar")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs[0].in_channels == 3 and convs[0].groups == 1
    assert {conv.groups for conv in convs[1:]} == {4}
    assert {conv.kernel_size for conv in convs[1:]} == {(1, 1), (3, 3)}


def test_ghost_module_concatenates_primary_and_cheap_halves_and_slices_to_an_odd_width():
    from codesign.zoo.ghostnet import GhostModule

    torch.manual_seed(0)
    module = GhostModule(8, 7, relu=True).eval()
    x = torch.randn(1, 8, 5, 5)
    assert module(x).shape == (1, 7, 5, 5)
    ops = {str(n.target) for n in torch.export.export(module, (x,)).graph.nodes if n.op == "call_function"}
    assert any(op.startswith("aten.cat") for op in ops)
    assert any(op.startswith("aten.slice") for op in ops)


def test_ghostnet_squeeze_excite_is_counted_as_macs():
    # The SE 1x1 convs are convolutions, so FlopCounterMode counts them: removing them lowers the count.
    from codesign.zoo.ghostnet import SqueezeExcite

    model, inputs = _built("ghostnet-cifar")
    se_macs = 0
    for module in model.modules():
        if isinstance(module, SqueezeExcite):
            se_macs += module.reduce.in_channels * module.reduce.out_channels * 2
    assert se_macs > 0
    _, total = _measured("ghostnet-cifar")
    stripped = _macs(_without_se(model), inputs)
    assert total - stripped == se_macs


def _without_se(model: nn.Module) -> nn.Module:
    import copy

    from codesign.zoo.ghostnet import SqueezeExcite

    clone = copy.deepcopy(model)
    for module in clone.modules():
        for name, child in module.named_children():
            if isinstance(child, SqueezeExcite):
                setattr(module, name, nn.Identity())
    return clone


# --- sizes against the literature ------------------------------------------------------------------

# (name, published params, relative tolerance, published MACs, relative tolerance)
PUBLISHED = [
    # He et al., CVPR 2016, Table 1: ResNet-18 1.8e9 FLOPs (multiply-adds). Params: the torchvision reference
    # ResNet18_Weights.IMAGENET1K_V1 num_params = 11,689,512 (the paper prints no parameter count).
    ("resnet18", 11_689_512, 0.0, 1.8e9, 0.01),
    # Sandler et al., CVPR 2018, Table 4: MobileNetV2 (1.0) 3.4M params, 300M MAdds. Exact params: torchvision
    # MobileNet_V2_Weights.IMAGENET1K_V1 num_params = 3,504,872.
    ("mobilenetv2", 3_504_872, 0.0, 300e6, 0.01),
    # Ma et al., ECCV 2018, Table 5: ShuffleNet v2 1x 146M FLOPs, 2.3M weights. Exact params: torchvision
    # ShuffleNet_V2_X1_0_Weights.IMAGENET1K_V1 num_params = 2,278,604.
    ("shufflenetv2", 2_278_604, 0.0, 146e6, 0.01),
    # Han et al., CVPR 2020, Table 7: GhostNet 1.0x 5.2M weights, 141M FLOPs (printed to 0.1M / 1M).
    ("ghostnet", 5.2e6, 0.01, 141e6, 0.005),
    # Huang et al., CVPR 2017, Table 1 (DenseNet-121). Params: torchvision DenseNet121_Weights.IMAGENET1K_V1
    # num_params = 7,978,856 and GFLOPS (multiply-adds) = 2.83.
    ("densenet-bc", 7_978_856, 0.0, 2.83e9, 0.005),
    # Huang et al., CVPR 2018, ImageNet comparison (Sec. 5.2) and the authors' README results table:
    # CondenseNet-74 (C=G=4) 4.8M params, 529M FLOPs. Their counter also adds one op per ReLU / pooling
    # input element (see test_condensenet_matches_the_paper_under_its_own_counting_convention), which
    # FlopCounterMode leaves out: about 12.7M here, hence 3% on MACs.
    ("condensenet", 4.8e6, 0.01, 529e6, 0.03),
    # Touvron et al., ICML 2021, Table 1: DeiT-Ti 5M params (rounded); reference implementation
    # deit_tiny_patch16_224 = 5,717,416 params, 1.3 GFLOPs (multiply-adds; 1.26G in mmpretrain's table).
    ("deit-tiny", 5_717_416, 0.0, 1.3e9, 0.04),
]


@pytest.mark.parametrize("name,params,params_tol,macs,macs_tol", PUBLISHED, ids=[row[0] for row in PUBLISHED])
def test_imagenet_model_has_the_published_parameter_and_mac_counts(name, params, params_tol, macs, macs_tol):
    measured_params, measured_macs = _measured(name)
    assert measured_params == pytest.approx(params, rel=params_tol, abs=0)
    assert measured_macs == pytest.approx(macs, rel=macs_tol)


def test_densenet_bc_100_k12_has_the_published_parameter_count():
    # Huang et al., CVPR 2017, Table 2: DenseNet-BC (L=100, k=12) 0.8M params, printed to 0.1M.
    params, _ = _measured("densenet-bc-cifar")
    assert 0.75e6 <= params < 0.85e6


def _params_and_paper_ops(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[int, int]:
    """CondenseNet's own counting (authors' utils.measure_model): MACs plus one op per ReLU / pool input element."""
    elementwise = 0

    def count(module, args, output):
        nonlocal elementwise
        elementwise += args[0].numel()

    hooks = [
        m.register_forward_hook(count)
        for m in model.modules()
        if isinstance(m, (nn.ReLU, nn.AvgPool2d, nn.AdaptiveAvgPool2d))
    ]
    try:
        macs = _macs(model, inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return _params(model), macs + elementwise


@pytest.mark.parametrize(
    "name,groups,params,ops",
    [
        # Huang et al., CVPR 2018, CIFAR comparison (Sec. 5.1) / README: CondenseNet-86 0.52M params, 65.8M FLOPs.
        ("condensenet-cifar", 4, 0.52e6, 65.8e6),
        # Same sources, ImageNet: CondenseNet-74 (C=G=4) 4.8M params, 529M FLOPs.
        ("condensenet", 4, 4.8e6, 529e6),
        # Same sources, ImageNet: CondenseNet-74 (C=G=8) 2.9M params, 274M FLOPs.
        ("condensenet", 8, 2.9e6, 274e6),
    ],
)
def test_condensenet_matches_the_paper_under_its_own_counting_convention(name, groups, params, ops):
    from codesign.zoo.condensenet import condensenet

    spec = zoo.entry(name)
    torch.manual_seed(0)
    model = condensenet(num_classes=spec.num_classes, cifar=spec.cifar, groups=groups).eval()
    measured_params, measured_ops = _params_and_paper_ops(model, (torch.zeros(spec.input_shape),))
    assert measured_params == pytest.approx(params, rel=0.02)  # printed to 0.01M / 0.1M
    assert measured_ops == pytest.approx(ops, rel=0.005)


# --- CIFAR variants, derived from the ImageNet ones --------------------------------------------------


def _classifier_params(in_features: int, classes: int) -> int:
    return in_features * classes + classes


@pytest.mark.parametrize(
    "family,classifier_inputs,layer_saving",
    [
        # ResNet-18 CIFAR: the 7x7 stem conv (64 filters over 3 channels) becomes 3x3.
        ("resnet18", 512, 64 * 3 * (7 * 7 - 3 * 3)),
        # Only strides change in these: same layers, smaller classifier.
        ("mobilenetv2", 1280, 0),
        ("shufflenetv2", 1024, 0),
        # GhostNet: the first strided bottleneck (expansion 48) runs at stride 1, and a stride-1 Ghost
        # bottleneck has no depthwise conv between its Ghost modules: 48 3x3 filters and their BN go.
        ("ghostnet", 1280, 48 * 3 * 3 + 2 * 48),
    ],
)
def test_cifar_variant_differs_from_imagenet_only_in_stem_and_classifier(family, classifier_inputs, layer_saving):
    imagenet_params, _ = _measured(family)
    cifar_params, _ = _measured(f"{family}-cifar")
    classifier_saving = _classifier_params(classifier_inputs, 1000) - _classifier_params(classifier_inputs, 10)
    assert cifar_params == imagenet_params - layer_saving - classifier_saving


def _vit_macs(image: int, patch: int, dim: int, depth: int, mlp: int, classes: int) -> int:
    """Multiply-accumulates of a ViT from its dimensions: patch embedding, per block q/k/v, q k^T, a v,
    output projection and MLP, then the head on the class token (Dosovitskiy et al., ICLR 2021, Eq. 1-4)."""
    patches = (image // patch) ** 2
    tokens = patches + 1
    embed = patches * (3 * patch * patch) * dim
    block = tokens * dim * 3 * dim + 2 * tokens * tokens * dim + tokens * dim * dim + 2 * tokens * dim * mlp * dim
    return embed + depth * block + dim * classes


def _vit_params(image: int, patch: int, dim: int, depth: int, mlp: int, classes: int) -> int:
    tokens = (image // patch) ** 2 + 1
    embed = 3 * patch * patch * dim + dim + dim + tokens * dim  # conv weight+bias, class token, positions
    norms = 2 * 2 * dim
    attention = (3 * dim * dim + 3 * dim) + (dim * dim + dim)  # qkv and output projection
    mlp_layers = (mlp * dim * dim + mlp * dim) + (mlp * dim * dim + dim)
    block = norms + attention + mlp_layers
    return embed + depth * block + 2 * dim + dim * classes + classes


@pytest.mark.parametrize("name,image,patch,classes", [("deit-tiny", 224, 16, 1000), ("deit-tiny-cifar", 32, 4, 10)])
def test_deit_tiny_size_follows_from_its_dimensions(name, image, patch, classes):
    # DeiT-Ti: embedding 192, 3 heads, 12 blocks, MLP ratio 4 (Touvron et al., ICML 2021, Table 1).
    params, macs = _measured(name)
    assert params == _vit_params(image, patch, 192, 12, 4, classes)
    assert macs == _vit_macs(image, patch, 192, 12, 4, classes)
