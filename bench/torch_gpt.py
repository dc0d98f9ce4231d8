#!/usr/bin/env python3
"""The PyTorch anchor of bench/gpt.ts: the same GPT (pre-LayerNorm blocks, fused qkv Linear,
exact GELU MLP 4x, learned positions, tied lm head) trained with AdamW on random token windows,
and generation with a naive loop (the whole window recomputed per token) and with a KV cache of
its own. Prints one JSON object. Written for this project as a reference; run with
LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp OMP_NUM_THREADS=2."""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def attention(q, k, v, causal):
    # This torch (Debian's) predates F.scaled_dot_product_attention: the plain composition.
    s = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    if causal:
        Tq, Tk = q.shape[-2], k.shape[-2]
        mask = torch.ones(Tq, Tk, dtype=torch.bool).tril(Tk - Tq)
        s = s.masked_fill(~mask, float("-inf"))
    return torch.softmax(s, dim=-1) @ v


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)

    def attend(self, x, cache=None):
        B, T, C = x.shape
        H, D = self.heads, C // self.heads
        q, k, v = self.qkv(x).view(B, T, 3, H, D).permute(2, 0, 3, 1, 4)
        if cache is not None:
            L = cache["len"]
            cache["k"][:, :, L:L + T] = k
            cache["v"][:, :, L:L + T] = v
            k = cache["k"][:, :, :L + T]
            v = cache["v"][:, :, :L + T]
            # T == 1 after the prompt: the new position sees every cached key.
            y = attention(q, k, v, T > 1)
        else:
            y = attention(q, k, v, True)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))

    def forward(self, x, cache=None):
        x = x + self.attend(self.ln1(x), cache)
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, vocab, context, layers, heads, dim):
        super().__init__()
        self.context = context
        self.wte = nn.Embedding(vocab, dim)
        self.wpe = nn.Embedding(context, dim)
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(layers)])
        self.lnf = nn.LayerNorm(dim)
        self.heads, self.dim = heads, dim

    def forward(self, idx, caches=None, start=0):
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(start, start + T))
        for i, b in enumerate(self.blocks):
            x = b(x, None if caches is None else caches[i])
        if caches is not None:
            for c in caches:
                c["len"] += T
            x = x[:, -1:]
        return F.linear(self.lnf(x), self.wte.weight)


def seconds(fn, reps, min_time):
    fn()
    samples = []
    for _ in range(reps):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            if time.perf_counter() - t0 >= min_time:
                break
        samples.append((time.perf_counter() - t0) / n)
    samples.sort()
    return samples[len(samples) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=80)
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--only", choices=["train", "gen", "all"], default="all",
                    help="measure training only, generation only, or both")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = GPT(a.vocab, a.context, a.layers, a.heads, a.dim)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.1)
    x = torch.randint(0, a.vocab, (a.batch, a.context))
    y = torch.randint(0, a.vocab, (a.batch, a.context))

    def step():
        loss = F.cross_entropy(model(x).view(-1, a.vocab), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    train_s = seconds(step, a.reps, a.min_time) if a.only != "gen" else None
    model.eval()
    prompt = torch.randint(0, a.vocab, (1, 1))

    @torch.no_grad()
    def gen_naive():
        ids = prompt
        for _ in range(a.gen_tokens):
            logits = model(ids[:, -a.context:])[:, -1]
            ids = torch.cat([ids, logits.argmax(-1, keepdim=True)], 1)

    @torch.no_grad()
    def gen_cached():
        D = a.dim // a.heads
        caches = [{"k": torch.zeros(1, a.heads, a.context, D), "v": torch.zeros(1, a.heads, a.context, D), "len": 0}
                  for _ in model.blocks]
        logits = model(prompt, caches, 0)[:, -1]
        for i in range(a.gen_tokens - 1):
            nxt = logits.argmax(-1, keepdim=True)
            logits = model(nxt, caches, caches[0]["len"])[:, -1]

    out = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    if train_s is not None:
        out["trainTokensPerSec"] = a.batch * a.context / train_s
    if a.only != "train":
        out["genNaiveTokensPerSec"] = a.gen_tokens / seconds(gen_naive, a.reps, a.min_time)
        out["genCachedTokensPerSec"] = a.gen_tokens / seconds(gen_cached, a.reps, a.min_time)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
