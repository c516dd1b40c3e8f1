"""Gate an int8 graph on agreement with the torch model it came from: label agreement per head for the
encoders, next-token agreement on fixed prompts for the generative models."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from penny_slm.compat import require
from penny_slm.errors import ParityError
from penny_slm.training.heads import TrainedModel, length_batches, predict_logits

DECISION_AGREEMENT = 0.995
"""A head Penny acts on (needs_research, cheerleader tone) must agree with torch on 99.5% of the decisions torch
is clear about (issue #2), and on ``OVERALL_AGREEMENT`` of all."""
CLEAR_MARGIN = 0.1
"""A decision is clear when torch's top softmax probability leads the runner-up by at least this much. Near-ties
flip under int8 noise, and by different amounts on different CPUs' int8 kernels: a broken export flips clear
ones. Measured: a frozen research head on the packaged data agreed on 0.991 of all rows on this machine."""
OVERALL_AGREEMENT = 0.98
INFORMATIONAL_AGREEMENT: dict[str, float] = {"category": 0.98}
"""The category label only feeds reasoning and analytics; int8 noise moves more of its 11-way near-ties."""


@dataclass(frozen=True, slots=True)
class ParityReport:
    """How far an exported graph agrees with the torch model, per head: the gate's inputs, stored in the manifest."""
    minimum: dict[str, float]
    agreement: dict[str, float]  # clear decisions (the gate for heads Penny acts on)
    overall: dict[str, float]  # every row
    max_abs_diff: dict[str, float]
    n: int

    def as_dict(self) -> dict[str, object]:
        """The report as JSON, for the manifest."""
        return {"minimum": self.minimum, "agreement": self.agreement, "overall": self.overall,
                "max_abs_diff": self.max_abs_diff, "n": self.n, "clear_margin": CLEAR_MARGIN}


def onnx_logits(onnx_path: Path, trained: TrainedModel, texts: list[str], max_length: int = 128,
                stop: Callable[[list[int], dict[str, np.ndarray]], bool] | None = None) -> dict[str, np.ndarray]:
    """Each head's logits from the ONNX graph at ``onnx_path`` for ``texts``, tokenized as the torch model was (in
    batches of similar length, so short rows are not padded to long ones; the order of ``texts`` kept). ``stop`` sees
    each batch (its indices into ``texts`` and its logits) and ends the scoring early by returning True; rows not
    scored stay zero."""
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    out: dict[str, np.ndarray] = {}
    for idx in length_batches([len(t) for t in texts], 64):
        enc = trained.tokenizer([texts[j] for j in idx], padding=True, truncation=True, max_length=max_length, return_tensors="np")
        feeds = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
        batch = {name.removesuffix("_logits"): value for name, value in zip(names, session.run(names, feeds))}
        for head, value in batch.items():
            out.setdefault(head, np.zeros((len(texts), value.shape[1]), np.float32))[idx] = value
        if stop is not None and stop(idx, batch):
            break
    return out


def check_parity(onnx_path: Path, trained: TrainedModel, texts: list[str],
                 min_agreement: dict[str, float] | None = None, reference: dict[str, np.ndarray] | None = None) -> ParityReport:
    """Compare argmax labels per head, on the rows torch is clear about and on all rows; raise ``ParityError`` if a
    head falls below its minimum on clear rows, or below ``OVERALL_AGREEMENT`` (its informational minimum) on all.
    ``reference``: torch's logits for ``texts`` when the caller has them (``torch_logits``), so a second graph checked
    against the same model does not recompute them. Scoring stops as soon as more decisions differ than the minimum
    allows on all ``texts`` (the verdict cannot change; a refused mood graph was known after 3,008 of its 4,903 texts),
    and the report then covers the rows scored."""
    minimum = min_agreement or {h: INFORMATIONAL_AGREEMENT.get(h, DECISION_AGREEMENT) for h in trained.task.heads}
    reference = reference if reference is not None else torch_logits(trained, texts)
    clear = {h: _clear(r) for h, r in reference.items()}
    allowed = {h: ((1 - minimum.get(h, 1.0)) * clear[h].sum(), (1 - min(OVERALL_AGREEMENT, minimum.get(h, 1.0))) * len(texts))
               for h in reference}
    differ = {h: [0, 0] for h in reference}  # clear decisions, all decisions
    scored = np.zeros(len(texts), bool)

    def hopeless(idx: list[int], batch: dict[str, np.ndarray]) -> bool:
        scored[idx] = True
        for h, value in batch.items():
            flipped = reference[h][idx].argmax(1) != value.argmax(1)
            differ[h][0] += int((flipped & clear[h][idx]).sum())
            differ[h][1] += int(flipped.sum())
        return any(differ[h][0] > allowed[h][0] or differ[h][1] > allowed[h][1] for h in differ)

    exported = onnx_logits(onnx_path, trained, texts, trained.settings.max_length, stop=hopeless)
    agreement, overall, diff = {}, {}, {}
    for h in reference:
        same = reference[h][scored].argmax(1) == exported[h][scored].argmax(1)
        on_clear = clear[h][scored]
        agreement[h] = float(same[on_clear].mean()) if on_clear.any() else 1.0
        overall[h] = float(same.mean())
        diff[h] = float(np.abs(reference[h][scored] - exported[h][scored]).max())
    report = ParityReport(minimum, agreement, overall, diff, int(scored.sum()))
    failing = {h: a for h, a in agreement.items() if a < minimum.get(h, 1.0)}
    failing |= {h: a for h, a in overall.items() if a < min(OVERALL_AGREEMENT, minimum.get(h, 1.0))}
    if failing:
        raise ParityError(f"{onnx_path.name} agrees with torch on {failing} of {int(scored.sum())} texts scored (of {len(texts)}); "
                          f"minimum {minimum} on clear decisions, {OVERALL_AGREEMENT} on all", diff)
    return report


def torch_logits(trained: TrainedModel, texts: list[str]) -> dict[str, np.ndarray]:
    """The torch model's logits for ``texts`` as ``check_parity`` compares them, at the length it was trained with.
    Texts of the dev split reuse the logits training scored them with (the same model and length): the parity texts
    are mostly dev texts, and scoring tone's 2,500 again took about 15 s of the build (issue 23)."""
    row = {t: i for i, t in enumerate(trained.dev_texts)} if trained.dev_logits else {}
    missing = list(dict.fromkeys(t for t in texts if t not in row))
    fresh = predict_logits(trained.model, trained.tokenizer, missing, trained.settings.max_length) if missing else {}
    at = {t: i for i, t in enumerate(missing)}
    return {head: np.stack([trained.dev_logits[head][row[t]] if t in row else fresh[head][at[t]] for t in texts])
            for head in trained.task.heads}


def _clear(logits: np.ndarray) -> np.ndarray:
    """Rows where the top softmax probability leads the runner-up by at least ``CLEAR_MARGIN``."""
    top2 = np.sort(_softmax(logits), axis=1)[:, -2:]
    return np.asarray(top2[:, 1] - top2[:, 0] >= CLEAR_MARGIN)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


PARITY_PROMPTS = (
    "Explain what a Python decorator does, briefly.",
    "Rewrite in a dry voice: OMG you are AMAZING, the tests pass!!",
    "What is 15% of 240?",
    "My code review went badly today. Any advice?",
    "Summarise: the meeting moved to Thursday because the room was booked.",
    "List three uses of a hash map.",
)
"""The fixed prompts a generative export is compared on (chat-templated, every position of each)."""
DECODE_STEPS = 20
CONFIDENT_MARGIN = 2.0
"""A decode step counts as a clear decision when torch's top logit leads the runner-up by at least this much."""
CAUSAL_MIN_AGREEMENT = 0.75
"""Share of decode steps where the int8 graph, fed as the runtime feeds it (the prompt in one pass, then one
token at a time), picks torch's greedy token. Measured 2026-12-04 (``scripts`` in docs/MEASUREMENTS.md): 0.84
for the base SmolLM2 and 0.86 for a 2-step fine-tune; dynamic int8 flips near-ties, and per-channel int8 breaks
this model outright (0.0 top-1 on the prompt). Below the minimum the export is broken."""


def check_causal_parity(model: Any, tokenizer: Any, onnx_dir: Path, prompts: tuple[str, ...] = PARITY_PROMPTS,
                        minimum: float = CAUSAL_MIN_AGREEMENT) -> dict[str, float]:
    """Torch's greedy continuation of each prompt (chat-templated, ``DECODE_STEPS`` tokens), replayed through the
    exported int8 graph with its KV cache: at each step, does the graph pick torch's token? Reports the share of
    steps (the gate), the share among clear decisions (``CONFIDENT_MARGIN``) and the mean identical prefix;
    ``ParityError`` below ``minimum``."""
    torch = require("torch")
    session = ort.InferenceSession(str(onnx_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    outputs = [o.name for o in session.get_outputs()]
    config = model.config
    heads, layers = config.num_key_value_heads, config.num_hidden_layers
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    steps, same, clear, same_clear, prefixes = 0, 0, 0, 0, []
    model.eval()
    for prompt in prompts:
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids
        with torch.no_grad():
            generated = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=DECODE_STEPS, do_sample=False,
                                       output_scores=True, return_dict_in_generate=True, pad_token_id=tokenizer.eos_token_id)
        wanted = generated.sequences[0, ids.shape[1]:].tolist()
        margins = [float(np.diff(np.sort(score[0].numpy())[-2:])[0]) for score in generated.scores]
        past = {f"past_key_values.{i}.{kind}": np.zeros((1, heads, 0, head_dim), np.float32)
                for i in range(layers) for kind in ("key", "value")}
        feed, position, prefix = ids.numpy().astype(np.int64), 0, None
        for step, (token, margin) in enumerate(zip(wanted, margins)):
            n = feed.shape[1]
            feeds = {"input_ids": feed, "attention_mask": np.ones((1, position + n), np.int64),
                     "position_ids": np.arange(position, position + n, dtype=np.int64)[None, :], **past}
            logits, *presents = session.run(outputs, {k: v for k, v in feeds.items() if k in names})
            agrees = int(logits[0, -1].argmax()) == token
            steps, same = steps + 1, same + agrees
            if margin >= CONFIDENT_MARGIN:
                clear, same_clear = clear + 1, same_clear + agrees
            if not agrees and prefix is None:
                prefix = step
            past = dict(zip(past, presents))
            position, feed = position + n, np.array([[token]], np.int64)
        prefixes.append(len(wanted) if prefix is None else prefix)
    agreement = same / max(1, steps)
    report = {"parity_decode_agreement": round(agreement, 4), "parity_clear_decision_agreement": round(same_clear / max(1, clear), 4),
              "parity_mean_identical_prefix": round(float(np.mean(prefixes)), 2), "parity_steps": float(steps),
              "parity_minimum": minimum}
    if agreement < minimum:
        raise ParityError(f"{onnx_dir.name}: int8 picks torch's greedy token at {agreement:.3f} of decode steps < {minimum}", {})
    return report
