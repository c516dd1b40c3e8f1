import json
from pathlib import Path

import pytest

from penny_slm.config import SLMConfig, load_config
from penny_slm.errors import ConfigError


def test_defaults_load_in_framework_shape() -> None:
    cfg = load_config()
    assert isinstance(cfg, SLMConfig)
    assert cfg.models.research_classifier.enabled
    assert 0 <= cfg.models.research_classifier.confidence_threshold <= 1
    assert cfg.orchestration.fallback_on_timeout is True
    assert "CPUExecutionProvider" in cfg.runtime.execution_providers


def test_repo_config_matches_packaged_defaults() -> None:
    root = Path(__file__).resolve().parents[1]
    repo = json.loads((root / "config" / "slm_config.json").read_text())
    packaged = json.loads((root / "penny_slm" / "defaults" / "slm_config.json").read_text())
    assert repo == packaged


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(data))
    return path


def test_user_file_overrides_one_key(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, {"models": {"research_classifier": {"confidence_threshold": 0.9}}}))
    assert cfg.models.research_classifier.confidence_threshold == 0.9
    assert cfg.models.research_classifier.max_tokens == 128  # untouched default


def test_unknown_key_names_path_and_valid_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, {"models": {"research_classifier": {"confidense_threshold": 0.9}}}))
    message = str(info.value)
    assert "models -> research_classifier -> confidense_threshold: unknown key" in message
    assert "confidence_threshold" in message and "inference_timeout" in message


@pytest.mark.parametrize(
    ("block", "fragment"),
    [
        ({"models": {"research_classifier": {"confidence_threshold": 1.5}}}, "must be between 0 and 1"),
        ({"models": {"research_classifier": {"enabled": "yes"}}}, "expected bool"),
        ({"orchestration": {"total_timeout": 0}}, "must be > 0"),
        ({"runtime": {"execution_providers": "CPUExecutionProvider"}}, "expected a list"),
        ({"models": []}, "expected an object"),
    ],
)
def test_bad_values_are_config_errors(tmp_path: Path, block: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_config(_write(tmp_path, block))


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(bad)


def test_persona_defaults_and_repo_copy_agree() -> None:
    from penny_slm.config import load_persona

    root = Path(__file__).resolve().parents[1]
    assert json.loads((root / "config" / "personality.json").read_text()) == json.loads(
        (root / "penny_slm" / "defaults" / "personality.json").read_text())
    persona = load_persona()
    assert persona.user_name == "CJ" and persona.max_exclamations == 1 and "coffee" in persona.banned_phrases.coffee_reference


@pytest.mark.parametrize(
    ("block", "fragment"),
    [
        ({"user_name": ""}, "user_name: '' must be a non-empty name"),
        ({"max_exclamations": -1}, "max_exclamations: -1 must be >= 0"),
        ({"banned_phrases": {"tea_reference": ["tea"]}}, "banned_phrases -> tea_reference: unknown key; valid keys: coffee_reference"),
        ({"nickname": "C"}, "nickname: unknown key"),
    ],
)
def test_bad_persona_is_a_config_error(tmp_path: Path, block: dict[str, object], fragment: str) -> None:
    from penny_slm.config import load_persona

    with pytest.raises(ConfigError, match=fragment):
        load_persona(_write(tmp_path, block))


def test_persona_override_changes_the_guard(tmp_path: Path) -> None:
    from penny_slm.config import load_persona
    from penny_slm.rules.prohibitions import detect

    persona = load_persona(_write(tmp_path, {"user_name": "Sam", "max_exclamations": 2}))
    assert [h.rule for h in detect("Hi Sam! Yes! Sam, look.", persona)] == ["name_overuse"]
