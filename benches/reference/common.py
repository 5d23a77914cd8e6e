"""What the S4D and LRU step benchmarks share: the model around the SSM layer and the timing.

The model is the one `benches/ssm_step.rs` builds: token embedding, 4 pre-norm residual blocks
(LayerNorm -> SSM -> GELU -> Linear(H, 2H) -> GLU), final LayerNorm, mean pooling, a
Linear -> GELU -> Linear head; AdamW. Sizes: d_model 128, d_state 64, length 1024, batch 8,
2 threads. Prints the median step time and the peak resident memory (ru_maxrss = VmHWM).
"""

import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

LAYERS, D_MODEL, D_STATE, LEN, BATCH, VOCAB, CLASSES = 4, 128, 64, 1024, 8, 32, 10
WARMUP, STEPS = 2, 10


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
    def __init__(self, make_ssm):
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, D_MODEL)
        self.blocks = nn.ModuleList([Block(make_ssm()) for _ in range(LAYERS)])
        self.norm = nn.LayerNorm(D_MODEL)
        self.head = nn.Sequential(nn.Linear(D_MODEL, D_MODEL), nn.GELU(), nn.Linear(D_MODEL, CLASSES))

    def forward(self, ids):
        x = self.embedding(ids)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x).mean(dim=1))


def bench(name, make_ssm):
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = Model(make_ssm)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    i = torch.arange(BATCH * LEN)
    ids = ((i * 7 + i // 13) % VOCAB).view(BATCH, LEN)
    labels = torch.arange(BATCH) % CLASSES
    times = []
    for step in range(WARMUP + STEPS):
        start = time.perf_counter()
        optimizer.zero_grad()
        loss = F.cross_entropy(model(ids), labels)
        loss.backward()
        optimizer.step()
        if step >= WARMUP:
            times.append(time.perf_counter() - start)
    times.sort()
    params = sum(p.numel() for p in model.parameters())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{name} (PyTorch {torch.__version__}): {params} parameters, median step "
          f"{times[STEPS // 2]:.3f} s (min {times[0]:.3f}, max {times[-1]:.3f}), peak {peak:.0f} MiB")
