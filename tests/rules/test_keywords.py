from penny_slm.rules.keywords import find_cue, keyword_classify


def test_baseline_fires_on_time_words() -> None:
    result = keyword_classify("what's the latest news")
    assert result.needs_research and "latest" in result.reasoning


def test_baseline_overtriggers_on_code_that_mentions_today() -> None:
    """The weakness the classifier exists to fix: a coding request with 'today' is not a search."""
    assert keyword_classify("write a python function that returns today's date").needs_research


def test_baseline_without_cue_does_not_search() -> None:
    result = keyword_classify("write a haiku about autumn")
    assert not result.needs_research and result.category == "general"


def test_find_cue_returns_category_and_word() -> None:
    assert find_cue("how much is bitcoin") == ("prices_markets", "bitcoin")
    assert find_cue("tell me a joke") is None
