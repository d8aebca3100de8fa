"""PyTorch peer of bench/dp-sgd.ts: tokens/s of DP-SGD against non-private training, same run.

The model is bench/torch/lora_step.py's GPT-2-shaped LoRA model (frozen base, pre-norm blocks,
tanh GELU, tied LM head) with LoRA r on both attention projections (c_attn and attn.c_proj, as
fedlora's default), alpha 2r. Non-private: one batched loss.backward() and Adam. DP-SGD: per-sample
gradients of the LoRA factors with functorch's vmap(grad(.)) over the batch (what Opacus's
functorch mode does; Opacus itself is not installed), per-sample L2 norms, clip factors
min(1, C / ||g_i||), the clipped sum, Gaussian noise N(0, (z C)^2), divided by the batch size, and
Adam. Fixed batches (no Poisson sampling). Rounds alternate the two and each round reports both,
so their ratio is measured under the same machine load. Prints one JSON line.

    /usr/bin/python3 bench/torch/dp_sgd_step.py '{"layers":4,"dModel":128,"heads":4,"vocab":1024,"seq":64,"batch":8}'
"""
import json
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from functorch import grad, vmap


def build(cfg, gen):
    d, vocab, seq, r = cfg["dModel"], cfg["vocab"], cfg["seq"], cfg["rank"]

    def normal(*shape):
        return torch.randn(*shape, generator=gen) * 0.02

    base, lora = [], []
    for _ in range(cfg["layers"]):
        base.append(dict(
            ln1g=torch.ones(d), ln1b=torch.zeros(d), w_attn=normal(d, 3 * d), b_attn=torch.zeros(3 * d),
            w_proj=normal(d, d), b_proj=torch.zeros(d), ln2g=torch.ones(d), ln2b=torch.zeros(d),
            w_fc=normal(d, 4 * d), b_fc=torch.zeros(4 * d), w_out=normal(4 * d, d), b_out=torch.zeros(d)))
        lora += [normal(d, r), normal(r, 3 * d), normal(d, r), normal(r, d)]
    mask = torch.triu(torch.full((seq, seq), -1e9), diagonal=1)
    return dict(wte=normal(vocab, d), wpe=normal(seq, d), layers=base, lnfg=torch.ones(d), lnfb=torch.zeros(d), mask=mask), lora


def loss_of(m, cfg, lora, ids, labels):
    """Mean next-token loss of ids [b, s] (b may be 1 inside vmap)."""
    b, s = ids.shape
    d, h, scale = cfg["dModel"], cfg["heads"], 2.0
    dh = d // h
    x = (m["wte"][ids] + m["wpe"][:s]).reshape(b * s, d)
    for i, l in enumerate(m["layers"]):
        a_attn, b_attn, a_proj, b_proj = lora[4 * i: 4 * i + 4]
        a = F.layer_norm(x, (d,), l["ln1g"], l["ln1b"], 1e-5)
        qkv = a @ l["w_attn"] + l["b_attn"] + ((a @ a_attn) * scale) @ b_attn
        q, k, v = (t.reshape(b, s, h, dh).transpose(1, 2) for t in qkv.split(d, dim=1))
        scores = (q * (1.0 / math.sqrt(dh))) @ k.transpose(-1, -2) + m["mask"][:s, :s]
        o = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b * s, d)
        x = x + o @ l["w_proj"] + l["b_proj"] + ((o @ a_proj) * scale) @ b_proj
        f = F.gelu(F.layer_norm(x, (d,), l["ln2g"], l["ln2b"], 1e-5) @ l["w_fc"] + l["b_fc"], approximate="tanh")
        x = x + f @ l["w_out"] + l["b_out"]
    final = F.layer_norm(x, (d,), m["lnfg"], m["lnfb"], 1e-5)
    return F.cross_entropy(final @ m["wte"].t(), labels.reshape(-1))


def main():
    cfg = {"layers": 4, "dModel": 128, "heads": 4, "vocab": 1024, "seq": 64, "batch": 8, "rank": 8,
           "threads": 2, "steps": 2, "rounds": 3, "clip": 1.0, "noise": 1.0}
    cfg.update(json.loads(sys.argv[1] if len(sys.argv) > 1 else "{}"))
    torch.set_num_threads(cfg["threads"])
    gen = torch.Generator().manual_seed(1)
    m, lora = build(cfg, gen)
    params = [p.requires_grad_(True) for p in lora]
    opt = torch.optim.Adam(params, lr=1e-4)
    bsz, seq = cfg["batch"], cfg["seq"]
    ids = torch.randint(0, cfg["vocab"], (bsz, seq), generator=gen)
    labels = torch.randint(0, cfg["vocab"], (bsz, seq), generator=gen)

    def plain_step():
        opt.zero_grad(set_to_none=True)
        loss_of(m, cfg, params, ids, labels).backward()
        opt.step()

    def one(ps, x, y):
        return loss_of(m, cfg, ps, x.unsqueeze(0), y.unsqueeze(0))

    per_sample = vmap(grad(one), in_dims=(None, 0, 0))

    def dp_step():
        with torch.no_grad():
            detached = [p.detach() for p in params]
        grads = per_sample(detached, ids, labels)  # list of [B, ...]
        norms = torch.sqrt(sum(g.reshape(bsz, -1).pow(2).sum(1) for g in grads))
        factors = (cfg["clip"] / (norms + 1e-6)).clamp(max=1.0)
        for p, g in zip(params, grads):
            s = torch.einsum("b,b...->...", factors, g)
            p.grad = (s + torch.randn(s.shape, generator=gen) * cfg["noise"] * cfg["clip"]) / bsz
        opt.step()

    tokens = bsz * seq
    plain_step()
    dp_step()
    rounds = []
    for r in range(cfg["rounds"]):
        row = {}
        for name, f in (("nonPrivate", plain_step), ("dpSgd", dp_step)):
            t0 = time.perf_counter()
            for _ in range(cfg["steps"]):
                f()
            row[name] = tokens * cfg["steps"] / (time.perf_counter() - t0)
        row["ratio"] = row["dpSgd"] / row["nonPrivate"]
        print(f"[torch] round {r + 1}: {json.dumps(row)}", file=sys.stderr)
        rounds.append(row)

    def summary(key):
        v = [x[key] for x in rounds]
        return {"median": statistics.median(v), "min": min(v), "max": max(v)}

    print(json.dumps({"path": f"torch {torch.__version__} ({torch.get_num_threads()} threads), per-sample grads by functorch vmap(grad)",
                      "nonPrivateTokensPerSecond": summary("nonPrivate"), "dpSgdTokensPerSecond": summary("dpSgd"), "ratio": summary("ratio")}))


if __name__ == "__main__":
    main()
