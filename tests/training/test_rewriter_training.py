"""The rewriter fine-tune's cheaper steps compute the same thing (issue 23): the target-only loss equals the
loss over full-vocabulary logits, and length-grouped batches cover every pair once with less padding."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from penny_slm.training.rewriter import RewriterSettings, _batches, _collate, _encode, load_base, shared_prefix, target_loss
from penny_slm.training.rewriter_data import Pair, load_pairs

TRAIN = Path(__file__).resolve().parents[2] / "penny_slm" / "training" / "data" / "rewriter_train.jsonl"

pytestmark = pytest.mark.issue(23)


def test_target_only_loss_equals_the_full_vocabulary_loss_with_padding() -> None:
    torch = pytest.importorskip("torch")
    tokenizer, model = load_base()
    model.eval()
    pairs = [Pair("Wow!!! The tests pass now, CJ!", "The tests pass now.", ("exclamation",)),
             Pair("Sure.", "Sure.", ()),
             Pair("*grins* Grab a coffee and read the log: line 40 divides by zero.",
                  "Read the log: line 40 divides by zero.", ("asterisk_action", "coffee_reference"))]
    batch = _collate([_encode(tokenizer, p, 192) for p in pairs], pad=0)
    assert batch["attention_mask"].sum() < batch["attention_mask"].numel()  # the batch really is padded
    with torch.no_grad():
        full, mine = model(**batch).loss.item(), target_loss(model, batch).item()
    assert mine == pytest.approx(full, rel=1e-5)


def test_shared_prompt_tokens_run_once_with_the_same_loss_and_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    """The system prompt every row starts with runs for one row and its keys and values serve all of them
    (``shared_prefix``): the loss and the gradients equal those of running every row whole."""
    torch = pytest.importorskip("torch")
    import penny_slm.training.rewriter as rewriter

    tokenizer, model = load_base()
    pairs = [Pair("Wow!!! The tests pass now, CJ!", "The tests pass now.", ("exclamation",)),
             Pair("*grins* Grab a coffee and read the log.", "Read the log.", ("asterisk_action", "coffee_reference"))]
    batch = _collate([_encode(tokenizer, p, 192) for p in pairs], pad=0)
    shared = shared_prefix(batch["input_ids"], batch["labels"])
    first_target = int((batch["labels"][0] != -100).long().argmax())
    assert 20 < shared < first_target  # the system prompt, never the position that predicts the first target token
    assert shared_prefix(batch["input_ids"][:1], batch["labels"][:1]) == 0
    layers = [model.model.layers[0], model.model.layers[-1]]
    for param in model.parameters():
        param.requires_grad = any(param is q for layer in layers for q in layer.parameters())

    def loss_and_grads() -> tuple[float, list[Any]]:
        model.zero_grad()
        loss = target_loss(model, batch)
        loss.backward()
        return loss.item(), [q.grad.clone() for layer in layers for q in layer.parameters()]

    split_loss, split_grads = loss_and_grads()
    monkeypatch.setattr(rewriter, "shared_prefix", lambda *_: 0)  # every row whole
    whole_loss, whole_grads = loss_and_grads()
    assert split_loss == pytest.approx(whole_loss, rel=1e-6)
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(split_grads, whole_grads))


def test_length_grouped_batches_cover_every_pair_once_with_less_padding() -> None:
    pairs = load_pairs(TRAIN)
    lengths = [len(pair.source) + len(pair.target) for pair in pairs]  # characters stand in for tokens here
    encoded = [([0] * n, 1) for n in lengths]

    def padded(batches: list[list[int]]) -> int:
        return sum(max(lengths[i] for i in batch) * len(batch) for batch in batches)

    grouped = _batches(encoded, RewriterSettings(), random.Random(17))
    in_order = _batches(encoded, RewriterSettings(group_by_length=False), random.Random(17))
    assert sorted(i for batch in grouped for i in batch) == list(range(len(pairs)))
    assert in_order[0] == list(range(8)) and len(grouped) == len(in_order)
    assert padded(grouped) < 0.9 * padded(in_order)
    assert _batches(encoded, RewriterSettings(), random.Random(17)) == grouped  # seeded


def test_the_meaning_embedder_gives_each_text_the_vector_it_gets_alone() -> None:
    """The rewriter evaluation's sentence vectors come from length-grouped batches and a memo (issue 23: one padded
    batch of 262 texts took 48 of its 130 s); each equals the text's vector embedded on its own, repeats included."""
    pytest.importorskip("torch")
    import numpy as np

    from penny_slm.training.evaluate import SentenceEmbedder

    texts = ["Sure.", "The tests pass now: line 40 no longer divides by zero, and the log says why.",
             "Read the log.", "Sure."] + [f"Item {i} of a longer list of things to check before a release." for i in range(40)]
    batched = SentenceEmbedder(batch_size=8)(texts)
    alone = SentenceEmbedder(batch_size=1)  # batches of one: no padding
    expected = np.stack([alone([t])[0] for t in texts])
    assert batched.shape == (len(texts), 384)
    assert np.allclose(batched, expected, atol=1e-5)
    assert np.array_equal(batched[0], batched[3])
