"""What the fork server imports once, so that every attacker's process starts warm.

The first optimiser torch builds in a process imports ``torch._dynamo`` and its dependencies
(about 1.2 s here), and the first convolution's forward and backward set up their kernels;
done once in the fork server, every forked attacker finds them ready. Only the fork server
imports this module, and it holds no job's data (one thread: nothing to break at a fork).
"""

import torch
from torch import nn

import bench.attacker.worker  # noqa: F401  (the attacker's entry point and the built-in attacks)

torch.set_num_threads(1)
_net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2))
_x = torch.zeros(2, 1, 4, 4, requires_grad=True)
_optimiser = torch.optim.Adam([_x])
_net(_x).logsumexp(1).sum().backward()
_optimiser.step()
del _net, _x, _optimiser
