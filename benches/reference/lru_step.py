"""LRU in PyTorch for the step benchmark: the LRU of Orvieto et al. (2023, appendix A: ring
init, exponential parametrisation, gamma normalisation), the scan done as a parallel
(Hillis-Steele) scan, bidirectional with a second recurrence over the reversed sequence.
Run: python benches/reference/lru_step.py
"""

import math

import torch
import torch.nn as nn

from common import D_MODEL, D_STATE, bench


def parallel_scan(lam, v):
    """x_t = lam * x_{t-1} + v_t over dim 1 of v (B, L, N), complex; log2(L) rounds."""
    x, length, stride = v, v.size(1), 1
    while stride < length:
        shifted = nn.functional.pad(x[:, :-stride], (0, 0, stride, 0))
        x = x + lam**stride * shifted
        stride *= 2
    return x


class Direction(nn.Module):
    def __init__(self, h, n, r_min=0.9, r_max=0.999, max_phase=2 * math.pi):
        super().__init__()
        u1, u2 = torch.rand(n), torch.rand(n)
        self.nu_log = nn.Parameter(torch.log(-0.5 * torch.log(u1 * (r_max**2 - r_min**2) + r_min**2)))
        self.theta_log = nn.Parameter(torch.log(max_phase * u2))
        modulus = torch.exp(-torch.exp(self.nu_log.detach()))
        self.gamma_log = nn.Parameter(torch.log(torch.sqrt(1 - modulus**2)))
        self.B = nn.Parameter(torch.randn(2, n, h) / math.sqrt(2 * h))
        self.C = nn.Parameter(torch.randn(2, h, n) / math.sqrt(n))

    def forward(self, u):  # (B, L, H) real
        lam = torch.exp(-torch.exp(self.nu_log) + 1j * torch.exp(self.theta_log))
        B = torch.complex(self.B[0], self.B[1]) * torch.exp(self.gamma_log).unsqueeze(-1)
        C = torch.complex(self.C[0], self.C[1])
        x = parallel_scan(lam, u.to(torch.cfloat) @ B.T)
        return (x @ C.T).real


class LRU(nn.Module):
    def __init__(self, h=D_MODEL, n=D_STATE):
        super().__init__()
        self.forward_dir = Direction(h, n)
        self.backward_dir = Direction(h, n)
        self.D = nn.Parameter(torch.randn(h))

    def forward(self, u):
        backward = self.backward_dir(u.flip(1)).flip(1)
        return self.forward_dir(u) + backward + u * self.D


if __name__ == "__main__":
    bench("lru", LRU)
