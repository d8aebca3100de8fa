#!/usr/bin/python3
"""Completion-only loss of a Hugging Face model directory (and optionally a PEFT LoRA adapter
directory) from the independent PyTorch references (make_fixtures.py for GPT-2, families.py for the
RoPE decoders), in float64: an independent
check of `fedlora model eval`'s masking and mean.

Each example is {"prompt": [ids], "completion": [ids]}; the model reads prompt + completion and
only the completion tokens are scored: loss = -(sum over examples and completion tokens of
log p(token | previous tokens)) / (number of completion tokens). A completion token at position 0
has no previous token and is not scored (fedlora never produces one).

Usage: /usr/bin/python3 scripts/torch/completion_loss.py MODEL_DIR [ADAPTER_DIR|-] EXAMPLES_JSON_FILE
Prints {"loss": x, "tokens": n, "examples": m, "logprobs": [sum of log p of each example's completion]}.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_logits import load_model_and_adapter  # noqa: E402
from make_fixtures import gpt2_forward  # noqa: E402
import families  # noqa: E402


def main(model_dir, adapter_dir, examples_file):
    c, w, lora = load_model_and_adapter(model_dir, adapter_dir)
    w = {k: v.double() for k, v in w.items()}
    if lora:
        lora = {"modules": {k: (a.double(), b.double()) for k, (a, b) in lora["modules"].items()}, "scale": lora["scale"]}
    fwd = gpt2_forward if c["model_type"] == "gpt2" else families.forward  # Llama, Mistral, Qwen2, Gemma 2, Phi-3
    total, tokens, per_example = 0.0, 0, []
    examples = json.load(open(examples_file))
    for ex in examples:
        before = total
        ids = ex["prompt"] + ex["completion"]
        with torch.no_grad():
            logits = fwd(c, w, torch.tensor([ids[:-1]]), lora)[0].double()  # the last token is only a target
        logp = torch.log_softmax(logits, dim=-1)
        for pos in range(max(1, len(ex["prompt"])), len(ids)):
            total -= logp[pos - 1, ids[pos]].item()
            tokens += 1
        per_example.append(before - total)
    print(json.dumps({"loss": total / tokens, "tokens": tokens, "examples": len(examples), "logprobs": per_example}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
