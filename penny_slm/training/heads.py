"""Fine-tune all-MiniLM-L6-v2 with one linear head per task over mean-pooled tokens.

Two approaches, compared on dev by ``export.build``:
- ``finetune``: encoder and heads trained together (AdamW, linear decay); with ``tuned_layers`` only the top layers
  of the encoder, the frozen ones below run once per row (``_lower_states``), not once per epoch.
- ``frozen``:  encoder untouched, scikit-learn logistic regression per head, weights copied into the
  same linear heads, so both approaches export through one path.
Confidence is calibrated afterwards with a single temperature fitted on dev (``fit_temperature``).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from torch import nn
from tqdm.auto import tqdm
from transformers import AutoTokenizer, BatchEncoding, BertConfig, BertModel, BertPreTrainedModel, PreTrainedTokenizerBase

from penny_slm.compat import base_encoder_dir
from penny_slm.training.datasets import Example


@dataclass(frozen=True, slots=True)
class Task:
    """What one artifact predicts: its heads (label names per head) and the head whose confidence is calibrated."""

    name: str
    heads: dict[str, tuple[str, ...]]
    calibrated_head: str


def _mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden`` over the real tokens (padding masked out)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


class MultiHeadEncoder(BertPreTrainedModel):
    """BERT encoder → attention-masked mean pooling → ``{head}_logits`` for every head in ``config.head_sizes``."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.heads = nn.ModuleDict({name: nn.Linear(config.hidden_size, n) for name, n in config.head_sizes.items()})
        self.post_init()

    def pool(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Mean of the last hidden states over the real tokens (padding masked out): the sentence embedding every head
        reads."""
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
        return _mean_pool(hidden, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Each head's logits, under the output names the ONNX export keeps."""
        return self._head_logits(self.pool(input_ids, attention_mask, token_type_ids))

    def lower_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None,
                     layers: int) -> torch.Tensor:
        """The hidden states after the embeddings and the first ``layers`` encoder layers (``upper_logits`` goes on)."""
        hidden = self.bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        return self._layers(hidden, attention_mask, 0, layers)

    def upper_logits(self, hidden: torch.Tensor, attention_mask: torch.Tensor, first: int) -> dict[str, torch.Tensor]:
        """Each head's logits from the hidden states after layer ``first``: the rest of ``forward``, same result."""
        hidden = self._layers(hidden, attention_mask, first, self.config.num_hidden_layers)
        return self._head_logits(_mean_pool(hidden, attention_mask))

    def _head_logits(self, pooled: torch.Tensor) -> dict[str, torch.Tensor]:
        return {f"{name}_logits": head(pooled) for name, head in self.heads.items()}

    def _layers(self, hidden: torch.Tensor, attention_mask: torch.Tensor, first: int, stop: int) -> torch.Tensor:
        additive = self.bert.get_extended_attention_mask(attention_mask, attention_mask.shape)
        for layer in self.bert.encoder.layer[first:stop]:
            hidden = layer(hidden, attention_mask=additive)[0]
        return hidden


