#!/usr/bin/env python3
"""Checks the reference engine's FP32 forward (examples/bert/, qcodec_bert --dump) against a
numpy re-implementation of all-MiniLM-L6-v2 in FP64, and its tokenizer against Hugging Face's
`tokenizers` reading the model's tokenizer.json.

usage: bert_reference.py MODEL_DIR DUMP_JSON
  MODEL_DIR  holds model.safetensors, tokenizer.json, config.json
  DUMP_JSON  written by `qcodec_bert VOCAB MODEL --dump DUMP_JSON`
needs: numpy, safetensors, tokenizers
"""
import json
import math
import os
import sys

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer


def erf(x):
    return np.vectorize(math.erf)(x)


def layer_norm(x, gamma, beta, eps):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def embed(w, config, ids):
    """Sentence embedding of one token sequence (no padding): BertModel, mean pooling, L2 norm."""
    t = len(ids)
    heads = config["num_attention_heads"]
    eps = config["layer_norm_eps"]
    h = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:t] \
        + w["embeddings.token_type_embeddings.weight"][0]
    h = layer_norm(h, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    d = h.shape[1] // heads

    def linear(x, name):
        return x @ w[name + ".weight"].T + w[name + ".bias"]

    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q, k, v = (linear(h, p + "attention.self." + n).reshape(t, heads, d).transpose(1, 0, 2)
                   for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        probs = scores / scores.sum(axis=-1, keepdims=True)
        context = (probs @ v).transpose(1, 0, 2).reshape(t, heads * d)
        h = layer_norm(h + linear(context, p + "attention.output.dense"),
                       w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
        inner = linear(h, p + "intermediate.dense")
        inner = 0.5 * inner * (1.0 + erf(inner / math.sqrt(2.0)))
        h = layer_norm(h + linear(inner, p + "output.dense"),
                       w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
    e = h.mean(axis=0)
    return e / np.linalg.norm(e)


def main():
    model_dir, dump_path = sys.argv[1], sys.argv[2]
    config = json.load(open(os.path.join(model_dir, "config.json")))
    w = {k: v.astype(np.float64) for k, v in load_file(os.path.join(model_dir, "model.safetensors")).items()
         if v.dtype == np.float32}
    dump = json.load(open(dump_path))
    tokenizer = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(256)
    cosines, token_mismatches = [], 0
    for sentence, ids, engine in zip(dump["sentences"], dump["ids"], dump["embeddings"]):
        reference_ids = tokenizer.encode(sentence).ids
        if reference_ids != ids:
            token_mismatches += 1
            print(f"token ids differ for {sentence!r}:\n  engine    {ids}\n  tokenizers {reference_ids}")
        reference = embed(w, config, np.array(reference_ids))
        engine = np.array(engine)
        cosines.append(float(engine @ reference / np.linalg.norm(engine) / np.linalg.norm(reference)))
    print(f"{len(cosines)} sentences: token ids identical for {len(cosines) - token_mismatches}; "
          f"embedding cosine engine FP32 vs numpy FP64: min {min(cosines):.9f} mean {np.mean(cosines):.9f}, "
          f"max |1 - cos| {max(abs(1 - c) for c in cosines):.2e}")
    return 0 if token_mismatches == 0 and min(cosines) >= 0.99999 else 1


if __name__ == "__main__":
    sys.exit(main())
