"""S4 (NPLR) in PyTorch for the step benchmark, after `SSMKernelDPLR` of state-spaces/s4
(`models/s4/s4.py`) with its fallback `cauchy_naive` (no pykeops, no CUDA extension):

- A = Λ − P P* from HiPPO-LegS (`nplr("legs", N)`: the normal part diagonalised, P and B
  projected onto its eigenvectors, the N/2 modes with positive imaginary part kept);
- C̃ = C (I − Ā^L) set once at initialisation (`_setup_C`), Ā the bilinear discretisation;
- the kernel's generating function at the roots of unity by the Cauchy kernel and the
  Woodbury correction, times 2/(1 + ω), then an inverse real FFT (`forward`);
- bidirectional as the full layer: two output channels, the second flipped; FFT convolution.

Parameters per layer: log_dt (H), log_A_real and A_imag (H, N/2), B and P (H, N/2) complex,
C (2, H, N/2) complex, D (H): the count `benches/ssm_step.rs -- s4` prints.
Run: python benches/reference/s4_step.py [--threads T] [--steps N]
"""

import math

import torch
import torch.nn as nn

from common import D_MODEL, D_STATE, LEN, bench, fft_conv


def legs_nplr(n):
    """(Λ, P, B) of HiPPO-LegS in NPLR form, the N/2 modes with Im Λ > 0 (as `nplr`)."""
    k = torch.arange(n, dtype=torch.float64)
    root = torch.sqrt(1 + 2 * k)
    a = -(torch.tril(root[:, None] * root[None, :]) - torch.diag(k))
    p = torch.sqrt(k + 0.5)
    s = a + p[:, None] * p[None, :]  # normal: skew-symmetric minus I/2
    mu, v = torch.linalg.eigh(-1j * s.to(torch.complex128))
    lam = -0.5 + 1j * mu
    keep = mu > 0
    v = v[:, keep]
    return lam[keep], v.conj().T @ p.to(torch.complex128), v.conj().T @ root.to(torch.complex128)


def cauchy_naive(v, z, w):
    """Σ_n v_n / (z − w_n) over the conjugate-doubled modes (as `cauchy_naive`): v, w (..., N), z (L)."""
    v = torch.cat([v, v.conj()], dim=-1)
    w = torch.cat([w, w.conj()], dim=-1)
    return (v.unsqueeze(-1) / (z - w.unsqueeze(-1))).sum(dim=-2)


class S4(nn.Module):
    def __init__(self, h=D_MODEL, n=D_STATE, length=LEN, dt_min=1e-3, dt_max=1e-1, channels=2):
        super().__init__()
        lam, p, b = legs_nplr(n)
        m = n // 2
        self.log_dt = nn.Parameter(torch.rand(h) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        self.log_A_real = nn.Parameter(torch.log(-lam.real).float().repeat(h, 1))
        self.A_imag = nn.Parameter(lam.imag.float().repeat(h, 1))
        self.B = nn.Parameter(torch.view_as_real(b.to(torch.cfloat).repeat(h, 1)).clone())
        self.P = nn.Parameter(torch.view_as_real(p.to(torch.cfloat).repeat(1, h, 1)).clone())
        c = torch.randn(channels, h, m, dtype=torch.cdouble) * 0.5**0.5
        self.C = nn.Parameter(torch.view_as_real(self.c_tilde(c, length).to(torch.cfloat)))
        self.D = nn.Parameter(torch.randn(h))
        omega = torch.exp(-2j * math.pi / length * torch.arange(length // 2 + 1, dtype=torch.float64))
        self.register_buffer("omega", omega.to(torch.cfloat))
        self.register_buffer("z", (2 * (1 - omega) / (1 + omega)).to(torch.cfloat))
        self.length = length

    @torch.no_grad()
    def c_tilde(self, c, length):
        """C (I − Ā^L) with Ā = (I − Δ/2·A)⁻¹(I + Δ/2·A), A = Λ − P P* dense (`_setup_C`)."""
        lam = torch.complex(-torch.exp(self.log_A_real.double()), self.A_imag.double())
        p = torch.view_as_complex(self.P.double())[0]
        full = lambda x: torch.cat([x, x.conj()], dim=-1)
        a = torch.diag_embed(full(lam)) - full(p).unsqueeze(-1) * full(p).conj().unsqueeze(-2)
        dt = torch.exp(self.log_dt.double())[:, None, None]
        eye = torch.eye(a.size(-1), dtype=a.dtype)
        da = torch.linalg.solve(eye - dt / 2 * a, eye + dt / 2 * a)
        c_full = full(c)
        prod = torch.einsum("hmn,chn->chm", torch.linalg.matrix_power(da, length).transpose(-1, -2), c_full)
        return (c_full - prod)[..., : c.size(-1)]

    def kernel(self):
        dt = torch.exp(self.log_dt)
        A = torch.complex(-torch.exp(self.log_A_real), self.A_imag) * dt.unsqueeze(-1)  # (H, N)
        B = torch.view_as_complex(self.B).unsqueeze(0)  # (1, H, N)
        P = torch.view_as_complex(self.P)  # (1, H, N)
        C = torch.view_as_complex(self.C)  # (2, H, N)
        B = torch.cat([B, P], dim=-3)  # (1 + R, H, N)
        C = torch.cat([C, P.conj()], dim=-3)  # (C + R, H, N)
        v = B.unsqueeze(-3) * C.unsqueeze(-4) * dt.unsqueeze(-1)  # (1 + R, C + R, H, N)
        r = cauchy_naive(v, self.z, A)  # (1 + R, C + R, H, L/2 + 1)
        k_f = r[:-1, :-1] - r[:-1, -1:] * r[-1:, :-1] / (1 + r[-1:, -1:])
        k_f = k_f * 2 / (1 + self.omega)
        return torch.fft.irfft(k_f, n=self.length)[0]  # (C, H, L)

    def forward(self, u):  # (B, L, H)
        k = self.kernel()[..., : u.size(1)]
        return fft_conv(u.transpose(1, 2), k, self.D).transpose(1, 2)


if __name__ == "__main__":
    bench("s4", S4)
