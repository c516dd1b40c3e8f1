"""Partial fine-tuning (``TrainSettings.tuned_layers``) on the real MiniLM: the split forward is the same computation,
and only the top layers and the heads learn."""

from __future__ import annotations

import torch

from penny_slm.training.datasets import Example
from penny_slm.training.heads import Task, TrainSettings, _lower_states, _train_finetune, new_model

TEXTS = ["hi", "what's the weather in Paris today, and should I take an umbrella?", "what is 2+2?",
         "who won the match last night", "explain recursion like I'm five", "ok"]


def test_split_forward_equals_the_full_forward_on_a_padded_batch() -> None:
    model, tokenizer = new_model({"x": ("a", "b")})
    model.eval()
    enc = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        full = model(**enc)["x_logits"]
        for frozen in (1, 3, 5):
            states = _lower_states(model, tokenizer, TEXTS, frozen, 128)  # each row unpadded, padded again below
            hidden = torch.nn.utils.rnn.pad_sequence(states, batch_first=True)
            mask = (torch.arange(hidden.shape[1]) < torch.tensor([len(s) for s in states]).unsqueeze(1)).long()
            torch.testing.assert_close(model.upper_logits(hidden, mask, frozen)["x_logits"], full, atol=1e-5, rtol=1e-5)


def test_only_the_top_layers_and_the_heads_learn() -> None:
    torch.manual_seed(0)
    model, tokenizer = new_model({"x": ("a", "b")})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = [Example(t, {"x": i % 2}) for i, t in enumerate(TEXTS * 3)]
    _train_finetune(model, tokenizer, rows, Task("t", {"x": ("a", "b")}, "x"),
                    TrainSettings(epochs=1, batch_size=4, tuned_layers=2, threads=1))
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed, "nothing was trained"
    assert all(k.startswith(("bert.encoder.layer.4.", "bert.encoder.layer.5.", "heads.")) for k in changed), sorted(changed)
    assert any(k.startswith("bert.encoder.layer.4.") for k in changed)
