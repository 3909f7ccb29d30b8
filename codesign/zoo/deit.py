"""DeiT-Tiny (Touvron et al., "Training data-efficient image transformers & distillation through attention",
ICML 2021, Table 1): a ViT (Dosovitskiy et al., ICLR 2021) with embedding 192, 3 heads, 12 blocks, MLP 4x.

Written with explicit q/k/v projections, ``q @ k^T`` and ``softmax(.) @ v`` matmuls (no fused attention),
so every product is a visible GEMM after ``torch.export``. Class token and positional embedding are
parameters. ImageNet: 16x16 patches of a 224x224 image (196 + 1 tokens); CIFAR: 4x4 patches of a 32x32
image (64 + 1 tokens).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["EMBED_DIM", "HEADS", "DEPTH", "MLP_RATIO", "Attention", "Block", "VisionTransformer", "deit_tiny"]

EMBED_DIM = 192  # DeiT-Ti, Touvron et al. 2021, Table 1
HEADS = 3
DEPTH = 12
MLP_RATIO = 4


class Attention(nn.Module):
    """Multi-head self-attention: fused q/k/v linear, per-head scaled dot products, softmax, output linear."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"embedding {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # each (batch, heads, tokens, head_dim)
        scores = (q * self.scale) @ k.transpose(-2, -1)
        weights = scores.softmax(dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(batch, tokens, dim)
        return self.proj(out)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)), then x + MLP(LN(x)) with GELU."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """Patch embedding (strided conv), class token, positional embedding, blocks, LN, linear head on the class token."""

    def __init__(
        self, image_size: int, patch_size: int, dim: int, depth: int, heads: int, mlp_ratio: int, num_classes: int
    ) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image size {image_size} is not a multiple of patch size {patch_size}")
        patches = (image_size // patch_size) ** 2
        self.patch_embed = nn.Conv2d(3, dim, patch_size, patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, patches + 1, dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = nn.Sequential(*(Block(dim, heads, mlp_ratio) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # (batch, patches, dim)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat((cls, x), dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


def deit_tiny(num_classes: int = 1000, cifar: bool = False) -> VisionTransformer:
    """DeiT-Tiny: patch 16 on 224x224 (ImageNet) or patch 4 on 32x32 (CIFAR)."""
    image_size, patch_size = (32, 4) if cifar else (224, 16)
    return VisionTransformer(image_size, patch_size, EMBED_DIM, DEPTH, HEADS, MLP_RATIO, num_classes)
