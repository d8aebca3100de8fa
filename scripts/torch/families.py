#!/usr/bin/python3
"""Float64 reference forward passes of the RoPE decoder families, written from transformers'
modeling_llama.py (LlamaForCausalLM; Mistral and Qwen2 share it), modeling_gemma2.py and
modeling_phi3.py, plus modeling_rope_utils.py for rope_scaling. Plain torch (transformers is not
installed here); every tensor is float64 so the reference is more exact than the float32 code
under test. LoRA follows peft's tuners/lora/layer.py: W + (alpha / r) B A for nn.Linear.

forward(config, weights, ids, lora=None) -> logits [B, T, V] (float64); `config` is the raw
config.json dict, `weights` the state_dict names of the HF checkpoint.
"""
import math

import torch

F = torch.float64


def _get(c, key, default):
    """config.get that keeps an explicit null (transformers passes None through)."""
    return c[key] if key in c else default


def family(c):
    t = c["model_type"]
    if t in ("llama", "mistral", "qwen2"):
        return "llama"
    if t in ("gemma2", "phi3"):
        return t
    raise ValueError(f"model_type {t!r} has no reference")


def head_dim(c):
    hd = c.get("head_dim")
    if hd is None:
        hd = 256 if family(c) == "gemma2" else c["hidden_size"] // c["num_attention_heads"]
    return hd


def inv_freq(c, seq_len):
    """modeling_rope_utils: _compute_default / linear / dynamic / llama3 parameters."""
    dim = head_dim(c)
    base = _get(c, "rope_theta", 10000.0)
    rs = c.get("rope_scaling") or {}
    kind = rs.get("rope_type", rs.get("type", "default"))
    maxpos = c["max_position_embeddings"]
    if kind == "dynamic" and seq_len > maxpos:
        f = rs["factor"]
        base = base * ((f * seq_len / maxpos) - (f - 1)) ** (dim / (dim - 2))
    inv = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).to(F) / dim))
    if kind == "linear":
        inv = inv / rs["factor"]
    elif kind == "llama3":
        factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        low_wavelen, high_wavelen = old / low, old / high
        wavelen = 2 * math.pi / inv
        inv_l = torch.where(wavelen > low_wavelen, inv / factor, inv)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * inv_l / factor + smooth * inv_l
        medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
        inv = torch.where(medium, smoothed, inv_l)
    elif kind not in ("default", "dynamic"):
        raise ValueError(f"rope_type {kind!r} has no reference")
    return inv


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def rms_norm(x, w, eps, gemma):
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    return y * (1.0 + w) if gemma else w * y


def layer_windows(c):
    """Per layer: the sliding window (None = full causal attention), as each config class sets it."""
    fam, L = family(c), c["num_hidden_layers"]
    if fam == "gemma2":
        sw = _get(c, "sliding_window", 4096)
        default = [sw if i % 2 == 0 else None for i in range(L)]  # not bool(layer_idx % 2)
    elif c["model_type"] == "mistral":
        default = [_get(c, "sliding_window", 4096)] * L
    elif fam == "phi3":
        default = [c.get("sliding_window")] * L
    else:
        default = [None] * L  # llama; qwen2 with use_sliding_window false
    if c.get("layer_types"):
        sw = c.get("sliding_window")
        return [sw if lt == "sliding_attention" else None for lt in c["layer_types"]]
    return default


