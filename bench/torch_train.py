#!/usr/bin/python3
"""PyTorch side of bench/train.ts: MLP 784-1024-1024-10 (ReLU), cross-entropy, batch 256,
random MNIST-shaped data, SGD(momentum 0.9) and AdamW; samples/s of forward+backward+step.

Run with Debian's interpreter and the OpenMP OpenBLAS (see ../shared/anchors/README.md):
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp OMP_NUM_THREADS=1 \
    /usr/bin/python3 bench/torch_train.py --threads 1
Prints one JSON object: {"torch": version, "threads": t, "results": {optimizer: [samples/s, ...]}}.
"""
import argparse
import json
import time

import torch
import torch.nn as nn


def build():
    return nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))


def samples_per_sec(optname, batch, reps, min_time):
    torch.manual_seed(0)
    model = build()
    if optname == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    xs = [torch.randn(batch, 784) for _ in range(4)]
    ys = [torch.randint(0, 10, (batch,)) for _ in range(4)]
    lossf = nn.CrossEntropyLoss()
    i = [0]

    def step():
        k = i[0] % 4
        i[0] += 1
        loss = lossf(model(xs[k]), ys[k])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    t0 = time.perf_counter()
    step()
    inner = max(1, int(min_time / max(time.perf_counter() - t0, 1e-6)))
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(inner):
            step()
        out.append(batch * inner / (time.perf_counter() - t0))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.5)
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = {o: samples_per_sec(o, args.batch, args.reps, args.min_time) for o in ("sgd", "adamw")}
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "results": results}))


if __name__ == "__main__":
    main()
