#!/usr/bin/python3
"""Writes tiny GPT-2 and Llama checkpoints in the Hugging Face layout, plus PEFT LoRA adapters,
with the logits an independent PyTorch implementation computes for them.

The forward passes below follow transformers' modeling_gpt2.py (GPT2Attention, GPT2MLP with
gelu_new, Conv1D = x @ W + b) and modeling_llama.py (LlamaRMSNorm in float32, LlamaRotaryEmbedding
with rope_theta, rotate_half, repeat_kv for grouped-query attention, SwiGLU MLP) line by line,
in plain torch (the transformers package is not installed here). LoRA follows peft's
tuners/lora/layer.py: y = base(x) + lora_B(lora_A(dropout(x))) * (alpha / r); for GPT-2's Conv1D
(fan_in_fan_out=True) the merged delta is (B @ A).T.

Run:  /usr/bin/python3 scripts/torch/make_fixtures.py libs/model/fixtures
Tests in libs/model/src/reference.test.ts compare the tfjs logits to these at 1e-4.
"""
import json
import math
import os
import struct
import sys

import torch

torch.manual_seed(20261122)
DTYPES = {"F32": (torch.float32, 4), "F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2)}


def save_safetensors(path, tensors, dtype="F32"):
    """Minimal safetensors writer (the format is an 8-byte header length, JSON header, raw data)."""
    tdtype, size = DTYPES[dtype]
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, t in tensors.items():
        data = t.detach().to(tdtype).contiguous()
        raw = data.view(torch.int16).numpy().tobytes() if size == 2 else data.numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def rounded(tensors, dtype):
    """What the file will hold: values rounded to the storage dtype, back in float32."""
    return {k: v.to(DTYPES[dtype][0]).to(torch.float32) for k, v in tensors.items()}


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def write_tokenizer(d):
    """A byte-level BPE with the 256 byte tokens, one merge and <|endoftext|> (vocabulary 258)."""
    b2u = bytes_to_unicode()
    vocab = {b2u[b]: i for i, b in enumerate(sorted(b2u, key=lambda b: list(b2u.values()).index(b2u[b])))}
    vocab["Ġt"] = 256
    vocab["<|endoftext|>"] = 257
    bl = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    tok = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": 257, "content": "<|endoftext|>", "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": True, "special": True}],
        "normalizer": None, "pre_tokenizer": bl, "post_processor": dict(bl, trim_offsets=False), "decoder": bl,
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": ["Ġ t"]},
    }
    with open(os.path.join(d, "tokenizer.json"), "w") as f:
        json.dump(tok, f)
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "GPT2Tokenizer", "eos_token": "<|endoftext|>", "bos_token": "<|endoftext|>",
                   "unk_token": "<|endoftext|>", "add_prefix_space": False, "model_max_length": 16}, f)


# ---------------------------------------------------------------- GPT-2 (modeling_gpt2.py)
def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def gpt2_forward(c, w, ids, lora=None):
    def conv1d(x, name):  # Conv1D: x @ W + b, W stored [in, out]; PEFT fan_in_fan_out delta (B A)^T
        W = w[f"{name}.weight"]
        if lora and name in lora["modules"]:
            A, B = lora["modules"][name]
            W = W + (B @ A).T * lora["scale"]
        return x @ W + w[f"{name}.bias"]

    B_, T = ids.shape
    d, H = c["n_embd"], c["n_head"]
    hd = d // H
    h = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][torch.arange(T)]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for i in range(c["n_layer"]):
        p = f"transformer.h.{i}"
        a = torch.nn.functional.layer_norm(h, (d,), w[f"{p}.ln_1.weight"], w[f"{p}.ln_1.bias"], c["layer_norm_epsilon"])
        q, k, v = conv1d(a, f"{p}.attn.c_attn").split(d, dim=2)
        q, k, v = (t.view(B_, T, H, hd).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-1, -2)) / (v.size(-1) ** 0.5)
        att = torch.where(mask, att, torch.tensor(torch.finfo(att.dtype).min))
        att = torch.softmax(att, dim=-1)
        o = (att @ v).transpose(1, 2).reshape(B_, T, d)
        h = h + conv1d(o, f"{p}.attn.c_proj")
        m = torch.nn.functional.layer_norm(h, (d,), w[f"{p}.ln_2.weight"], w[f"{p}.ln_2.bias"], c["layer_norm_epsilon"])
        h = h + conv1d(gelu_new(conv1d(m, f"{p}.mlp.c_fc")), f"{p}.mlp.c_proj")
    h = torch.nn.functional.layer_norm(h, (d,), w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], c["layer_norm_epsilon"])
    return h @ w["transformer.wte.weight"].T


