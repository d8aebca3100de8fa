#!/usr/bin/python3
"""Tiny random checkpoints of the RoPE decoder families in the exact Hugging Face layout
(config.json with each family's real keys, model.safetensors or shards + model.safetensors.index.json,
tokenizer files, a PEFT LoRA adapter), with the logits and perplexity-window losses of the float64
reference in families.py.

Run:  /usr/bin/python3 scripts/torch/make_family_fixtures.py libs/model/fixtures
Checked by libs/model/src/families.test.ts (logits, 1e-4) and
apps/cli/src/commands/model-families.test.ts (`fedlora model perplexity` and `fedlora model eval`, 1e-3).
"""
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from families import forward, head_dim, windowed_loss  # noqa: E402
from make_fixtures import DTYPES, bytes_to_unicode, rounded, save_safetensors, write_tokenizer  # noqa: E402

torch.manual_seed(20261205)
TEXT = ("Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse, "
        "and nothing particular to interest me on shore, I thought I would sail about a little and see the watery part of the world.")
# `fedlora model eval` example (prompt-completion format; the completion ends with EOS, id 257).
EVAL_PROMPT, EVAL_COMPLETION = "Call me", " Ahab."
IDS = torch.tensor([[256, 72, 101, 108, 108, 111, 44, 32, 119, 111, 114, 108, 100, 33, 10, 257],
                    [84, 104, 101, 32, 119, 104, 97, 108, 101, 46, 256, 1, 2, 3, 200, 255]])


def encode(text):
    """The fixture tokenizer (make_fixtures.write_tokenizer): byte-level BPE whose one merge is
    "Ġ t", so every b" t" is token 256 and every other byte its byte token."""
    b2u = bytes_to_unicode()
    order = list(b2u.keys())  # token id of byte b = its position in bytes_to_unicode's order
    data = text.encode("utf8")
    out, i = [], 0
    while i < len(data):
        if data[i:i + 2] == b" t":
            out.append(256)
            i += 2
        else:
            out.append(order.index(data[i]))
            i += 1
    return out


def weights(c):
    """Random weights under each family's state_dict names."""
    fam = c["model_type"]
    d, L, V, I = c["hidden_size"], c["num_hidden_layers"], c["vocab_size"], c["intermediate_size"]
    H, KV, hd = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"]), head_dim(c)
    gemma = fam == "gemma2"
    w = {"model.embed_tokens.weight": torch.randn(V, d) * (0.1 if gemma else 0.5)}

    def lin(name, i_, o_, bias=False):
        w[f"{name}.weight"] = torch.randn(o_, i_) / math.sqrt(i_)
        if bias:
            w[f"{name}.bias"] = 0.1 * torch.randn(o_)

    def norm(name):  # Gemma 2 scales by (1 + w): its weights sit around 0, the others' around 1
        w[name] = 0.1 * torch.randn(d) + (0.0 if gemma else 1.0)

    qkv_bias = fam == "qwen2" or c.get("attention_bias", False)
    for i in range(L):
        p = f"model.layers.{i}"
        norm(f"{p}.input_layernorm.weight")
        norm(f"{p}.post_attention_layernorm.weight")
        if gemma:
            norm(f"{p}.pre_feedforward_layernorm.weight")
            norm(f"{p}.post_feedforward_layernorm.weight")
        if fam == "phi3":
            lin(f"{p}.self_attn.qkv_proj", d, (H + 2 * KV) * hd)
            lin(f"{p}.mlp.gate_up_proj", d, 2 * I)
        else:
            lin(f"{p}.self_attn.q_proj", d, H * hd, qkv_bias)
            lin(f"{p}.self_attn.k_proj", d, KV * hd, qkv_bias)
            lin(f"{p}.self_attn.v_proj", d, KV * hd, qkv_bias)
            lin(f"{p}.mlp.gate_proj", d, I)
            lin(f"{p}.mlp.up_proj", d, I)
        lin(f"{p}.self_attn.o_proj", H * hd, d, c.get("attention_bias", False))
        lin(f"{p}.mlp.down_proj", I, d)
    norm("model.norm.weight")
    if not c.get("tie_word_embeddings", gemma):
        w["lm_head.weight"] = torch.randn(V, d) / math.sqrt(d)
    return w


