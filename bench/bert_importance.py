#!/usr/bin/env python3
"""How column importances (calibrated mean squared activations) change a real model's output
fidelity under qcodec quantization: all-MiniLM-L6-v2 sentence embeddings in a numpy FP32 BERT.

usage: bert_importance.py MODEL_DIR QUANTIZE_BINARY [--codec NAME ...]
needs: numpy, safetensors
"""
import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import unicodedata

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(REPO, "tests", "python"))
import check_safetensors  # noqa: E402
from check_safetensors import decode  # noqa: E402

DEFAULT_CODECS = ["grid4-2level-g16-q6-s256", "int4-2level-g16-q6-s256", "grid3-2level-g16-q6-s256"]
LINEARS = ["attention.self.query", "attention.self.key", "attention.self.value",
           "attention.output.dense", "intermediate.dense", "output.dense"]

SENTENCES = [
    # calibration (first 32)
    "The cat sat quietly on the warm windowsill.",
    "Interest rates were raised by the central bank on Tuesday.",
    "She finished the marathon in just under four hours.",
    "How do I reset my password if I forgot my email?",
    "The recipe calls for two cups of flour and a pinch of salt.",
    "Photosynthesis converts sunlight into chemical energy.",
    "The museum reopened after a year of renovations.",
    "Our flight was delayed because of heavy snow in Chicago.",
    "He plays the violin in a small orchestra on weekends.",
    "Quantum computers could break some widely used encryption schemes.",
    "The children built a sandcastle near the pier.",
    "Please submit your report by Friday afternoon.",
    "A new species of frog was discovered in the rainforest.",
    "The referee showed the defender a red card.",
    "Volcanic ash disrupted air traffic across northern Europe.",
    "I prefer tea to coffee in the morning.",
    "The startup raised twenty million dollars in its latest funding round.",
    "Regular exercise lowers the risk of heart disease.",
    "The novel is set in a fishing village in nineteenth-century Norway.",
    "Turn left at the second traffic light and park behind the bakery.",
    "Engineers are testing a bridge design that can withstand earthquakes.",
    "My grandmother grows tomatoes, peppers and basil in her garden.",
    "The court ruled that the contract was invalid.",
    "Solar panels are becoming cheaper every year.",
    "The orchestra performed Beethoven's Ninth Symphony to a full house.",
    "Can you recommend a good restaurant near the train station?",
    "The glacier has retreated nearly a kilometre since 1950.",
    "Thousands of fans lined the streets to celebrate the championship.",
    "The software update fixes a bug that drained the battery.",
    "Wolves were reintroduced to the national park in the 1990s.",
    "The teacher asked the students to write an essay about friendship.",
    "Prices at the supermarket have risen sharply this winter.",
    # evaluation (last 32)
    "A dog is running through the tall grass in the park.",
    "The government announced new measures to reduce air pollution.",
    "He spilled coffee all over his laptop keyboard.",
    "The telescope captured images of a distant galaxy.",
    "What time does the pharmacy close on Sundays?",
    "The team won the final after a dramatic penalty shootout.",
    "Heavy rain caused flooding in several coastal towns.",
    "She is learning Japanese so she can read manga in the original.",
    "The company reported record profits for the third quarter.",
    "Bees play a crucial role in pollinating crops.",
    "The old lighthouse was converted into a small hotel.",
    "Doctors recommend drinking plenty of water during hot weather.",
    "The thief escaped through a window on the second floor.",
    "Machine translation has improved dramatically in recent years.",
    "We hiked to the summit and watched the sunrise.",
    "The library will extend its opening hours during exam season.",
    "A strong earthquake shook the capital early this morning.",
    "The chef added too much garlic to the soup.",
    "Electric cars need fewer repairs than petrol cars.",
    "The senator resigned after the scandal became public.",
    "My neighbour's parrot can whistle the national anthem.",
    "The archaeologists uncovered a Roman mosaic beneath the car park.",
    "Remember to back up your files before installing the update.",
    "The river froze completely during the coldest January on record.",
    "The band's new album topped the charts in twelve countries.",
    "Children under five travel free on city buses.",
    "The patient recovered quickly after the surgery.",
    "Satellites help farmers monitor the health of their crops.",
    "The chess champion defended her title for the third time.",
    "Café owners in Zürich complained about the new naïve tax rules!",
    "The bakery sells fresh croissants every morning at seven.",
    "Scientists warn that coral reefs are dying at an alarming rate.",
]
PARAPHRASES = ("A man is playing a guitar on stage.", "Someone is performing a song on the guitar.")
UNRELATED = "The stock market fell sharply after the interest rate announcement."


