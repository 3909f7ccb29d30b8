"""AlexNet's five conv layers as in Krizhevsky et al. 2012 (grouped conv2, conv4, conv5), 227x227 input, batch 4
(the Eyeriss JSSC 2017 benchmark; bench/eyeriss_fidelity.py)."""
import torch
from torch import nn


class AlexNetConvs(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, 11, stride=4), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(96, 256, 5, padding=2, groups=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 384, 3, padding=1, groups=2), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1, groups=2), nn.ReLU())

    def forward(self, x):
        return self.features(x)


def model():
    torch.manual_seed(0)  # weights and the input batch reproducible, so are the measured activation zeros
    return AlexNetConvs().eval(), torch.randn(4, 3, 227, 227)
