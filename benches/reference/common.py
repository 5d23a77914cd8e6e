"""What the state-space step benchmarks share: the model around the SSM layer and the timing.

The model is the one `benches/ssm_step.rs` builds: token embedding, 4 pre-norm residual blocks
(LayerNorm -> SSM -> GELU -> Linear(H, 2H) -> GLU), final LayerNorm, mean pooling, a
Linear -> GELU -> Linear head; AdamW. Sizes: d_model 128, d_state 64, length 1024, batch 8.
MEGA replaces the whole block (`bench(..., make_block=...)`).

Flags: `--threads T` (intra-op threads, default 2), `--steps N` (timed steps after 2 warm-up
steps, default 10). Prints the median step time (wall and process CPU), the peak resident
memory (VmHWM) and one `RESULT` line that `benches/compare.sh` reads.
"""

import argparse
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

LAYERS, D_MODEL, D_STATE, LEN, BATCH, VOCAB, CLASSES = 4, 128, 64, 1024, 8, 32, 10
WARMUP = 2


class Block(nn.Module):
    def __init__(self, ssm):
        super().__init__()
        self.norm = nn.LayerNorm(D_MODEL)
        self.ssm = ssm
        self.output = nn.Linear(D_MODEL, 2 * D_MODEL)

    def forward(self, x):  # (B, L, H)
        y = F.gelu(self.ssm(self.norm(x)))
        return x + F.glu(self.output(y), dim=-1)


class Model(nn.Module):
    def __init__(self, make_block):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, D_MODEL)
        self.blocks = nn.ModuleList([make_block() for _ in range(LAYERS)])
        self.norm = nn.LayerNorm(D_MODEL)
        self.head = nn.Sequential(nn.Linear(D_MODEL, D_MODEL), nn.GELU(), nn.Linear(D_MODEL, CLASSES))

    def forward(self, ids):
        x = self.embedding(ids)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x).mean(dim=1))


def fft_conv(u, k, d):
    """y = k * u + d u along the last axis of u (B, H, L), by FFT of length 2L.

    k is (2, H, L) for a bidirectional layer (causal kernel, then the kernel of the reversed
    direction, as the full S4 layer lays them out) or (1, H, L).
    """
    length = u.size(-1)
    if k.size(0) == 2:
        k = F.pad(k[0], (0, length)) + F.pad(k[1].flip(-1), (length, 0))
    else:
        k = k[0]
    k_f = torch.fft.rfft(k, n=2 * length)
    u_f = torch.fft.rfft(u, n=2 * length)
    y = torch.fft.irfft(u_f * k_f, n=2 * length)[..., :length]
    return y + u * d.unsqueeze(-1)


def peak_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def arguments():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    return parser.parse_args()


def bench(name, make_ssm=None, make_block=None):
    args = arguments()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = Model(make_block or (lambda: Block(make_ssm())))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    i = torch.arange(BATCH * LEN)
    ids = ((i * 7 + i // 13) % VOCAB).view(BATCH, LEN)
    labels = torch.arange(BATCH) % CLASSES
    times, cpu = [], []
    for step in range(WARMUP + args.steps):
        start, cpu_start = time.perf_counter(), time.process_time()
        optimizer.zero_grad()
        loss = F.cross_entropy(model(ids), labels)
        loss.backward()
        optimizer.step()
        if step >= WARMUP:
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - cpu_start)
    params = sum(p.numel() for p in model.parameters())
    wall, cpu_s, peak = statistics.median(times), statistics.median(cpu), peak_mib()
    print(f"{name} (PyTorch {torch.__version__}, {args.threads} threads): {params} parameters, median step "
          f"{wall:.3f} s (min {min(times):.3f}, max {max(times):.3f}), {cpu_s:.2f} CPU-s, peak {peak:.0f} MiB")
    print(f"RESULT model={name} impl=torch threads={args.threads} params={params} "
          f"wall_s={wall:.4f} cpu_s={cpu_s:.4f} peak_mib={peak:.0f}")
