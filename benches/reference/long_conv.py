"""The FFT convolution alone in PyTorch, the reference of `cargo bench --bench long_conv`: forward
and backward of `fft_conv` (benches/reference/common.py) on inputs (batch 8, length 1,024, 128
channels) with a bidirectional kernel, median of 10 runs after 2 warm-up runs.
Run: python benches/reference/long_conv.py [--threads T] [--len L] [--causal]
"""

import argparse
import statistics
import time

import torch

from common import fft_conv

parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--len", type=int, default=1024)
parser.add_argument("--causal", action="store_true")
args = parser.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(0)
batch, width, length = 8, 128, args.len
u = torch.randn(batch, length, width, requires_grad=True)
k = torch.randn(1 if args.causal else 2, width, length, requires_grad=True)
d = torch.zeros(width)
forward, backward = [], []
for run in range(12):
    start = time.perf_counter()
    # The layer's layout: (B, L, H) in and out, transposed around the convolution.
    y = fft_conv(u.transpose(1, 2), k, d).transpose(1, 2)
    f = time.perf_counter() - start
    start = time.perf_counter()
    y.sum().backward()
    if run >= 2:
        forward.append(f)
        backward.append(time.perf_counter() - start)
print(f"long_conv (PyTorch {torch.__version__}), batch {batch}, length {length}, {width} channels, "
      f"{'causal' if args.causal else 'bidirectional'}, {args.threads} threads: "
      f"forward {1e3 * statistics.median(forward):.2f} ms, backward {1e3 * statistics.median(backward):.2f} ms")
