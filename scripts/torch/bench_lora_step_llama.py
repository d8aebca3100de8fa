#!/usr/bin/python3
"""Tokens/s of one LoRA training step of a Llama/Qwen2-shaped model in PyTorch, for
`fedlora bench train` (the peer of bench/train-worker.ts on the qwen2.5-0.5b cases).

The step fedlora's trainer runs: frozen base (nn.Linear x @ W^T (+ Qwen2's q/k/v bias)),
RMSNorm, RoPE, grouped-query attention, SwiGLU, tied head; LoRA A/B on q/k/v/o_proj
(y += (x A^T B^T) * alpha/r); next-token cross-entropy, backward, global grad-norm clip 1.0,
AdamW. Random weights and tokens (the speed does not depend on them).

Usage: /usr/bin/python3 scripts/torch/bench_lora_step_llama.py '{"layers":24,"d":896,"heads":14,"kvHeads":2,
        "inter":4864,"vocab":151936,"qkvBias":true,"seq":128,"batch":1,"r":8,"steps":3,"warmup":1,"threads":1}'
Prints one JSON object on stdout.
"""
import json
import math
import sys
import time

import torch


def main(cfg):
    torch.set_num_threads(int(cfg.get("threads", 1)))
    torch.manual_seed(0)
    L, d, H, KV, I, V = cfg["layers"], cfg["d"], cfg["heads"], cfg["kvHeads"], cfg["inter"], cfg["vocab"]
    T, B, r = cfg["seq"], cfg["batch"], cfg["r"]
    hd = d // H
    targets = cfg.get("targets", ["q_proj", "k_proj", "v_proj", "o_proj"])
    scale = cfg.get("alpha", 2 * r) / r
    g = lambda *s: (torch.randn(*s) * 0.02)
    w = {"embed": g(V, d), "norm": torch.ones(d)}
    lora = {}
    for i in range(L):
        shapes = {"q_proj": (d, H * hd), "k_proj": (d, KV * hd), "v_proj": (d, KV * hd), "o_proj": (H * hd, d),
                  "gate_proj": (d, I), "up_proj": (d, I), "down_proj": (I, d)}
        for name, (i_, o_) in shapes.items():
            w[f"{i}.{name}"] = g(o_, i_)
            if cfg.get("qkvBias") and name in ("q_proj", "k_proj", "v_proj"):
                w[f"{i}.{name}.b"] = torch.zeros(o_)
            if name in targets:
                a = torch.empty(r, i_).uniform_(-1 / math.sqrt(i_), 1 / math.sqrt(i_)).requires_grad_(True)
                lora[f"{i}.{name}"] = (a, torch.zeros(o_, r, requires_grad=True))
        w[f"{i}.in_norm"], w[f"{i}.post_norm"] = torch.ones(d), torch.ones(d)
    params = [t for ab in lora.values() for t in ab]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    inv = 1.0 / (cfg.get("theta", 1e6) ** (torch.arange(0, hd, 2).float() / hd))
    freqs = torch.arange(T).float()[:, None] * inv[None, :]
    emb = torch.cat((freqs, freqs), -1)
    cos, sin = emb.cos(), emb.sin()

    def lin(x, name):
        y = x @ w[name].T
        if f"{name}.b" in w:
            y = y + w[f"{name}.b"]
        if name in lora:
            a, b = lora[name]
            y = y + (x @ a.T @ b.T) * scale
        return y

    def rms(x, wt):
        return wt * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6))

    def rope(x):
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
        return x * cos + torch.cat((-x2, x1), -1) * sin

    def step(ids):
        h = w["embed"][ids[:, :-1]]
        for i in range(L):
            a = rms(h, w[f"{i}.in_norm"])
            q = rope(lin(a, f"{i}.q_proj").view(B, T, H, hd).transpose(1, 2))
            k = rope(lin(a, f"{i}.k_proj").view(B, T, KV, hd).transpose(1, 2))
            v = lin(a, f"{i}.v_proj").view(B, T, KV, hd).transpose(1, 2)
            k = k.repeat_interleave(H // KV, dim=1)
            v = v.repeat_interleave(H // KV, dim=1)
            att = torch.softmax(((q @ k.transpose(-1, -2)) / math.sqrt(hd)).masked_fill(~mask, float("-inf")), -1)
            h = h + lin((att @ v).transpose(1, 2).reshape(B, T, H * hd), f"{i}.o_proj")
            m = rms(h, w[f"{i}.post_norm"])
            h = h + lin(torch.nn.functional.silu(lin(m, f"{i}.gate_proj")) * lin(m, f"{i}.up_proj"), f"{i}.down_proj")
        h = rms(h, w["norm"])
        loss = torch.nn.functional.cross_entropy((h @ w["embed"].T).reshape(B * T, V), ids[:, 1:].reshape(B * T))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss.item()

    times = []
    for s in range(cfg.get("warmup", 1) + cfg.get("steps", 3)):
        ids = torch.randint(0, V, (B, T + 1))
        t0 = time.perf_counter()
        step(ids)
        if s >= cfg.get("warmup", 1):
            times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    print(json.dumps({"tokensPerSecond": B * T / med, "medianStepMs": med * 1000, "threads": torch.get_num_threads(),
                      "torch": torch.__version__, "loraModules": len(lora)}))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