# ---- tokenizer: BERT basic tokenization + greedy longest-match-first WordPiece ----
class Tokenizer:
    def __init__(self, vocab_path):
        with open(vocab_path, encoding="utf-8") as f:
            self.vocab = {line.rstrip("\n"): i for i, line in enumerate(f)}

    @staticmethod
    def _is_punct(ch):
        cp = ord(ch)
        return 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126 or \
            unicodedata.category(ch).startswith("P")

    def _basic(self, text):
        text = unicodedata.normalize("NFD", text.lower())
        out = []
        for ch in text:
            if ord(ch) == 0 or ord(ch) == 0xFFFD or unicodedata.category(ch) == "Mn":
                continue  # control / replacement chars and accents (combining marks) dropped
            if ch.isspace():
                out.append(" ")
            elif self._is_punct(ch) or 0x4E00 <= ord(ch) <= 0x9FFF:
                out.append(f" {ch} ")
            elif not unicodedata.category(ch).startswith("C"):
                out.append(ch)
        return "".join(out).split()

    def _wordpiece(self, word):
        if len(word) > 100:
            return ["[UNK]"]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    break
                end -= 1
            if end == start:
                return ["[UNK]"]
            pieces.append(piece)
            start = end
        return pieces

    def __call__(self, text, max_len=128):
        toks = [p for w in self._basic(text) for p in self._wordpiece(w)][:max_len - 2]
        return np.array([self.vocab[t] for t in ["[CLS]"] + toks + ["[SEP]"]], dtype=np.int64)


# ---- FP32 BERT forward ----
def erf(x):
    # Abramowitz & Stegun 7.1.26: |error| <= 1.5e-7, below FP32 resolution of GELU's output
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t
               + 0.254829592) * t * np.exp(-a * a)
    return (s * y).astype(np.float32)


def layer_norm(x, g, b, eps=1e-12):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * g + b


