"""MEGA in PyTorch for the step benchmark, after facebookresearch/mega
(`fairseq/modules/moving_average_gated_attention.py`, `exponential_moving_average.py`,
`relative_positional_bias.py`, `normalized_feedforward_network.py`), pre-norm, no dropout:

- the bidirectional damped EMA: kernel Σ_n η_n·p_n·β_n·q_n^t with p = σ(δ), q = 1 − p·σ(α)
  (`_compute_kernel`, (D, N, L) Vandermonde), the reversed kernel one step later (as
  `benches/ssm_step.rs`'s MEGA), FFT convolution, SiLU(EMA(x) + ω⊙x);
- mx_proj → update gate σ(u), SiLU(z, r), X'W_h; Q, K = z⊙γ + β; V = SiLU(v_proj(x));
- softmax(Q Kᵀ/√z + B)·V over the whole sequence, B the relative position bias (2L − 1);
- H = SiLU(X'W_h + h_proj(r⊙O)), Y = X + u⊙(H − X); then the SiLU feed-forward network
  (width 2d) in its own pre-norm residual.

Sizes: d 128, z 64, v 256, 16 EMA dimensions, 4 blocks, length 1024, batch 8.
Run: python benches/reference/mega_step.py [--threads T] [--steps N]
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import D_MODEL, LEN, bench

Z, V, EMA_DIMS, FFN_EXPAND = 64, 256, 16, 2


class MultiHeadEMA(nn.Module):
    def __init__(self, d=D_MODEL, n=EMA_DIMS):
        super().__init__()
        self.delta = nn.Parameter(torch.randn(2 * d, n) * 0.2)
        self.alpha = nn.Parameter(torch.randn(2 * d, n) * 0.2)
        sign = torch.tensor([1.0, -1.0]).repeat(n // 2)
        self.beta = nn.Parameter(torch.randn(2 * d, n) * 0.02 + sign)
        self.gamma = nn.Parameter(torch.randn(2 * d, n))
        self.omega = nn.Parameter(torch.randn(d))
        self.scale = math.sqrt(1.0 / n)

    def kernel(self, length):
        p = torch.sigmoid(self.delta)
        q = 1.0 - p * torch.sigmoid(self.alpha)
        t = torch.arange(length + 1, dtype=p.dtype)
        vander = torch.exp(t * torch.log(q).unsqueeze(-1))  # (2D, N, L + 1)
        k = torch.einsum("dnl,dn->dl", (p * self.beta).unsqueeze(-1) * vander, self.gamma * self.scale)
        d = self.omega.size(0)
        return k[:d, :length], k[d:, 1:]  # causal lags 0.., reversed lags 1..

    def forward(self, x):  # (B, L, D)
        length = x.size(1)
        k1, k2 = self.kernel(length)
        k = F.pad(k1, (0, length)) + F.pad(k2.flip(-1), (length, 0))[..., : 2 * length]
        u = x.transpose(1, 2)
        y = torch.fft.irfft(torch.fft.rfft(u, n=2 * length) * torch.fft.rfft(k, n=2 * length), n=2 * length)
        return F.silu(y[..., :length].transpose(1, 2) + x * self.omega)


class GatedAttention(nn.Module):
    def __init__(self, d=D_MODEL, length=LEN):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.move = MultiHeadEMA(d)
        self.v_proj = nn.Linear(d, V)
        self.mx_proj = nn.Linear(d, Z + V + 2 * d)
        self.h_proj = nn.Linear(V, d)
        self.gamma = nn.Parameter(torch.randn(2, Z) * 0.02)
        self.beta = nn.Parameter(torch.zeros(2, Z))
        self.rel_pos_bias = nn.Parameter(torch.randn(2 * length - 1) * 0.02)
        i = torch.arange(length)
        self.register_buffer("offsets", i[None, :] - i[:, None] + length - 1)

    def forward(self, x):  # (B, L, D)
        residual, d, length = x, x.size(-1), x.size(1)
        x = self.norm(x)
        v = F.silu(self.v_proj(x))
        mx = self.move(x)
        u, zr, hx = torch.split(self.mx_proj(mx), [d, Z + V, d], dim=-1)
        u = torch.sigmoid(u)
        z, r = torch.split(F.silu(zr), [Z, V], dim=-1)
        qk = z.unsqueeze(2) * self.gamma + self.beta
        q, k = torch.unbind(qk, dim=2)
        bias = self.rel_pos_bias[self.offsets[:length, :length]]
        attn = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(Z) + bias, dim=-1)
        h = F.silu(hx + self.h_proj((attn @ v) * r))
        return torch.addcmul(residual, u, h - residual)


class FeedForward(nn.Module):
    def __init__(self, d=D_MODEL):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.fc1, self.fc2 = nn.Linear(d, FFN_EXPAND * d), nn.Linear(FFN_EXPAND * d, d)

    def forward(self, x):
        return x + self.fc2(F.silu(self.fc1(self.norm(x))))


if __name__ == "__main__":
    bench("mega", make_block=lambda: nn.Sequential(GatedAttention(), FeedForward()))