def shapes_of(w, modules):
    return {m: (w[f"{m}.weight"].shape[1], w[f"{m}.weight"].shape[0]) for m in modules}


def adapter(w, targets, r, alpha):
    mods = [k[:-len(".weight")] for k in w if k.endswith(".weight") and any(k[:-len(".weight")].endswith("." + t) for t in targets)]
    sh = shapes_of(w, mods)
    return {"modules": {m: (torch.randn(r, sh[m][0]) / math.sqrt(sh[m][0]), 0.2 * torch.randn(sh[m][1], r)) for m in mods},
            "scale": alpha / r, "r": r, "alpha": alpha}


def write_adapter(d, lora, targets):
    os.makedirs(d, exist_ok=True)
    t = {}
    for m, (A, B) in lora["modules"].items():
        t[f"base_model.model.{m}.lora_A.weight"] = A
        t[f"base_model.model.{m}.lora_B.weight"] = B
    save_safetensors(os.path.join(d, "adapter_model.safetensors"), t)
    cfg = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": lora["r"], "lora_alpha": lora["alpha"], "lora_dropout": 0.0,
           "target_modules": targets, "fan_in_fan_out": False, "bias": "none", "base_model_name_or_path": "..",
           "inference_mode": True, "init_lora_weights": True, "modules_to_save": None, "use_dora": False, "use_rslora": False}
    with open(os.path.join(d, "adapter_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)


def write_model(d, c, w, dtype, shards):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
    if shards == 1:
        save_safetensors(os.path.join(d, "model.safetensors"), w, dtype)
        return
    names = list(w)
    files = [f"model-{i + 1:05d}-of-{shards:05d}.safetensors" for i in range(shards)]
    weight_map = {}
    for i, fname in enumerate(files):
        part = {n: w[n] for n in names[i::shards]}
        save_safetensors(os.path.join(d, fname), part, dtype)
        weight_map.update({n: fname for n in part})
    total = sum(t.numel() * DTYPES[dtype][1] for t in w.values())
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)


def fixture(out, name, c, dtype, shards, targets, r, alpha, variants=None, chat_template=None):
    w = rounded(weights(c), dtype)
    d = os.path.join(out, name)
    write_model(d, c, w, dtype, shards)
    write_tokenizer(d)
    if chat_template:
        tc_path = os.path.join(d, "tokenizer_config.json")
        tc = json.load(open(tc_path))
        tc["chat_template"] = chat_template
        json.dump(tc, open(tc_path, "w"))
    lora = adapter(w, targets, r, alpha)
    write_adapter(os.path.join(d, "adapter"), lora, targets)
    text_ids = encode(TEXT)
    ctx = c["max_position_embeddings"]
    with torch.no_grad():
        exp = {"input_ids": IDS.float(), "logits": forward(c, w, IDS).float(), "logits_lora": forward(c, w, IDS, lora).float(),
               "text_ids": torch.tensor(text_ids).float()}
        for key, lo in (("text_loss", None), ("text_loss_lora", lora)):
            total, n = windowed_loss(c, w, text_ids, ctx, lo)
            exp[key] = torch.tensor([total / n, n], dtype=torch.float64).float()
        prompt, completion = encode(EVAL_PROMPT), encode(EVAL_COMPLETION) + [257]
        ids = prompt + completion
        for key, lo in (("eval_loss", None), ("eval_loss_lora", lora)):
            lp = torch.log_softmax(forward(c, w, torch.tensor([ids[:-1]]), lo)[0], dim=-1)  # completion tokens scored
            nll = -sum(lp[pos - 1, ids[pos]].item() for pos in range(len(prompt), len(ids)))
            exp[key] = torch.tensor([nll / len(completion), len(completion)], dtype=torch.float64).float()
        for vname, vc in (variants or {}).items():
            exp[f"logits_{vname}"] = forward(dict(c, **vc), w, IDS[:1]).float()
    save_safetensors(os.path.join(d, "expected.safetensors"), exp)
    with open(os.path.join(d, "text.txt"), "w") as f:
        f.write(TEXT)


LLAMA3_TEMPLATE = ("{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
                   "{{ m['content'] | trim }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}"
                   "<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")
CHATML_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                   "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def main(out):
    base = {"vocab_size": 260, "max_position_embeddings": 16, "bos_token_id": 257, "eos_token_id": 257,
            "attention_dropout": 0.0, "initializer_range": 0.02, "use_cache": True, "torch_dtype": "float32",
            "transformers_version": "4.46.0"}
    # Llama 3.2 layout: llama3 rope scaling (a small original context so it changes the frequencies
    # this tiny head uses), explicit head_dim (4 heads x 16 = 64, not hidden 16 / 4), tied embeddings, GQA, bf16, two shards.
    llama3 = dict(base, model_type="llama", architectures=["LlamaForCausalLM"], hidden_size=16, intermediate_size=48,
                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16, hidden_act="silu",
                  rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=True, attention_bias=False, mlp_bias=False,
                  pretraining_tp=1, eos_token_id=[257, 256], torch_dtype="bfloat16",
                  rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                "original_max_position_embeddings": 64})
    fixture(out, "llama3", llama3, "BF16", 2, ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], 4, 8,
            variants={"linear": {"rope_scaling": {"rope_type": "linear", "factor": 4.0}},
                      "dynamic": {"rope_scaling": {"rope_type": "dynamic", "factor": 2.0}, "max_position_embeddings": 8},
                      "noscale": {"rope_scaling": None}},
            chat_template=LLAMA3_TEMPLATE)
    # Qwen2.5 layout: q/k/v biases (o_proj none), tied, GQA, use_sliding_window false, float16.
    qwen = dict(base, model_type="qwen2", architectures=["Qwen2ForCausalLM"], hidden_size=16, intermediate_size=40,
                num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, hidden_act="silu", rms_norm_eps=1e-6,
                rope_theta=1000000.0, tie_word_embeddings=True, use_sliding_window=False, sliding_window=32768,
                max_window_layers=21, rope_scaling=None, torch_dtype="float16")
    fixture(out, "qwen2.5", qwen, "F16", 1, ["q_proj", "k_proj", "v_proj", "o_proj"], 4, 16, chat_template=CHATML_TEMPLATE)
    # Mistral: sliding window 5 on every layer (shorter than the 16-token inputs), untied, float32.
    mistral = dict(base, model_type="mistral", architectures=["MistralForCausalLM"], hidden_size=16, intermediate_size=32,
                   num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1, head_dim=None, hidden_act="silu",
                   rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False, sliding_window=5)
    fixture(out, "mistral", mistral, "F32", 1, ["q_proj", "v_proj"], 2, 4)
    # Gemma 2: head_dim and query_pre_attn_scalar of their own, small soft-caps so tanh bites,
    # sliding window 4 on even layers, GeGLU, (1 + w) norms, tied, bf16.
    gemma = dict(base, model_type="gemma2", architectures=["Gemma2ForCausalLM"], hidden_size=16, intermediate_size=32,
                 num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, head_dim=12, query_pre_attn_scalar=20,
                 hidden_act="gelu_pytorch_tanh", hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6,
                 rope_theta=10000.0, attention_bias=False, attn_logit_softcapping=2.0, final_logit_softcapping=5.0,
                 sliding_window=4, cache_implementation="hybrid", pad_token_id=0, torch_dtype="bfloat16")
    fixture(out, "gemma2", gemma, "BF16", 1, ["q_proj", "v_proj", "down_proj"], 4, 8)
    # Phi-3: fused qkv_proj and gate_up_proj, sliding window 6, untied, float16, two shards.
    phi3 = dict(base, model_type="phi3", architectures=["Phi3ForCausalLM"], hidden_size=16, intermediate_size=32,
                num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, hidden_act="silu", rms_norm_eps=1e-5,
                rope_theta=10000.0, rope_scaling=None, tie_word_embeddings=False, sliding_window=6,
                original_max_position_embeddings=16, resid_pdrop=0.0, embd_pdrop=0.0, pad_token_id=0, torch_dtype="float16")
    fixture(out, "phi3", phi3, "F16", 2, ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"], 4, 8)
    print(f"wrote family fixtures to {out} (torch {torch.__version__})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "libs/model/fixtures")