def forward(W, pre, ids, cfg, record=None):
    """Sentence embedding of one token sequence; record[name] collects each linear's input."""
    T, H = len(ids), cfg["num_attention_heads"]
    D = cfg["hidden_size"] // H
    mask = np.ones(T, dtype=np.float32)  # one sentence at a time: no padding
    e = pre + "embeddings."
    x = W[e + "word_embeddings.weight"][ids] + W[e + "position_embeddings.weight"][:T] + \
        W[e + "token_type_embeddings.weight"][0]
    x = layer_norm(x, W[e + "LayerNorm.weight"], W[e + "LayerNorm.bias"])
    for l in range(cfg["num_hidden_layers"]):
        p = f"{pre}encoder.layer.{l}."

        def lin(name, inp):
            if record is not None:
                record.setdefault(p + name + ".weight", []).append(inp)
            return inp @ W[p + name + ".weight"].T + W[p + name + ".bias"]

        q, k, v = (lin("attention.self." + n, x).reshape(T, H, D).transpose(1, 0, 2)
                   for n in ("query", "key", "value"))
        s = q @ k.transpose(0, 2, 1) / np.float32(np.sqrt(D)) + (1.0 - mask) * np.float32(-1e4)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(1, 0, 2).reshape(T, H * D)
        x = layer_norm(x + lin("attention.output.dense", ctx),
                       W[p + "attention.output.LayerNorm.weight"], W[p + "attention.output.LayerNorm.bias"])
        h = lin("intermediate.dense", x)
        h = 0.5 * h * (1.0 + erf(h / np.float32(np.sqrt(2.0))))  # GELU (erf)
        x = layer_norm(x + lin("output.dense", h),
                       W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"])
    emb = (x * mask[:, None]).sum(0) / mask.sum()  # mean pooling over the attention mask
    return emb / np.linalg.norm(emb)


# ---- decoding (the fixed grid tables are read from grid.hpp; check_safetensors.decode
# ---- handles the -lut grids and the linear / two-level codecs) ----
def fixed_tables(bits, pair):
    with open(os.path.join(REPO, "include", "qcodec", "codecs", "grid.hpp")) as f:
        src = f.read()
    arr = "grid_fixed_pair" if pair else "grid_fixed_levels"
    body = re.search(arr + r"<%d> = \{(.*?)\};" % bits, src, re.S).group(1)
    return [float(v.strip().rstrip("f")) for v in body.split(",") if v.strip()]


def decode_any(tensors, metadata, name):
    d = json.loads(metadata["qcodec.tensor." + name])
    codec = d["codec"]
    if codec.startswith("grid") and not codec.endswith("-lut"):
        return check_safetensors.decode_grid(tensors, name, codec, *d["shape"],
                                             fixed_tables(int(codec[4]), "-t2" in codec))
    return decode(tensors, metadata, name)


def snr_db(ref, approx):
    ref, approx = ref.astype(np.float64), approx.astype(np.float64)
    return -20 * np.log10(np.linalg.norm(ref - approx) / np.linalg.norm(ref))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("quantize_binary")
    ap.add_argument("--codec", action="append", dest="codecs")
    args = ap.parse_args()
    codecs = args.codecs or DEFAULT_CODECS
    if not os.access(args.quantize_binary, os.X_OK):
        sys.exit(f"quantizer not found or not executable: {args.quantize_binary}")

    model_file = os.path.join(args.model_dir, "model.safetensors")
    with open(os.path.join(args.model_dir, "config.json")) as f:
        cfg = json.load(f)
    with safe_open(model_file, framework="numpy") as f:
        W = {k: f.get_tensor(k) for k in f.keys()}
    pre = "bert." if "bert.embeddings.word_embeddings.weight" in W else ""
    names = [f"{pre}encoder.layer.{l}.{n}.weight" for l in range(cfg["num_hidden_layers"]) for n in LINEARS]
    tok = Tokenizer(os.path.join(args.model_dir, "vocab.txt"))
    calib, evals = SENTENCES[:32], SENTENCES[32:]
    assert len(evals) == 32 and not set(calib) & set(evals)

    a, b = (forward(W, pre, tok(s), cfg) for s in PARAPHRASES)
    c = forward(W, pre, tok(UNRELATED), cfg)
    print(f"FP32 check: cosine paraphrases {a @ b:.4f}, unrelated {a @ c:.4f}")

    # calibration: importance of input column c = mean over tokens of x_c^2
    rec = {}
    for s in calib:
        forward(W, pre, tok(s), cfg, rec)
    importance = {n: np.mean(np.concatenate(rec[n]) ** 2, axis=0).astype(np.float32) for n in names}

    # FP32 reference on the evaluation sentences, with each linear's actual inputs
    rec = {}
    ref = np.stack([forward(W, pre, tok(s), cfg, rec) for s in evals])
    X = {n: np.concatenate(rec[n]) for n in names}
    print(f"calibration tokens {sum(len(tok(s)) for s in calib)}, evaluation tokens {len(X[names[0]])}")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        imp_path = os.path.join(tmp, "importance.safetensors")
        save_file(importance, imp_path)
        for codec in codecs:
            for use_imp in (False, True):
                out = os.path.join(tmp, "q.safetensors")
                cmd = [args.quantize_binary, model_file, out, "--codec", codec, "--quiet"]
                subprocess.run(cmd + (["--importance", imp_path] if use_imp else []),
                               check=True, stdout=subprocess.DEVNULL)
                with safe_open(out, framework="numpy") as f:
                    meta = f.metadata()
                    qt = {k: f.get_tensor(k) for k in f.keys()}
                Wq = dict(W)
                for k in meta:
                    if k.startswith("qcodec.tensor."):
                        Wq[k[len("qcodec.tensor."):]] = decode_any(qt, meta, k[len("qcodec.tensor."):])
                emb = np.stack([forward(Wq, pre, tok(s), cfg) for s in evals])
                cos = np.sum(emb * ref, axis=1)
                w_snr = [snr_db(W[n], Wq[n]) for n in names]
                o_snr = [snr_db(X[n] @ W[n].T, X[n] @ Wq[n].T) for n in names]
                rows.append((codec, "yes" if use_imp else "no", cos.mean(), cos.min(),
                             np.median(w_snr), np.median(o_snr)))

    print("\n| codec | importance | embedding cosine mean / min | median weight SNR dB | median layer-output SNR dB |")
    print("|---|---|---|---|---|")
    for codec, imp, cm, cmin, ws, os_ in rows:
        print(f"| {codec} | {imp} | {cm:.5f} / {cmin:.5f} | {ws:.2f} | {os_:.2f} |")
    cpu = [platform.processor() or platform.machine()]
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        cpu += [l.split(":", 1)[1].strip() for l in lscpu.splitlines() if l.startswith("Model name")]
    except OSError:
        pass
    print(f"\nmachine: {', '.join(cpu)}; command: {' '.join([os.path.basename(sys.executable)] + sys.argv)}")


if __name__ == "__main__":
    main()
