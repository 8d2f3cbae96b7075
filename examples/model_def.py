"""A two-layer MLP for 2-d regression: the model of examples/train_torch.py.

Every checkpoint carries this file as ``code/model_def.py``: the code that trains is the
code that ships, and ``build_model()`` rebuilds the model wherever the weights go.
"""

import torch
from torch import nn

HIDDEN = 32


class MLP(nn.Module):
    def __init__(self, hidden: int = HIDDEN):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


def build_model() -> MLP:
    return MLP()
