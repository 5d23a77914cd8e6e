"""PyTorch reference for `benches/transformer_step.rs`: the same model and training step.

4-layer pre-norm Transformer encoder, d_model 128, 4 heads, FF 512 (exact GELU), sinusoidal
positions, mean pooling, MLP head (128 -> 128 -> 10), batch 8, length 1024, cross-entropy,
AdamW (lr 1e-4) with gradient clipping at 1.0, on `--threads` intra-op threads (default 2).

    python benches/reference/transformer_step.py --attention explicit   # softmax(QK^T/sqrt(d))V
    python benches/reference/transformer_step.py --attention sdpa       # F.scaled_dot_product_attention

Run each attention mode in its own process: the peak memory (VmHWM) is per process.
"""

import argparse
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

BATCH, SEQ, VOCAB, CLASSES = 8, 1024, 256, 10
D_MODEL, LAYERS, HEADS, FFN = 128, 4, 4, 512


class Attention(nn.Module):
    def __init__(self, d, heads, mode):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.heads, self.mode = heads, mode

    def forward(self, x):
        b, l, d = x.shape
        split = lambda t: t.view(b, l, self.heads, d // self.heads).transpose(1, 2)
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        if self.mode == "sdpa":
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            scores = q @ k.transpose(-2, -1) / math.sqrt(d // self.heads)
            out = scores.softmax(dim=-1) @ v
        return self.o(out.transpose(1, 2).reshape(b, l, d))


class Block(nn.Module):
    def __init__(self, mode):
        super().__init__()
        self.attn_norm, self.ffn_norm = nn.LayerNorm(D_MODEL), nn.LayerNorm(D_MODEL)
        self.attn = Attention(D_MODEL, HEADS, mode)
        self.ffn = nn.Sequential(nn.Linear(D_MODEL, FFN), nn.GELU(), nn.Linear(FFN, D_MODEL))

    def forward(self, x):
        x = x + self.attn(self.attn_norm(x))
        return x + self.ffn(self.ffn_norm(x))


def sinusoidal(length, width):
    pos = torch.arange(length, dtype=torch.float64)[:, None]
    even = torch.arange(0, width, 2, dtype=torch.float64)
    angle = pos / (10000.0 ** (even / width))
    table = torch.zeros(length, width, dtype=torch.float64)
    table[:, 0::2], table[:, 1::2] = angle.sin(), angle.cos()
    return table.float()


class Model(nn.Module):
    def __init__(self, mode):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, D_MODEL)
        nn.init.normal_(self.embed.weight, std=D_MODEL ** -0.5)
        self.register_buffer("positions", sinusoidal(SEQ, D_MODEL))
        self.blocks = nn.ModuleList(Block(mode) for _ in range(LAYERS))
        self.final_norm = nn.LayerNorm(D_MODEL)
        self.head = nn.Sequential(nn.Linear(D_MODEL, D_MODEL), nn.GELU(), nn.Linear(D_MODEL, CLASSES))

    def forward(self, tokens):
        x = self.embed(tokens) + self.positions[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.head(self.final_norm(x).mean(dim=1))


def peak_rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--attention", choices=["explicit", "sdpa"], default="sdpa")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = Model(args.attention)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    idx = torch.arange(BATCH * SEQ)
    tokens = ((idx * 31 + idx // 7) % VOCAB).view(BATCH, SEQ)
    targets = torch.arange(BATCH) % CLASSES
    params = sum(p.numel() for p in model.parameters())
    print(f"torch {torch.__version__} transformer step: {params} parameters, {args.attention} attention, {args.threads} threads")
    times, cpu_times = [], []
    for step in range(args.steps + 1):  # step 0 is an untimed warm-up
        start, cpu_start = time.perf_counter(), time.process_time()
        loss = F.cross_entropy(model(tokens), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        print(f"step {step}: {seconds:.3f} s wall, {cpu:.2f} CPU-s, loss {loss.item():.4f}")
        if step > 0:
            times.append(seconds)
            cpu_times.append(cpu)
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(
        f"median step: {statistics.median(times):.3f} s wall, {statistics.median(cpu_times):.2f} CPU-s over {args.steps} steps; "
        f"peak memory (VmHWM): {peak_rss_mib():.0f} MiB; load average {load}"
    )
    print(f"RESULT model=transformer impl=torch threads={args.threads} params={params} "
          f"wall_s={statistics.median(times):.4f} cpu_s={statistics.median(cpu_times):.4f} "
          f"peak_mib={peak_rss_mib():.0f}")


if __name__ == "__main__":
    main()
