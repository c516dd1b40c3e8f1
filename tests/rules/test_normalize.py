import pytest

from penny_slm.errors import InputError
from penny_slm.rules.normalize import normalize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ｗｈａｔ'ｓ ｂｉｔｃｏｉｎ ａｔ", "what's bitcoin at"),  # full-width letters
        ("lat\u200best ne\u200dws", "latest news"),  # zero-width
        ("price\u202e today", "price today"),  # bidi override
        ("tab\tand\x00null\x07bell", "tab\tand null bell"),  # control bytes become spaces, tab kept
        ("ﬁle", "file"),  # ligature
    ],
)
def test_normalize_cleans_for_detection(raw: str, expected: str) -> None:
    assert normalize(raw).text == expected


def test_offsets_point_back_into_original() -> None:
    raw = "a\u200bｂc"
    norm = normalize(raw)
    assert norm.original == raw
    assert norm.text == "abc"
    assert [raw[i] for i in norm.offsets] == ["a", "ｂ", "c"]


def test_lone_surrogate_is_replaced_not_crashing() -> None:
    norm = normalize("bad \ud800 surrogate")
    assert "\ufffd" in norm.text
    norm.text.encode("utf-8")  # would raise on a surrogate


def test_over_long_input_is_truncated_and_flagged() -> None:
    norm = normalize("x" * 50, max_chars=10)
    assert norm.truncated and len(norm.text) == 10
    assert not normalize("short").truncated


@pytest.mark.parametrize("bad", [None, 42, b"bytes", ["list"]])
def test_non_string_is_a_typed_error(bad: object) -> None:
    with pytest.raises(InputError, match="expected a str"):
        normalize(bad)
