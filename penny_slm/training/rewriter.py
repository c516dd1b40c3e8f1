"""Fine-tune SmolLM2-135M-Instruct into Penny's rewriter (``rewriter_train.jsonl`` pairs).

All 30 decoder layers and the final norm train; the tied embeddings stay frozen (a copy-and-delete job
needs no new vocabulary). Training only the top 8 layers was measured worse on every metric
(docs/MEASUREMENTS.md, v2/v5/v6 against v7/v8). Loss is on the rewrite tokens only. Seeded; progress bar.

Build time (issue 23: a full ``models build`` within 25 minutes on 2 cores): a step costs what its padded
positions cost, so batches group pairs of similar length, the output layer runs only where the loss reads it
(``target_loss``), the tokens every row starts with run once per batch (``shared_prefix``), the optimizer is
fused, and the run trains on a seeded sample of ``max_pairs`` pairs (docs/MEASUREMENTS.md has two seeds each of all
2,874 pairs and of 1,600, 1,200 and 1,000: fewer than 1,600 lost quality through the guard with the shipped tone head).
"""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from penny_slm.compat import require, smollm2_gguf
from penny_slm.pipeline.modules.rewriter import SYSTEM_PROMPT
from penny_slm.training.rewriter_data import Pair


@dataclass(frozen=True, slots=True)
class RewriterSettings:
    """How the rewriter is fine-tuned; stored in the manifest and part of the build key."""
    epochs: int = 1
    batch_size: int = 8
    learning_rate: float = 1e-4
    train_layers: int = 30  # all decoder layers + final norm; the (tied) embeddings stay frozen (8 measured worse)
    max_length: int = 192
    seed: int = 17
    threads: int = 2
    limit_rows: int = 0  # a smaller sample for tests and quick checks (0: no limit beyond max_pairs)
    max_pairs: int = 1600  # the build-time budget: a seeded sample of the pairs (1,200 and 1,000 lost quality: MEASUREMENTS)
    group_by_length: bool = True  # batches of similar length: 17 % fewer padded positions (False: random batches)

    def as_dict(self) -> dict[str, Any]:
        """The settings as JSON, for the manifest."""
        return asdict(self)


def load_base() -> tuple[Any, Any]:
    """(tokenizer, model) from the packaged GGUF, dequantized to fp32 (needs ``gguf`` + ``accelerate``)."""
    transformers = require("transformers")
    torch = require("torch")
    gguf = smollm2_gguf()
    tokenizer = transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = transformers.AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    return tokenizer, model


def prompt_text(tokenizer: Any, source: str) -> str:
    """The chat-templated prompt for a source, with the run-time rewriter's system prompt (so training and use match).
    """
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": source}]
    return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))


def _encode(tokenizer: Any, pair: Pair, max_length: int) -> tuple[list[int], int]:
    """(prompt + target token ids, cut at ``max_length``; the prompt's length): tokenised once per run."""
    prompt = tokenizer(prompt_text(tokenizer, pair.source), add_special_tokens=False).input_ids
    target = tokenizer(pair.target + "<|im_end|>", add_special_tokens=False).input_ids
    return (prompt + target)[:max_length], len(prompt)


def _collate(rows: list[tuple[list[int], int]], pad: int) -> dict[str, Any]:
    """Padded ``input_ids``/``attention_mask`` and ``labels`` that are -100 outside the target."""
    torch = require("torch")
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad)
    labels = torch.full((len(rows), width), -100)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (ids, n_prompt) in enumerate(rows):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        mask[i, : len(ids)] = 1
        labels[i, n_prompt: len(ids)] = torch.tensor(ids[n_prompt:])
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def target_loss(model: Any, batch: dict[str, Any]) -> Any:
    """Mean next-token cross-entropy over the target tokens, the loss ``model(**batch).loss`` computes, with
    the 49k-word output layer applied only where a target token is predicted. Why: target tokens are 23 % of
    the padded positions (1,600 pairs, grouped), and the output layer is about a fifth of the model's
    compute per position, so three quarters of that fifth went to logits the loss then ignored.

    The tokens every row starts with (the system prompt, 28 of a row's 75 tokens on average) run once, not once per
    row: their keys and values are computed for one row and repeated for the others (``shared_prefix``). Causal
    attention and right padding make those positions the same in every row, so loss and gradients are the same."""
    torch = require("torch")
    transformers = require("transformers")
    ids, mask = batch["input_ids"], batch["attention_mask"]
    shared = shared_prefix(ids, batch["labels"])
    if shared:
        cache = transformers.DynamicCache()
        model.model(input_ids=ids[:1, :shared], past_key_values=cache, use_cache=True)
        cache.batch_repeat_interleave(len(ids))
        hidden = model.model(input_ids=ids[:, shared:], attention_mask=mask, past_key_values=cache, use_cache=True).last_hidden_state
    else:
        hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
    labels = batch["labels"][:, shared + 1:]
    predicting = labels != -100
    logits = model.lm_head(hidden[:, :-1][predicting])
    return torch.nn.functional.cross_entropy(logits.float(), labels[predicting])