@dataclass(frozen=True, slots=True)
class TrainSettings:
    """How one encoder head is trained; stored in the manifest and part of the build key."""
    approach: str = "finetune"  # or "frozen"
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 5e-5
    head_learning_rate: float = 1e-3
    max_length: int = 128  # = runtime max_tokens; long multi-sentence rows exist in the data
    seed: int = 13
    threads: int = 2
    limit_rows: int = 0  # 0 = all; tests use a few hundred rows
    class_weight: str = ""  # "balanced": cross-entropy weighted n / (k · n_class) per head (rare moods count more)
    select_epoch: bool = False  # keep the epoch whose dev macro-F1 (calibrated head) is highest (early stopping)
    tuned_layers: int = 0  # 0 = fine-tune every encoder layer; n = only the top n (the rest frozen, run once per row)

    def as_dict(self) -> dict[str, Any]:
        """The settings as JSON, for the manifest."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class TrainedModel:
    """A trained torch model with its tokenizer, settings, dev metrics and calibration temperature, ready for export."""
    model: MultiHeadEncoder
    tokenizer: PreTrainedTokenizerBase
    task: Task
    settings: TrainSettings
    seconds: float
    dev_metrics: dict[str, float] = field(default_factory=dict)
    temperature: float = 1.0
    dev_texts: list[str] = field(default_factory=list)
    dev_logits: dict[str, np.ndarray] = field(default_factory=dict)  # per head, row i for dev_texts[i] (uncalibrated)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch so a build with the same settings trains the same way."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _targets(rows: list[Example], task: Task) -> dict[str, torch.Tensor]:
    return {head: torch.tensor([r.labels[head] for r in rows]) for head in task.heads}


def macro_f1(gold: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    """The unweighted mean of the per-class F1 over ``n_classes`` classes (a class never seen nor predicted scores 0)."""
    f1s = []
    for c in range(n_classes):
        tp = int(((pred == c) & (gold == c)).sum())
        fp, fn = int(((pred == c) & (gold != c)).sum()), int(((pred != c) & (gold == c)).sum())
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(f1s))


def class_weights(y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """``n / (k · n_class)`` per class (scikit-learn's "balanced"); a class absent from ``y`` gets weight 1."""
    counts = torch.bincount(y, minlength=n_classes).float()
    weights = len(y) / (n_classes * counts.clamp(min=1))
    return torch.where(counts > 0, weights, torch.ones_like(weights))


def new_model(label_names: dict[str, tuple[str, ...]]) -> tuple[MultiHeadEncoder, PreTrainedTokenizerBase]:
    """A MiniLM with one fresh head per label set, from the installed weight package (nothing downloaded), and its
    tokenizer."""
    src = base_encoder_dir()
    config = BertConfig.from_pretrained(str(src))
    config.head_sizes = {name: len(labels) for name, labels in label_names.items()}
    config.label_names = {name: list(labels) for name, labels in label_names.items()}
    model = MultiHeadEncoder.from_pretrained(str(src), config=config)
    tokenizer = AutoTokenizer.from_pretrained(str(src))
    return model, tokenizer


def length_batches(lengths: list[int], batch_size: int, rng: random.Random | None = None, window: int = 50) -> list[list[int]]:
    """Batches of row indices with similar lengths, so padding stays small: one 100-token math question no
    longer pads 31 ten-token chat messages (measured: a research epoch ~5x slower without this). With ``rng``,
    the rows are shuffled, sorted by length only within windows of ``window`` batches, and the batches
    shuffled, so training still sees random mixtures; without it, the order is simply by length."""
    order = list(range(len(lengths)))
    if rng is None:
        order.sort(key=lambda i: lengths[i])
        return [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(order)
    span = batch_size * window
    batches = []
    for start in range(0, len(order), span):
        chunk = sorted(order[start: start + span], key=lambda i: lengths[i])
        batches += [chunk[i: i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def _token_lengths(tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int) -> list[int]:
    return [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]


def _sorted_batches(tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int, batch_size: int = 64,
                    desc: str = "") -> Iterator[tuple[list[int], BatchEncoding]]:
    """``texts`` tokenised in length-sorted, padded batches: each batch's indices into ``texts`` and its encoding
    (with ``desc``, a progress bar)."""
    batches = length_batches(_token_lengths(tokenizer, texts, max_length), batch_size)
    for idx in tqdm(batches, desc=desc, leave=False) if desc else batches:
        yield idx, tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=max_length, return_tensors="pt")


@torch.no_grad()
def predict_logits(model: MultiHeadEncoder, tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int = 128, batch_size: int = 64) -> dict[str, np.ndarray]:
    """Every head's logits for ``texts``, in their order (computed in length-sorted batches)."""
    model.eval()
    out: dict[str, np.ndarray] = {}
    for idx, enc in _sorted_batches(tokenizer, texts, max_length, batch_size):
        for name, value in model(**enc).items():
            head = out.setdefault(name.removesuffix("_logits"), np.zeros((len(texts), value.shape[1]), np.float32))
            head[idx] = value.numpy()
    return out


@torch.no_grad()
def _embed(model: MultiHeadEncoder, tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int) -> np.ndarray:
    model.eval()
    features: np.ndarray | None = None
    for idx, enc in _sorted_batches(tokenizer, texts, max_length, desc="embed (frozen encoder)"):
        pooled = model.pool(**enc).numpy()
        if features is None:
            features = np.zeros((len(texts), pooled.shape[1]), np.float32)
        features[idx] = pooled
    assert features is not None
    return features


def _train_frozen(model: MultiHeadEncoder, tokenizer: PreTrainedTokenizerBase, rows: list[Example], task: Task,
                  settings: TrainSettings) -> None:
    features = _embed(model, tokenizer, [r.text for r in rows], settings.max_length)
    for name, y in _targets(rows, task).items():
        # C=1: with C=10 the head weights amplified int8 noise (parity 98.5% vs 99.6%) for no dev gain.
        clf = LogisticRegression(C=1.0, max_iter=3000, random_state=settings.seed).fit(features, y.numpy())
        head = model.heads[name]
        assert isinstance(head, nn.Linear)
        with torch.no_grad():
            if clf.coef_.shape[0] == 1:  # binary: logits [0, w·x + b] give the same softmax as sigmoid(w·x + b)
                head.weight.zero_()
                head.bias.zero_()
                head.weight[1] = torch.from_numpy(clf.coef_[0]).float()
                head.bias[1] = float(clf.intercept_[0])
            else:
                head.weight.copy_(torch.from_numpy(clf.coef_).float())
                head.bias.copy_(torch.from_numpy(clf.intercept_).float())


def _train_finetune(model: MultiHeadEncoder, tokenizer: PreTrainedTokenizerBase, rows: list[Example], task: Task,
                    settings: TrainSettings, dev: list[Example] | None = None) -> tuple[list[float], dict[str, np.ndarray] | None]:
    """Fine-tune in place; with ``settings.select_epoch`` and ``dev``, the weights of the epoch with the best dev
    macro-F1 of ``task.calibrated_head`` are kept. Returns that dev macro-F1 per epoch (empty without selection) and the
    kept epoch's dev logits (None without selection), so the caller need not compute them again."""
    targets = _targets(rows, task)
    lengths = _token_lengths(tokenizer, [r.text for r in rows], settings.max_length)
    steps = settings.epochs * math.ceil(len(rows) / settings.batch_size)
    frozen = model.config.num_hidden_layers - settings.tuned_layers if settings.tuned_layers else 0
    lower = _lower_states(model, tokenizer, [r.text for r in rows], frozen, settings.max_length) if frozen else []
    tuned = model.bert.encoder.layer[frozen:] if frozen else model.bert
    optimizer = torch.optim.AdamW(
        [
            {"params": tuned.parameters(), "lr": settings.learning_rate},
            {"params": model.heads.parameters(), "lr": settings.head_learning_rate},
        ],
        weight_decay=0.01,
        fused=True,  # one kernel for the update instead of a loop over tensors (issue 23: same rule, less time a step)
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1 - step / steps))
    loss_fns = {name: nn.CrossEntropyLoss(weight=class_weights(y, len(task.heads[name])) if settings.class_weight == "balanced" else None)
                for name, y in targets.items()}
    rng = random.Random(settings.seed)
    progress = tqdm(total=steps, desc="fine-tune", leave=False)
    select = settings.select_epoch and bool(dev)
    scores: list[float] = []
    best_state: dict[str, torch.Tensor] | None = None
    best_logits: dict[str, np.ndarray] | None = None
    model.train()
    for _ in range(settings.epochs):
        for idx in length_batches(lengths, settings.batch_size, rng):
            if frozen:
                hidden = nn.utils.rnn.pad_sequence([lower[j] for j in idx], batch_first=True)
                mask = (torch.arange(hidden.shape[1]) < torch.tensor([lengths[j] for j in idx]).unsqueeze(1)).long()
                logits = model.upper_logits(hidden, mask, frozen)
            else:
                enc = tokenizer([rows[j].text for j in idx], padding=True, truncation=True, max_length=settings.max_length,
                                return_tensors="pt")
                logits = model(**enc)
            loss = sum(loss_fns[name](logits[f"{name}_logits"], y[idx]) for name, y in targets.items())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.3f}")
        if select and dev:
            head = task.calibrated_head
            dev_logits = predict_logits(model, tokenizer, [r.text for r in dev], settings.max_length)
            scores.append(macro_f1(np.array([r.labels[head] for r in dev]), dev_logits[head].argmax(1), len(task.heads[head])))
            if scores[-1] == max(scores):
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                best_logits = dev_logits
            model.train()
    progress.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return scores, best_logits


@torch.no_grad()
def _lower_states(model: MultiHeadEncoder, tokenizer: PreTrainedTokenizerBase, texts: list[str], layers: int,
                  max_length: int) -> list[torch.Tensor]:
    """Each text's hidden states (its real tokens only) after the first ``layers`` layers, computed once: with those
    layers frozen they never change, so an epoch runs only the layers above them (``TrainSettings.tuned_layers``)."""
    model.eval()
    states: list[torch.Tensor] = [torch.empty(0)] * len(texts)
    for idx, enc in _sorted_batches(tokenizer, texts, max_length, desc="frozen layers"):
        hidden = model.lower_states(enc["input_ids"], enc["attention_mask"], enc.get("token_type_ids"), layers)
        for row, i in enumerate(idx):
            states[i] = hidden[row, : int(enc["attention_mask"][row].sum())].clone()
    return states


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """One temperature T minimising dev NLL of softmax(logits / T) (Guo et al. 2017); a 1-D grid is enough.

    T is searched in [1, 20] only: it may soften, never sharpen. When dev has no errors (our templated
    dev split often has none) the unconstrained fit runs to T -> 0 and claims certainty it has not earned.
    """
    best_t, best_nll = 1.0, float("inf")
    for t in np.exp(np.linspace(0.0, math.log(20.0), 300)):
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        nll = -float(logp[np.arange(len(labels)), labels].mean())
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return best_t


def train(task: Task, train_rows: list[Example], dev: list[Example], settings: TrainSettings,
          calibration: list[Example] | None = None) -> TrainedModel:
    """Train one approach, score every head on dev, calibrate ``task.calibrated_head`` on ``calibration``
    (default: dev): real-world rows from sources held out from training calibrate better than in-distribution ones."""
    seed_everything(settings.seed)
    torch.set_num_threads(settings.threads)
    if settings.limit_rows:
        train_rows = random.Random(settings.seed).sample(train_rows, min(settings.limit_rows, len(train_rows)))
    start = time.perf_counter()
    model, tokenizer = new_model(task.heads)
    epoch_scores: list[float] = []
    dev_logits: dict[str, np.ndarray] | None = None
    if settings.approach == "frozen":
        _train_frozen(model, tokenizer, train_rows, task, settings)
    elif settings.approach == "finetune":
        epoch_scores, dev_logits = _train_finetune(model, tokenizer, train_rows, task, settings, dev)
    else:
        raise ValueError(f"unknown approach {settings.approach!r}; valid: finetune, frozen")
    seconds = time.perf_counter() - start
    logits = dev_scores = dev_logits or predict_logits(model, tokenizer, [r.text for r in dev], settings.max_length)
    y = _targets(dev, task)
    dev_metrics = {f"{head}_accuracy": float((logits[head].argmax(1) == y[head].numpy()).mean()) for head in task.heads}
    if settings.select_epoch:  # what the epoch was chosen by, per epoch
        head = task.calibrated_head
        dev_metrics[f"{head}_macro_f1"] = round(macro_f1(y[head].numpy(), logits[head].argmax(1), len(task.heads[head])), 4)
        dev_metrics |= {f"epoch{i + 1}_macro_f1": round(f, 4) for i, f in enumerate(epoch_scores)}
    if calibration:
        logits, y = predict_logits(model, tokenizer, [r.text for r in calibration], settings.max_length), _targets(calibration, task)
    temperature = fit_temperature(logits[task.calibrated_head], y[task.calibrated_head].numpy())
    return TrainedModel(model, tokenizer, task, settings, seconds, dev_metrics, temperature, [r.text for r in dev], dev_scores)
