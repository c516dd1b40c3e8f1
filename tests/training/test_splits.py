"""Training rows never repeat a text a figure is measured on."""

from __future__ import annotations

from penny_slm.training.datasets import drop_overlapping


def test_rows_equal_or_nearly_equal_to_a_held_out_text_are_dropped() -> None:
    rows = [{"text": t} for t in ("Tell me a joke", "what is the weather in paris today?",  # exact after normalising; near (0.86)
                                  "what is the weather in paris today mate", "how do I reverse a list in python")]
    kept = drop_overlapping(rows, ["tell me a joke", "what is the weather in Paris today"])
    assert [r["text"] for r in kept] == ["how do I reverse a list in python"]
    assert drop_overlapping(rows, []) == rows
