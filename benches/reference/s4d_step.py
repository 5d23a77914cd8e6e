"""S4D in PyTorch for the step benchmark: the minimal S4D of state-spaces/s4
(`models/s4/s4d.py`: S4DKernel, FFT convolution, D skip), bidirectional as the full S4 layer
does it (a second kernel, flipped). Run: python benches/reference/s4d_step.py
"""

import math

import torch
import torch.nn as nn

from common import D_MODEL, D_STATE, bench, fft_conv


class S4D(nn.Module):
    def __init__(self, h=D_MODEL, n=D_STATE, dt_min=1e-3, dt_max=1e-1, bidirectional=True):
        super().__init__()
        self.bidirectional = bidirectional
        channels = 2 if bidirectional else 1
        self.log_dt = nn.Parameter(torch.rand(h) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        self.C = nn.Parameter(torch.view_as_real(torch.randn(channels, h, n // 2, dtype=torch.cfloat)))
        self.log_A_real = nn.Parameter(torch.log(0.5 * torch.ones(h, n // 2)))
        self.A_imag = nn.Parameter(math.pi * torch.arange(n // 2).float().repeat(h, 1))
        self.D = nn.Parameter(torch.randn(h))

    def kernel(self, length):
        dt = torch.exp(self.log_dt)
        C = torch.view_as_complex(self.C)
        A = -torch.exp(self.log_A_real) + 1j * self.A_imag
        dtA = A * dt.unsqueeze(-1)
        K = dtA.unsqueeze(-1) * torch.arange(length)
        C = C * (torch.exp(dtA) - 1.0) / A
        return 2 * torch.einsum("chn,hnl->chl", C, torch.exp(K)).real

    def forward(self, u):  # (B, L, H)
        k = self.kernel(u.size(1))
        return fft_conv(u.transpose(1, 2), k if self.bidirectional else k[:1], self.D).transpose(1, 2)


if __name__ == "__main__":
    bench("s4d", S4D)