def shared_prefix(input_ids: Any, labels: Any) -> int:
    """How many leading tokens every row of the batch has in common, stopping before the position that predicts the
    first target token (that position's hidden state is read by the loss); 0 for a single row."""
    if len(input_ids) < 2:
        return 0
    same = (input_ids == input_ids[:1]).all(0).long()
    common = int(same.cumprod(0).sum())
    first_target = int((labels != -100).long().argmax(1).min())
    return max(0, min(common, first_target - 1))


def _batches(encoded: list[tuple[list[int], int]], settings: RewriterSettings, rng: random.Random) -> list[list[int]]:
    """One epoch's batches of row indices: length-grouped (``heads.length_batches``: shuffled, sorted within
    windows, batches shuffled) or, with ``group_by_length=False``, the rows in their (already shuffled) order."""
    from penny_slm.training.heads import length_batches

    if settings.group_by_length:
        return length_batches([len(ids) for ids, _ in encoded], settings.batch_size, rng)
    return [list(range(i, min(i + settings.batch_size, len(encoded)))) for i in range(0, len(encoded), settings.batch_size)]


def finetune_rewriter(pairs: list[Pair], out_dir: Path, settings: RewriterSettings = RewriterSettings()) -> dict[str, Any]:
    """Train and save a transformers checkpoint (model + tokenizer with its chat template) to ``out_dir``.

    Batches group pairs of similar length (``_batches``): 17 % fewer padded positions than random batches on
    ``rewriter_train.jsonl``."""
    torch = require("torch")
    tqdm = require("tqdm.auto").tqdm
    torch.manual_seed(settings.seed)
    torch.set_num_threads(settings.threads)
    rng = random.Random(settings.seed)
    rows = list(pairs)
    rng.shuffle(rows)
    for cap in (settings.max_pairs, settings.limit_rows):
        if cap:
            rows = rows[:cap]
    tokenizer, model = load_base()
    encoded = [_encode(tokenizer, p, settings.max_length) for p in rows]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    layers = model.model.layers
    for param in model.parameters():
        param.requires_grad = False
    for module in [*layers[len(layers) - settings.train_layers:], model.model.norm]:
        for param in module.parameters():
            param.requires_grad = True
    trainable = [p for p in model.parameters() if p.requires_grad]
    # fused: one kernel over all 106M trainable weights, 0.08 s a step against 0.28-0.37 s for the default loop
    # (measured on the reference 2-core machine; same update rule)
    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, fused=True)
    steps = settings.epochs * -(-len(rows) // settings.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1 - s / steps))
    model.train()
    start, losses, positions = time.perf_counter(), [], 0
    progress = tqdm(total=steps, desc="fine-tune rewriter", leave=False)
    for _ in range(settings.epochs):
        for idx in _batches(encoded, settings, rng):
            batch = _collate([encoded[i] for i in idx], pad)
            positions += batch["input_ids"].numel()
            loss = target_loss(model, batch)
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(loss.item())
            progress.update(1)
            progress.set_postfix(loss=f"{losses[-1]:.3f}")
    progress.close()
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return {"train_seconds": round(time.perf_counter() - start, 1), "rows": len(rows), "steps": steps,
            "padded_positions": positions, "final_loss": round(sum(losses[-20:]) / max(1, len(losses[-20:])), 4),
            "trainable_params": sum(p.numel() for p in trainable), "settings": settings.as_dict()}


def checkpoint_key(train_file: Path, settings: RewriterSettings) -> str:
    """Same data + same settings → same key: ``models build`` reuses a finished checkpoint (training
    takes ~11 minutes on 2 cores) when only the export or the evaluation has to be redone."""
    import hashlib
    import json

    digest = hashlib.sha256(train_file.read_bytes())
    digest.update(json.dumps(settings.as_dict(), sort_keys=True).encode())
    return digest.hexdigest()[:16]


def train_checkpoint(work_dir: Path, train_file: Path, settings: RewriterSettings = RewriterSettings()) -> tuple[Path, dict[str, Any]]:
    """Train into ``work_dir/rewriter-<key>/`` unless a finished checkpoint for this key is there."""
    import json

    from penny_slm.training.rewriter_data import load_pairs

    out = work_dir / f"rewriter-{checkpoint_key(train_file, settings)}"
    meta_file = out / "train_meta.json"
    if meta_file.is_file():
        return out, dict(json.loads(meta_file.read_text()), reused=True)
    meta = finetune_rewriter(load_pairs(train_file), out, settings)
    meta_file.write_text(json.dumps(meta, indent=1))
    return out, meta
