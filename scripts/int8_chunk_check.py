"""Does the int8 rewriter's output for a token depend on what is fed with it? (docs/MEASUREMENTS.md,
"Prompt-lookup decoding"). The export's DynamicQuantizeLinear nodes pick one activation scale per fed
tensor, so feeding 8 tokens at once or one at a time gives different logits for the same positions.
Usage: python scripts/int8_chunk_check.py   (needs `penny-slm models build`)
"""

import json

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from penny_slm.cli import _registry
from penny_slm.config import load_config

folder = _registry(load_config()).load("rewriter").path
options = ort.SessionOptions()
options.intra_op_num_threads, options.log_severity_level = 2, 3
session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
config = json.loads((folder / "config.json").read_text())
layers, heads = config["num_hidden_layers"], config["num_key_value_heads"]
dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
ids = tokenizer.encode("<|im_start|>user\nHonestly you're the goat. NEVER run that script as root. It deletes whatever "
                       "path you give it.<|im_end|>\n<|im_start|>assistant\nNEVER run that script as root. It deletes "
                       "whatever", add_special_tokens=False).ids
empty = {f"past_key_values.{i}.{k}": np.zeros((1, heads, 0, dim), np.float32) for i in range(layers) for k in ("key", "value")}


def run(step: list[int], past: dict[str, np.ndarray], position: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    feeds = {"input_ids": np.array([step], np.int64), "attention_mask": np.ones((1, position + len(step)), np.int64),
             "position_ids": np.arange(position, position + len(step))[None], **past}
    logits, *presents = session.run(None, feeds)
    return logits[0], dict(zip(past, presents))


split = len(ids) - 8
_, past = run(ids[:split], empty, 0)
one_at_a_time, cache = [], past
for j in range(split, len(ids)):
    logits, cache = run([ids[j]], cache, j)
    one_at_a_time.append(logits[-1])
chunk, _ = run(ids[split:], past, split)
single = np.array(one_at_a_time)
whole, _ = run(ids, empty, 0)
print("last 8 positions, one at a time vs one chunk: max |logit diff|", [f"{d:.2f}" for d in np.abs(single - chunk).max(axis=1)])
print("same argmax:", (single.argmax(1) == chunk.argmax(1)).tolist())
print("prompt fed whole vs in two parts: max |logit diff|", [f"{d:.2f}" for d in np.abs(whole[split:] - chunk).max(axis=1)])
