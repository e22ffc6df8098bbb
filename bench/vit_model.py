"""A small vision transformer (ViT-Tiny shaped, random weights) for the CAM parity benchmark.

Torch only, so that pytorch-grad-cam's environment imports it too. Patches of 16x16 pixels of a
224x224 image, a class token, 4 blocks, and a head on the class token.
"""
import torch
from torch import nn

DIM, DEPTH, HEADS, PATCH, SIDE, CLASSES = 192, 4, 3, 16, 14, 10


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1 = nn.LayerNorm(DIM)
        self.attn = nn.MultiheadAttention(DIM, HEADS, batch_first=True)
        self.norm2 = nn.LayerNorm(DIM)
        self.mlp = nn.Sequential(nn.Linear(DIM, 4 * DIM), nn.GELU(), nn.Linear(4 * DIM, DIM))

    def forward(self, x):
        normed = self.norm1(x)
        x = x + self.attn(normed, normed, normed, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class SmallViT(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(3, DIM, PATCH, stride=PATCH)
        self.cls_token = nn.Parameter(torch.randn(1, 1, DIM) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, 1 + SIDE * SIDE, DIM) * 0.02)
        self.blocks = nn.Sequential(*[Block() for _ in range(DEPTH)])
        self.norm = nn.LayerNorm(DIM)
        self.head = nn.Linear(DIM, CLASSES)

    def forward(self, x):
        patches = self.embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), patches], dim=1) + self.pos
        return self.head(self.norm(self.blocks(x))[:, 0])


def reshape_transform(tensor):
    """pytorch-grad-cam's ViT recipe: drop the class token, (N, C, 14, 14)."""
    patches = tensor[:, 1:, :]
    return patches.reshape(len(tensor), SIDE, SIDE, tensor.shape[2]).permute(0, 3, 1, 2)


def load(path):
    model = SmallViT()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()