def forward(c, w, ids, lora=None):
    w = {k: v.to(F) for k, v in w.items()}
    fam = family(c)
    gemma = fam == "gemma2"

    def linear(x, name):
        W = w[f"{name}.weight"]
        if lora and name in lora["modules"]:
            A, B = lora["modules"][name]
            W = W + (B.to(F) @ A.to(F)) * lora["scale"]
        y = x @ W.T
        return y + w[f"{name}.bias"] if f"{name}.bias" in w else y

    B_, T = ids.shape
    H = c["num_attention_heads"]
    KV = c.get("num_key_value_heads") or H
    hd = head_dim(c)
    eps = _get(c, "rms_norm_eps", 1e-5 if fam == "phi3" else 1e-6)
    freqs = torch.arange(T, dtype=F)[:, None] * inv_freq(c, T)[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    scaling = _get(c, "query_pre_attn_scalar", 256) ** -0.5 if gemma else hd ** -0.5
    softcap = _get(c, "attn_logit_softcapping", 50.0) if gemma else None
    act_name = _get(c, "hidden_activation", "gelu_pytorch_tanh") if gemma else _get(c, "hidden_act", "silu")
    act = torch.nn.functional.silu if act_name == "silu" else (lambda x: torch.nn.functional.gelu(x, approximate="tanh"))
    i_idx = torch.arange(T)[:, None]
    j_idx = torch.arange(T)[None, :]
    h = w["model.embed_tokens.weight"][ids]
    if gemma:
        h = h * torch.tensor(c["hidden_size"] ** 0.5, dtype=torch.float32).to(F)  # normalizer in the model dtype
    for i, window in enumerate(layer_windows(c)):
        p = f"model.layers.{i}"
        x = rms_norm(h, w[f"{p}.input_layernorm.weight"], eps, gemma)
        if fam == "phi3":
            qkv = linear(x, f"{p}.self_attn.qkv_proj")
            q, k, v = qkv.split([H * hd, KV * hd, KV * hd], dim=-1)
        else:
            q, k, v = (linear(x, f"{p}.self_attn.{n}_proj") for n in "qkv")
        q = q.view(B_, T, H, hd).transpose(1, 2)
        k = k.view(B_, T, KV, hd).transpose(1, 2)
        v = v.view(B_, T, KV, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k[:, :, None].expand(B_, KV, H // KV, T, hd).reshape(B_, H, T, hd)  # repeat_kv
        v = v[:, :, None].expand(B_, KV, H // KV, T, hd).reshape(B_, H, T, hd)
        att = (q @ k.transpose(2, 3)) * scaling
        if softcap is not None:
            att = torch.tanh(att / softcap) * softcap
        allowed = j_idx <= i_idx
        if window is not None:
            allowed = allowed & (j_idx > i_idx - window)  # sliding_window_overlay: kv_idx > q_idx - window
        att = att.masked_fill(~allowed, float("-inf"))
        att = torch.softmax(att, dim=-1)
        o = linear((att @ v).transpose(1, 2).reshape(B_, T, H * hd), f"{p}.self_attn.o_proj")
        if gemma:
            o = rms_norm(o, w[f"{p}.post_attention_layernorm.weight"], eps, True)
        h = h + o
        x = rms_norm(h, w[f"{p}.pre_feedforward_layernorm.weight" if gemma else f"{p}.post_attention_layernorm.weight"], eps, gemma)
        if fam == "phi3":
            gate, up = linear(x, f"{p}.mlp.gate_up_proj").chunk(2, dim=-1)
        else:
            gate, up = linear(x, f"{p}.mlp.gate_proj"), linear(x, f"{p}.mlp.up_proj")
        m = linear(act(gate) * up, f"{p}.mlp.down_proj")
        if gemma:
            m = rms_norm(m, w[f"{p}.post_feedforward_layernorm.weight"], eps, True)
        h = h + m
    h = rms_norm(h, w["model.norm.weight"], eps, gemma)
    tied = _get(c, "tie_word_embeddings", gemma)
    logits = h @ (w["model.embed_tokens.weight"] if tied else w["lm_head.weight"]).T
    if gemma and _get(c, "final_logit_softcapping", 30.0) is not None:
        cap = _get(c, "final_logit_softcapping", 30.0)
        logits = torch.tanh(logits / cap) * cap
    return logits


def windowed_loss(c, w, ids, context, lora=None):
    """`fedlora model perplexity`'s windows: (context + 1)-token windows every `context` tokens,
    each token after the first predicted once; returns (sum of nats, predicted tokens)."""
    total, n = 0.0, 0
    s = 0
    while s + 1 < len(ids):
        win = torch.tensor([ids[s: s + context + 1]])
        logits = forward(c, w, win[:, :-1], lora)
        lp = torch.log_softmax(logits, dim=-1)
        tgt = win[:, 1:]
        total += -lp.gather(-1, tgt[..., None]).sum().item()
        n += tgt.numel()
        s += context
    return total, n
