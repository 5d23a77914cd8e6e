"""DLR in PyTorch for the step benchmark: the diagonal linear RNN of Gupta, Mehta & Berant
(2022), after `DLRKernel` of ag1988/dlr: λ = exp(−ρ² + iθ) shared by the channels (N complex
states, no conjugate pairing, `Lambda_init: omega`), the kernel K_l = Re Σ_n W_n λ_n^l by an
explicit (N, L) Vandermonde matrix, W (2, H, N) complex (bidirectional: two kernels, the second
flipped), D (H), FFT convolution.
Run: python benches/reference/dlr_step.py [--threads T] [--steps N]
"""

import math

import torch
import torch.nn as nn

from common import D_MODEL, D_STATE, bench, fft_conv


class DLR(nn.Module):
    def __init__(self, h=D_MODEL, n=D_STATE, dt_min=1e-3, dt_max=1e-1, kernels=2):
        super().__init__()
        dt = torch.exp(torch.rand(n) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        self.Lambda_log_neg_re = nn.Parameter(torch.sqrt(0.5 * dt))
        self.Lambda_im = nn.Parameter(2 * math.pi * torch.arange(n) / n)
        self.W = nn.Parameter(torch.view_as_real(torch.randn(kernels, h, n, dtype=torch.cfloat) / n))
        self.D = nn.Parameter(torch.randn(h))

    def forward(self, u):  # (B, L, H)
        length = u.size(1)
        log_lambda = torch.complex(-self.Lambda_log_neg_re**2, self.Lambda_im)
        vandermonde = torch.exp(log_lambda.unsqueeze(-1) * torch.arange(length))  # (N, L)
        k = torch.einsum("chn,nl->chl", torch.view_as_complex(self.W), vandermonde).real
        return fft_conv(u.transpose(1, 2), k, self.D).transpose(1, 2)


if __name__ == "__main__":
    bench("dlr", DLR)
