#!/usr/bin/python3
"""Tokens/s of one LoRA training step of a GPT-2-shaped model in PyTorch, for `fedlora bench train`.

Same step as fedlora's tfjs trainer: frozen base weights (Conv1D x @ W + b), LoRA A/B on the
targeted projections (y += (x A^T B^T) * alpha/r), next-token cross-entropy, backward, global
grad-norm clip 1.0, AdamW. Random weights and tokens (the speed does not depend on them).

Usage: /usr/bin/python3 scripts/torch/bench_lora_step.py '{"layers":12,"d":768,"heads":12,"vocab":50257,
        "context":1024,"seq":128,"batch":4,"r":8,"targets":["c_attn","attn.c_proj"],"steps":3,"warmup":1,"threads":1}'
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
    L, d, H, V, P = cfg["layers"], cfg["d"], cfg["heads"], cfg["vocab"], cfg.get("context", 1024)
    T, B, r = cfg["seq"], cfg["batch"], cfg["r"]
    targets = cfg.get("targets", ["c_attn"])
    scale = cfg.get("alpha", 2 * r) / r
    hd = d // H
    g = lambda *s: (torch.randn(*s) * 0.02)
    w = {"wte": g(V, d), "wpe": g(P, d), "ln_f.w": torch.ones(d), "ln_f.b": torch.zeros(d)}
    lora = {}
    for i in range(L):
        for name, (i_, o_) in {"attn.c_attn": (d, 3 * d), "attn.c_proj": (d, d), "mlp.c_fc": (d, 4 * d), "mlp.c_proj": (4 * d, d)}.items():
            w[f"{i}.{name}.w"], w[f"{i}.{name}.b"] = g(i_, o_), torch.zeros(o_)
            full = f"transformer.h.{i}.{name}"  # PEFT's rule: the path equals the target or ends with "." + target
            if any(full == t or full.endswith("." + t) for t in targets):
                a = torch.empty(r, i_).uniform_(-1 / math.sqrt(i_), 1 / math.sqrt(i_)).requires_grad_(True)
                lora[f"{i}.{name}"] = (a, torch.zeros(o_, r, requires_grad=True))
        for ln in ("ln_1", "ln_2"):
            w[f"{i}.{ln}.w"], w[f"{i}.{ln}.b"] = torch.ones(d), torch.zeros(d)
    params = [t for ab in lora.values() for t in ab]
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))

    def lin(x, name):
        y = x @ w[f"{name}.w"] + w[f"{name}.b"]
        if name in lora:
            a, b = lora[name]
            y = y + (x @ a.T @ b.T) * scale
        return y

    def gelu_new(x):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))

    def step(ids):
        h = w["wte"][ids[:, :-1]] + w["wpe"][:T]
        for i in range(L):
            a = torch.nn.functional.layer_norm(h, (d,), w[f"{i}.ln_1.w"], w[f"{i}.ln_1.b"])
            q, k, v = lin(a, f"{i}.attn.c_attn").split(d, dim=2)
            q, k, v = (t.view(B, T, H, hd).transpose(1, 2) for t in (q, k, v))
            att = torch.softmax(((q @ k.transpose(-1, -2)) / math.sqrt(hd)).masked_fill(~mask, float("-inf")), -1)
            h = h + lin((att @ v).transpose(1, 2).reshape(B, T, d), f"{i}.attn.c_proj")
            m = torch.nn.functional.layer_norm(h, (d,), w[f"{i}.ln_2.w"], w[f"{i}.ln_2.b"])
            h = h + lin(gelu_new(lin(m, f"{i}.mlp.c_fc")), f"{i}.mlp.c_proj")
        h = torch.nn.functional.layer_norm(h, (d,), w["ln_f.w"], w["ln_f.b"])
        loss = torch.nn.functional.cross_entropy((h @ w["wte"].T).reshape(B * T, V), ids[:, 1:].reshape(B * T))
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
