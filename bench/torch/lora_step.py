"""PyTorch peer of bench/native-train-worker.ts: the same GPT-2-shaped LoRA training step.

Frozen base (requires_grad=False), LoRA r on the fused attention projection (PEFT's c_attn),
tanh GELU, pre-norm blocks, tied LM head, mean cross-entropy with integer targets, Adam on the
LoRA factors. Prints one JSON line. Run with Debian's interpreter: /usr/bin/python3 (torch).

    /usr/bin/python3 bench/torch/lora_step.py '{"layers":4,"vocab":512,"threads":1,"steps":4,"warmup":1}'
"""
import json
import math
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def build(cfg, gen):
    d, vocab, seq, r = cfg["dModel"], cfg["vocab"], cfg["seq"], cfg["rank"]

    def normal(*shape):
        return (torch.randn(*shape, generator=gen) * 0.02).requires_grad_(False)

    layers = []
    for _ in range(cfg["layers"]):
        layers.append(
            dict(
                ln1g=torch.ones(d), ln1b=torch.zeros(d),
                w_attn=normal(d, 3 * d), b_attn=torch.zeros(3 * d),
                lora_a=normal(d, r).requires_grad_(True), lora_b=torch.zeros(r, 3 * d, requires_grad=True),
                w_proj=normal(d, d), b_proj=torch.zeros(d),
                ln2g=torch.ones(d), ln2b=torch.zeros(d),
                w_fc=normal(d, 4 * d), b_fc=torch.zeros(4 * d),
                w_out=normal(4 * d, d), b_out=torch.zeros(d),
            )
        )
    mask = torch.triu(torch.full((seq, seq), -1e9), diagonal=1)
    return dict(wte=normal(vocab, d), wpe=normal(seq, d), layers=layers,
                lnfg=torch.ones(d), lnfb=torch.zeros(d), mask=mask)


def loss_of(m, cfg, ids, labels, lora_scale=2.0):
    b, s, d, h = cfg["batch"], cfg["seq"], cfg["dModel"], cfg["heads"]
    dh = d // h
    x = (m["wte"][ids] + m["wpe"]).reshape(b * s, d)
    for l in m["layers"]:
        a = F.layer_norm(x, (d,), l["ln1g"], l["ln1b"], 1e-5)
        qkv = a @ l["w_attn"] + l["b_attn"] + ((a @ l["lora_a"]) * lora_scale) @ l["lora_b"]
        q, k, v = (t.reshape(b, s, h, dh).transpose(1, 2) for t in qkv.split(d, dim=1))
        scores = (q * (1.0 / math.sqrt(dh))) @ k.transpose(-1, -2) + m["mask"]
        o = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b * s, d)
        x = x + o @ l["w_proj"] + l["b_proj"]
        f = F.gelu(F.layer_norm(x, (d,), l["ln2g"], l["ln2b"], 1e-5) @ l["w_fc"] + l["b_fc"], approximate="tanh")
        x = x + f @ l["w_out"] + l["b_out"]
    final = F.layer_norm(x, (d,), m["lnfg"], m["lnfb"], 1e-5)
    logits = final @ m["wte"].t()
    return F.cross_entropy(logits, labels)


def main():
    cfg = {"dModel": 768, "heads": 12, "seq": 128, "batch": 4, "rank": 8, "threads": 1,
           "steps": 4, "warmup": 1, "maxSeconds": 120}
    cfg.update(json.loads(sys.argv[1] if len(sys.argv) > 1 else "{}"))
    torch.set_num_threads(cfg["threads"])
    gen = torch.Generator().manual_seed(1)
    m = build(cfg, gen)
    n = cfg["batch"] * cfg["seq"]
    ids = torch.tensor([(i * 7919) % cfg["vocab"] for i in range(n)]).reshape(cfg["batch"], cfg["seq"])
    labels = torch.tensor([((i + 1) * 7919) % cfg["vocab"] for i in range(n)])
    params = [p for l in m["layers"] for p in (l["lora_a"], l["lora_b"])]
    opt = torch.optim.Adam(params, lr=1e-4)
    step_ms, cpu_ms, warm_ms, loss = [], [], [], float("nan")
    started = time.perf_counter()
    for i in range(cfg["warmup"] + cfg["steps"]):
        t0, c0 = time.perf_counter(), time.process_time()
        opt.zero_grad(set_to_none=True)
        out = loss_of(m, cfg, ids, labels)
        out.backward()
        opt.step()
        loss = out.item()
        ms, cms = (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000
        (warm_ms if i < cfg["warmup"] else step_ms).append(ms)
        if i >= cfg["warmup"]:
            cpu_ms.append(cms)
        print(f"[torch] step {i} {ms:.0f} ms loss {loss:.4f}", file=sys.stderr)
        if time.perf_counter() - started > cfg["maxSeconds"]:
            break
    timed = step_ms or warm_ms
    med = statistics.median_low(timed)
    print(json.dumps({
        "backend": f"torch-{cfg['threads']}t",
        "path": f"torch {torch.__version__} ({torch.get_num_threads()} threads)",
        "stepMs": [round(x) for x in timed], "warmupMs": [round(x) for x in warm_ms],
        "medianStepMs": round(med),
        "stepCpuMs": [round(x) for x in cpu_ms],
        "medianStepCpuMs": round(statistics.median_low(cpu_ms)) if cpu_ms else None,
        "tokensPerSec": round(n / med * 1000, 1), "loss": loss,
        "peakRssMb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }))


if __name__ == "__main__":
    main()
