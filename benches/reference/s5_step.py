"""S5 in PyTorch for the step benchmark: the S5 SSM of Smith et al. (2023) as the reference
`s5/ssm.py` builds it for the LRA runs: HiPPO-N diagonalised in 8 blocks (torch.linalg.eigh in
complex128), conjugate symmetry (P/2 states, output 2 Re), B lecun-normal projected by V^-1,
C lecun-normal projected by V, learned log step per state, zero-order hold, a parallel
(Hillis-Steele) scan, bidirectional by a second scan over the reversed sequence read out
through C of width 2P.
Run: python benches/reference/s5_step.py
"""

import math

import torch
import torch.nn as nn

from common import D_MODEL, D_STATE, bench

BLOCKS = 8


def hippo_n_diagonal(n):
    """Eigenvalues (ascending imaginary part) and eigenvectors of the normal part of HiPPO-LegS."""
    k = torch.arange(n, dtype=torch.float64)
    root = torch.sqrt(1 + 2 * k)
    a = -(torch.tril(root[:, None] * root[None, :]) - torch.diag(k))
    low = torch.sqrt(k + 0.5)
    s = a + low[:, None] * low[None, :]
    mu, v = torch.linalg.eigh(-1j * s.to(torch.complex128))
    return -0.5 + 1j * mu, v


def lecun_normal(*shape, fan_in):
    w = torch.empty(*shape)
    nn.init.trunc_normal_(w, std=1.0, a=-2.0, b=2.0)
    return w * math.sqrt(1.0 / fan_in) / 0.87962566103423978


def parallel_scan(lam, v):
    """x_t = lam * x_{t-1} + v_t over dim 1 of v (B, L, N), complex; log2(L) rounds."""
    x, length, stride = v, v.size(1), 1
    while stride < length:
        shifted = nn.functional.pad(x[:, :-stride], (0, 0, stride, 0))
        x = x + lam**stride * shifted
        stride *= 2
    return x


class S5(nn.Module):
    def __init__(self, h=D_MODEL, p=D_STATE, blocks=BLOCKS, dt_min=1e-3, dt_max=1e-1):
        super().__init__()
        block = p // blocks
        lam, v = hippo_n_diagonal(block)
        lam, v = lam[: block // 2], v[:, : block // 2]
        lam = lam.repeat(blocks)
        V = torch.block_diag(*([v] * blocks))  # (P, P/2)
        self.Lambda_re = nn.Parameter(lam.real.float())
        self.Lambda_im = nn.Parameter(lam.imag.float())
        b = V.conj().T @ lecun_normal(p, h, fan_in=p).to(torch.complex128)
        self.B = nn.Parameter(torch.stack([b.real, b.imag]).float())

        def output_matrix():
            c = torch.complex(lecun_normal(h, p, fan_in=h * p), lecun_normal(h, p, fan_in=h * p))
            c = c.to(torch.complex128) @ V
            return nn.Parameter(torch.stack([c.real, c.imag]).float())

        self.C1, self.C2 = output_matrix(), output_matrix()
        self.D = nn.Parameter(torch.randn(h))
        self.log_dt = nn.Parameter(
            torch.rand(p // 2) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        )

    def forward(self, u):  # (B, L, H) real
        lam = torch.complex(self.Lambda_re, self.Lambda_im)
        lam_bar = torch.exp(lam * torch.exp(self.log_dt))
        b_bar = ((lam_bar - 1) / lam)[:, None] * torch.complex(self.B[0], self.B[1])
        bu = u.to(torch.cfloat) @ b_bar.T
        forward = parallel_scan(lam_bar, bu)
        backward = parallel_scan(lam_bar, bu.flip(1)).flip(1)
        x = torch.cat([forward, backward], dim=-1)
        c = torch.cat([torch.complex(self.C1[0], self.C1[1]), torch.complex(self.C2[0], self.C2[1])], dim=-1)
        return 2 * (x @ c.T).real + u * self.D


if __name__ == "__main__":
    bench("s5", S5)
