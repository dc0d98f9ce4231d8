#!/usr/bin/python3
"""PyTorch's side of bench/allreduce.ts and bench/ddp.ts: torch.distributed with gloo on CPU,
2 local processes x 1 thread. Prints one JSON object (the last line).

  --what allreduce   dist.all_reduce(SUM) of fp32 buffers of the given sizes: median seconds per call
  --what ddp         DistributedDataParallel training of the MLP 784-1024-1024-10 (ReLU, cross
                     entropy, SGD momentum 0.9) at the given per-rank batches: median samples/s (global)
  --pace DIR         (ddp) take turns with another job, as bench/ddp.ts's driver directs: before each
                     unit (a batch size's warm-up, then each sample) rank 0 reads a byte from the FIFO
                     DIR/go, and after it writes the unit's samples/s (0 for a warm-up) and a newline
                     to the FIFO DIR/done
"""
import argparse
import json
import os
import sys
import time


def median(xs):
    s = sorted(xs)
    return s[len(s) // 2]


def worker(rank, world, args, q):
    import torch
    import torch.distributed as dist
    import torch.nn as nn

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{args.port}", rank=rank, world_size=world)
    result = {}
    if args.what == "allreduce":
        for nbytes in [int(s) for s in args.sizes.split(",")]:
            buf = torch.ones(nbytes // 4)
            iters = max(3, min(200, int(args.bytes_per_sample / nbytes)))
            for _ in range(3):
                dist.all_reduce(buf)
            samples = []
            for _ in range(args.reps):
                dist.barrier()
                t0 = time.perf_counter()
                for _ in range(iters):
                    dist.all_reduce(buf)
                samples.append((time.perf_counter() - t0) / iters)
            result[str(nbytes)] = median(samples)
    else:
        from torch.nn.parallel import DistributedDataParallel as DDP

        lead = bool(args.pace) and rank == 0
        if lead:
            go = os.open(os.path.join(args.pace, "go"), os.O_RDONLY)
            done = os.open(os.path.join(args.pace, "done"), os.O_WRONLY)

        for per_rank in [int(s) for s in args.batches.split(",")]:
            torch.manual_seed(0)
            model = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))
            ddp = DDP(model)
            opt = torch.optim.SGD(ddp.parameters(), lr=0.01, momentum=0.9)
            lossf = nn.CrossEntropyLoss()
            gen = torch.Generator().manual_seed(rank)
            x = torch.randn(per_rank, 784, generator=gen)
            y = torch.randint(0, 10, (per_rank,), generator=gen)

            def step():
                opt.zero_grad(set_to_none=True)
                if os.environ.get("DDP_NO_SYNC"):  # bench/ddp.ts's compute-only comparison
                    with ddp.no_sync():
                        lossf(ddp(x), y).backward()
                else:
                    lossf(ddp(x), y).backward()
                opt.step()

            def turn(work):
                if lead:
                    os.read(go, 1)
                dist.barrier()
                rate = work()
                dist.barrier()
                if lead:
                    os.write(done, f"{rate}\n".encode())
                return rate

            def warm_up():
                for _ in range(3):
                    step()
                return 0

            def sample():
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    step()
                dist.barrier()
                return per_rank * world * args.steps / (time.perf_counter() - t0)

            turn(warm_up)
            result[str(per_rank)] = median([turn(sample) for _ in range(args.reps)])
    dist.destroy_process_group()
    if rank == 0:
        q.put(result)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--what", choices=["allreduce", "ddp"], required=True)
    ap.add_argument("--sizes", default="4096,1048576,16777216,67108864")
    ap.add_argument("--batches", default="128,256")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--bytes-per-sample", type=float, default=256e6)
    ap.add_argument("--port", type=int, default=29533)
    ap.add_argument("--pace", default="")
    args = ap.parse_args()
    import torch
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    q = ctx.SimpleQueue()
    mp.spawn(worker, args=(2, args, q), nprocs=2, join=True)
    print(json.dumps({"torch": torch.__version__, "result": q.get()}))


if __name__ == "__main__":
    sys.exit(main())