def gpt2_weights(c):
    d, L, V, P, I = c["n_embd"], c["n_layer"], c["vocab_size"], c["n_positions"], 4 * c["n_embd"]
    w = {"transformer.wte.weight": torch.randn(V, d) * 0.5, "transformer.wpe.weight": torch.randn(P, d) * 0.2}
    for i in range(L):
        p = f"transformer.h.{i}"
        for ln in ("ln_1", "ln_2"):
            w[f"{p}.{ln}.weight"] = 1 + 0.1 * torch.randn(d)
            w[f"{p}.{ln}.bias"] = 0.1 * torch.randn(d)
        for name, (i_, o_) in {"attn.c_attn": (d, 3 * d), "attn.c_proj": (d, d), "mlp.c_fc": (d, I), "mlp.c_proj": (I, d)}.items():
            w[f"{p}.{name}.weight"] = torch.randn(i_, o_) / math.sqrt(i_)
            w[f"{p}.{name}.bias"] = 0.1 * torch.randn(o_)
    w["transformer.ln_f.weight"] = 1 + 0.1 * torch.randn(d)
    w["transformer.ln_f.bias"] = 0.1 * torch.randn(d)
    return w


# ---------------------------------------------------------------- Llama (modeling_llama.py)
def rms_norm(x, weight, eps):
    variance = x.to(torch.float32).pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(variance + eps))


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def llama_forward(c, w, ids, lora=None):
    def linear(x, name):  # nn.Linear: x @ W^T (+ b); PEFT delta B A
        W = w[f"{name}.weight"]
        if lora and name in lora["modules"]:
            A, B = lora["modules"][name]
            W = W + (B @ A) * lora["scale"]
        y = x @ W.T
        return y + w[f"{name}.bias"] if f"{name}.bias" in w else y

    B_, T = ids.shape
    H, KV = c["num_attention_heads"], c["num_key_value_heads"]
    hd = c["hidden_size"] // H
    eps = c["rms_norm_eps"]
    inv_freq = 1.0 / (c["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    freqs = torch.arange(T).float()[:, None] @ inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    h = w["model.embed_tokens.weight"][ids]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}"
        x = rms_norm(h, w[f"{p}.input_layernorm.weight"], eps)
        q = linear(x, f"{p}.self_attn.q_proj").view(B_, T, H, hd).transpose(1, 2)
        k = linear(x, f"{p}.self_attn.k_proj").view(B_, T, KV, hd).transpose(1, 2)
        v = linear(x, f"{p}.self_attn.v_proj").view(B_, T, KV, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k[:, :, None].expand(B_, KV, H // KV, T, hd).reshape(B_, H, T, hd)  # repeat_kv
        v = v[:, :, None].expand(B_, KV, H // KV, T, hd).reshape(B_, H, T, hd)
        att = (q @ k.transpose(2, 3)) * hd ** -0.5
        att = att.masked_fill(~mask, torch.finfo(att.dtype).min)
        att = torch.softmax(att, dim=-1, dtype=torch.float32)
        o = (att @ v).transpose(1, 2).reshape(B_, T, H * hd)
        h = h + linear(o, f"{p}.self_attn.o_proj")
        x = rms_norm(h, w[f"{p}.post_attention_layernorm.weight"], eps)
        gate = linear(x, f"{p}.mlp.gate_proj")
        h = h + linear(torch.nn.functional.silu(gate) * linear(x, f"{p}.mlp.up_proj"), f"{p}.mlp.down_proj")
    h = rms_norm(h, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if c.get("tie_word_embeddings") else w["lm_head.weight"]
    return h @ head.T


def llama_weights(c):
    d, L, V, I = c["hidden_size"], c["num_hidden_layers"], c["vocab_size"], c["intermediate_size"]
    hd = d // c["num_attention_heads"]
    q, kv = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd
    w = {"model.embed_tokens.weight": torch.randn(V, d) * 0.5}
    for i in range(L):
        p = f"model.layers.{i}"
        w[f"{p}.input_layernorm.weight"] = 1 + 0.1 * torch.randn(d)
        w[f"{p}.post_attention_layernorm.weight"] = 1 + 0.1 * torch.randn(d)
        for name, (i_, o_) in {"self_attn.q_proj": (d, q), "self_attn.k_proj": (d, kv), "self_attn.v_proj": (d, kv),
                               "self_attn.o_proj": (q, d), "mlp.gate_proj": (d, I), "mlp.up_proj": (d, I),
                               "mlp.down_proj": (I, d)}.items():
            w[f"{p}.{name}.weight"] = torch.randn(o_, i_) / math.sqrt(i_)
            if c.get("attention_bias") and name.startswith("self_attn"):
                w[f"{p}.{name}.bias"] = 0.1 * torch.randn(o_)
    w["model.norm.weight"] = 1 + 0.1 * torch.randn(d)
    if not c.get("tie_word_embeddings"):
        w["lm_head.weight"] = torch.randn(V, d) / math.sqrt(d)
    return w


def lora_adapter(modules, shapes, r, alpha):
    """A trained-looking adapter: A and B both non-zero (B is zero only at initialisation)."""
    mods = {m: (torch.randn(r, shapes[m][0]) / math.sqrt(shapes[m][0]), 0.2 * torch.randn(shapes[m][1], r)) for m in modules}
    return {"modules": mods, "scale": alpha / r, "r": r, "alpha": alpha}


def write_adapter(d, lora, targets, fan_in_fan_out):
    os.makedirs(d, exist_ok=True)
    t = {}
    for m, (A, B) in lora["modules"].items():
        t[f"base_model.model.{m}.lora_A.weight"] = A
        t[f"base_model.model.{m}.lora_B.weight"] = B
    save_safetensors(os.path.join(d, "adapter_model.safetensors"), t)
    cfg = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": lora["r"], "lora_alpha": lora["alpha"], "lora_dropout": 0.0,
           "target_modules": targets, "fan_in_fan_out": fan_in_fan_out, "bias": "none", "base_model_name_or_path": "..",
           "inference_mode": True, "init_lora_weights": True, "modules_to_save": None}
    with open(os.path.join(d, "adapter_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)


def main(out):
    ids = torch.tensor([[256, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100, 33, 10, 257],
                        [84, 104, 101, 32, 119, 104, 97, 108, 101, 46, 256, 1, 2, 3, 200, 255]])
    # GPT-2, stored as the original Hub checkpoints are: no "transformer." prefix, attn.bias mask
    # buffers present, float16 storage.
    c = {"model_type": "gpt2", "vocab_size": 260, "n_positions": 16, "n_embd": 16, "n_layer": 2, "n_head": 2,
         "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"]}
    w = rounded(gpt2_weights(c), "F16")
    d = os.path.join(out, "gpt2")
    os.makedirs(d, exist_ok=True)
    legacy = {k.replace("transformer.", "", 1): v for k, v in w.items()}
    for i in range(c["n_layer"]):
        legacy[f"h.{i}.attn.bias"] = torch.tril(torch.ones(16, 16)).view(1, 1, 16, 16)
    save_safetensors(os.path.join(d, "model.safetensors"), legacy, "F16")
    json.dump(c, open(os.path.join(d, "config.json"), "w"), indent=2)
    write_tokenizer(d)
    shapes = {f"transformer.h.{i}.attn.c_attn": (16, 48) for i in range(2)} | {f"transformer.h.{i}.mlp.c_fc": (16, 64) for i in range(2)}
    lora = lora_adapter(list(shapes), shapes, 4, 8)
    write_adapter(os.path.join(d, "adapter"), lora, ["c_attn", "c_fc"], True)
    with torch.no_grad():
        save_safetensors(os.path.join(d, "expected.safetensors"),
                         {"input_ids": ids.float(), "logits": gpt2_forward(c, w, ids), "logits_lora": gpt2_forward(c, w, ids, lora)})

    # Llama: grouped-query attention (4 heads, 2 KV heads), rope_theta 500000, untied head, bfloat16 storage.
    c = {"model_type": "llama", "vocab_size": 260, "max_position_embeddings": 16, "hidden_size": 16,
         "intermediate_size": 40, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
         "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": False, "hidden_act": "silu",
         "architectures": ["LlamaForCausalLM"]}
    w = rounded(llama_weights(c), "BF16")
    d = os.path.join(out, "llama")
    os.makedirs(d, exist_ok=True)
    save_safetensors(os.path.join(d, "model.safetensors"), w, "BF16")
    json.dump(c, open(os.path.join(d, "config.json"), "w"), indent=2)
    write_tokenizer(d)
    shapes = {}
    for i in range(2):
        shapes[f"model.layers.{i}.self_attn.q_proj"] = (16, 16)
        shapes[f"model.layers.{i}.self_attn.v_proj"] = (16, 8)
        shapes[f"model.layers.{i}.mlp.down_proj"] = (40, 16)
    lora = lora_adapter(list(shapes), shapes, 2, 4)
    write_adapter(os.path.join(d, "adapter"), lora, ["q_proj", "v_proj", "down_proj"], False)
    with torch.no_grad():
        save_safetensors(os.path.join(d, "expected.safetensors"),
                         {"input_ids": ids.float(), "logits": llama_forward(c, w, ids), "logits_lora": llama_forward(c, w, ids, lora)})

    # Qwen2-style Llama: tied embeddings, q/k/v biases, MHA (kv heads = heads), float32 storage.
    c = {"model_type": "qwen2", "vocab_size": 260, "max_position_embeddings": 16, "hidden_size": 16,
         "intermediate_size": 24, "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2,
         "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": True, "hidden_act": "silu",
         "architectures": ["Qwen2ForCausalLM"]}
    w = llama_weights(dict(c, attention_bias=True))
    w = {k: v for k, v in w.items() if not k.endswith("o_proj.bias")}
    d = os.path.join(out, "qwen2")
    os.makedirs(d, exist_ok=True)
    save_safetensors(os.path.join(d, "model.safetensors"), w, "F32")
    json.dump(c, open(os.path.join(d, "config.json"), "w"), indent=2)
    write_tokenizer(d)
    with torch.no_grad():
        save_safetensors(os.path.join(d, "expected.safetensors"), {"input_ids": ids.float(), "logits": llama_forward(c, w, ids)})
    print(f"wrote fixtures to {out} (torch {torch.__version__})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "libs/model/fixtures")
