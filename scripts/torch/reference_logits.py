#!/usr/bin/python3
"""Logits of a Hugging Face model directory (and optionally a PEFT LoRA adapter directory) computed
by the independent PyTorch references: make_fixtures.py for GPT-2, families.py (float64) for the
RoPE decoders (Llama, Mistral, Qwen2, Gemma 2, Phi-3). Sharded checkpoints
(model.safetensors.index.json) load too. Used by tests to check that what fedlora
*writes* (checkpoints, PEFT adapters) reads back correctly on the Python side.

Usage: /usr/bin/python3 scripts/torch/reference_logits.py MODEL_DIR [ADAPTER_DIR|-] IDS_JSON
Prints {"logits": [...flattened...], "shape": [B, T, V]}.
"""
import json
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import gpt2_forward  # noqa: E402
import families  # noqa: E402


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        raw = bytearray(data[b:end])
        if e["dtype"] == "F32":
            t = torch.frombuffer(raw, dtype=torch.float32)
        elif e["dtype"] == "F16":
            t = torch.frombuffer(raw, dtype=torch.float16).float()
        elif e["dtype"] == "BF16":
            t = torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16).float()
        else:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {e['dtype']}")
        out[name] = t.reshape(e["shape"]).clone()
    return out


def load_model_and_adapter(model_dir, adapter_dir):
    """(config, weights, lora or None) of a model directory and an optional PEFT adapter directory."""
    c = json.load(open(os.path.join(model_dir, "config.json")))
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        w = {}
        for shard in sorted(set(json.load(open(index))["weight_map"].values())):
            w.update(load_safetensors(os.path.join(model_dir, shard)))
    else:
        w = load_safetensors(os.path.join(model_dir, "model.safetensors"))
    if c["model_type"] == "gpt2":
        w = {(k if k.startswith("transformer.") or k.startswith("lm_head") else "transformer." + k): v for k, v in w.items()}
    lora = None
    if adapter_dir and adapter_dir != "-":
        ac = json.load(open(os.path.join(adapter_dir, "adapter_config.json")))
        at = load_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
        mods = {}
        for k, v in at.items():
            path = k[len("base_model.model."):].rsplit(".lora_", 1)[0]
            which = k.rsplit(".lora_", 1)[1][0]  # "A" or "B" (names may carry ".default")
            mods.setdefault(path, [None, None])[0 if which == "A" else 1] = v
        assert ac["fan_in_fan_out"] == (c["model_type"] == "gpt2"), "fan_in_fan_out must be true exactly for GPT-2 Conv1D"
        lora = {"modules": {k: tuple(v) for k, v in mods.items()}, "scale": ac["lora_alpha"] / ac["r"]}
    return c, w, lora


def main(model_dir, adapter_dir, ids):
    c, w, lora = load_model_and_adapter(model_dir, adapter_dir)
    ids_t = torch.tensor(ids)
    with torch.no_grad():
        fwd = gpt2_forward if c["model_type"] == "gpt2" else families.forward
        logits = fwd(c, w, ids_t, lora)
    print(json.dumps({"shape": list(logits.shape), "logits": logits.flatten().tolist()}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))
