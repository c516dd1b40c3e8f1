import json
from pathlib import Path

import pytest

from penny_slm.config import SLMConfig, load_config
from penny_slm.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_load_in_framework_shape() -> None:
    cfg = load_config()
    assert isinstance(cfg, SLMConfig)
    research = cfg.module_entry("research")
    assert research is not None and research.block == "research_classifier" and research.enabled
    assert 0 <= research.options["confidence_threshold"] <= 1
    assert [e.block for e in cfg.module_entries()] == ["research_classifier", "personality_guard", "context_tracker", "drift_monitor"]
    assert cfg.orchestration.fallback_on_timeout is True
    assert "CPUExecutionProvider" in cfg.runtime.execution_providers


def test_repo_config_is_the_packaged_defaults_with_models_next_to_it() -> None:
    """config/slm_config.json is the user copy: the packaged defaults, with models_dir pointing at ./models."""
    repo = json.loads((ROOT / "config" / "slm_config.json").read_text())
    packaged = json.loads((ROOT / "penny_slm" / "defaults" / "slm_config.json").read_text())
    assert repo["runtime"].pop("models_dir") == "../models" and packaged["runtime"].pop("models_dir") == ""
    assert repo == packaged


@pytest.mark.issue(24)
def test_lookup_order_and_editing_the_user_copy_changes_behaviour(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """explicit path → $PENNY_SLM_CONFIG → ./config/slm_config.json → packaged defaults."""
    monkeypatch.delenv("PENNY_SLM_CONFIG", raising=False)
    monkeypatch.delenv("PENNY_SLM_MODELS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert load_config().module_entry("research").enabled  # type: ignore[union-attr]
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "slm_config.json").write_text(json.dumps(
        {"models": {"research_classifier": {"enabled": False}}, "runtime": {"models_dir": "../built"}}))
    local = load_config()
    assert not local.module_entry("research").enabled  # type: ignore[union-attr]
    assert local.models_dir() == tmp_path / "built"  # relative to the config file, not the working directory
    monkeypatch.chdir(tmp_path / "config")
    assert load_config(tmp_path / "config" / "slm_config.json").models_dir() == tmp_path / "built"
    env_file = _write(tmp_path, {"orchestration": {"total_timeout": 7.0}})
    monkeypatch.setenv("PENNY_SLM_CONFIG", str(env_file))
    assert load_config().orchestration.total_timeout == 7.0 and load_config().module_entry("research").enabled  # type: ignore[union-attr]
    explicit = _write(tmp_path / "config", {"orchestration": {"total_timeout": 9.0}})
    assert load_config(explicit).orchestration.total_timeout == 9.0
    monkeypatch.setenv("PENNY_SLM_MODELS", str(tmp_path / "elsewhere"))
    assert load_config(explicit).models_dir() == tmp_path / "elsewhere"


@pytest.mark.issue(24)
def test_persona_lookup_reads_the_user_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from penny_slm.config import load_persona

    monkeypatch.delenv("PENNY_PERSONA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert load_persona().user_name == "CJ"
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "personality.json").write_text(json.dumps({"user_name": "Sam"}))
    assert load_persona().user_name == "Sam"


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(data))
    return path


def test_user_file_overrides_one_key(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, {"models": {"research_classifier": {"confidence_threshold": 0.9}}}))
    research = cfg.module_entry("research")
    assert research is not None and research.options["confidence_threshold"] == 0.9
    assert research.options["max_tokens"] == 128  # untouched default


def _build_layer_modules(cfg: SLMConfig) -> None:
    from penny_slm.pipeline.factory import build_modules

    build_modules(cfg)


def test_unknown_module_key_names_path_and_valid_keys(tmp_path: Path) -> None:
    """A module block's schema is its module's ``__init__``: checked when the layer builds the modules."""
    with pytest.raises(ConfigError) as info:
        _build_layer_modules(load_config(_write(tmp_path, {"models": {"research_classifier": {"confidense_threshold": 0.9}}})))
    message = str(info.value)
    assert "models -> research_classifier -> confidense_threshold: unknown key" in message
    assert "confidence_threshold" in message and "inference_timeout" in message


@pytest.mark.parametrize(
    ("block", "fragment"),
    [
        ({"research_classifier": {"confidence_threshold": 1.5}}, "confidence_threshold: 1.5 must be between 0 and 1"),
        ({"research_classifier": {"max_tokens": "many"}}, "max_tokens: expected int"),
        ({"personality_guard": {"enforcement_level": "medium"}}, "must be 'strict' or 'lenient'"),
        ({"drift_monitor": {"enabled": True, "every_n_turn": 5}}, "drift_monitor -> every_n_turn: unknown key; valid keys: .*every_n_turns"),
    ],
)
def test_bad_module_settings_are_config_errors(tmp_path: Path, block: dict[str, object], fragment: str) -> None:
    from penny_slm.errors import PennySLMError

    with pytest.raises(PennySLMError, match=fragment):
        _build_layer_modules(load_config(_write(tmp_path, {"models": block})))


@pytest.mark.parametrize(
    ("block", "fragment"),
    [
        ({"models": {"research_classifier": {"enabled": "yes"}}}, "expected bool"),
        ({"models": {"research_classifier": {"inference_timeout": 0}}}, "must be > 0"),
        ({"models": {"my_module": {"enabled": True}}}, 'must name its "module"'),
        ({"orchestration": {"total_timeout": 0}}, "must be > 0"),
        ({"runtime": {"execution_providers": "CPUExecutionProvider"}}, "expected a list"),
        ({"models": []}, "expected an object"),
    ],
)
def test_bad_values_are_config_errors(tmp_path: Path, block: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_config(_write(tmp_path, block))


@pytest.mark.parametrize(
    ("block", "fragment"),
    [
        ({"learning": {"kill_swich": True}}, "learning -> kill_swich: unknown key; valid keys: approval_expiry_hours"),
        ({"learning": {"retention_days": {"response_window": 3}}},
         "learning -> retention_days -> response_window: unknown key; valid keys: alerts, drift_turns, module_runs, outbox, update_log"),
        ({"learning": {"retention_days": {"outbox": 0}}}, "retention_days -> outbox: 0.0 must be > 0 days"),
        ({"learning": {"rate_limits": {"formality_level": 0}}}, "learning -> rate_limits -> formality_level: expected a number > 0"),
        ({"learning": {"rate_limits": {"formality_level": "fast"}}}, "expected a number > 0"),
        ({"learning": {"rate_limits": []}}, "learning -> rate_limits: expected an object"),
        ({"learning": {"log_message_text": "full"}}, "log_message_text: 'full' must be 'excerpt' or 'hash'"),
        ({"learning": {"max_new_slang_per_day": 0}}, "max_new_slang_per_day: 0 must be >= 1"),
        ({"learning": {"approval_threshold": 0}}, "approval_threshold: 0.0 must be > 0"),
        ({"learning": {"approval_expiry_hours": -1}}, "must be > 0 hours"),
        ({"learning": {"rate_window_hours": 0}}, "rate_window_hours: 0.0 must be > 0 hours"),
        ({"learning": {"enabled": "yes"}}, "learning -> enabled: expected bool"),
    ],
)
def test_bad_learning_settings_are_config_errors(tmp_path: Path, block: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_config(_write(tmp_path, block))


def test_learning_settings_override_key_by_key(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, {"learning": {"rate_limits": {"formality_level": 0.2, "warmth": 1}, "kill_switch": True,
                                                     "retention_days": {"alerts": 30}}}))
    learning = cfg.learning
    assert learning.rate_limits == {"formality_level": 0.2, "technical_depth": 0.1, "warmth": 1.0} and learning.kill_switch
    assert learning.retention_days.alerts == 30.0 and learning.retention_days.outbox == 7.0
    assert load_config().learning.log_message_text == "excerpt" and load_config().learning.enabled


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(bad)


def test_persona_defaults_and_repo_copy_agree() -> None:
    from penny_slm.config import load_persona

    assert json.loads((ROOT / "config" / "personality.json").read_text()) == json.loads(
        (ROOT / "penny_slm" / "defaults" / "personality.json").read_text())
    persona = load_persona()
    assert persona.user_name == "CJ" and persona.max_exclamations == 1 and "coffee" in persona.banned_phrases.coffee_reference


@pytest.mark.parametrize(
    ("block", "fragment"),
    [
        ({"user_name": ""}, "user_name: '' must be a non-empty name"),
        ({"max_exclamations": -1}, "max_exclamations: -1 must be >= 0"),
        ({"banned_phrases": {"tea_reference": ["tea"]}}, "banned_phrases -> tea_reference: unknown key; valid keys: coffee_reference"),
        ({"nickname": "C"}, "nickname: unknown key"),
        ({"nicknames": "Ceej"}, "nicknames: expected a list"),
        ({"nicknames": ["Ceej", 3]}, r"nicknames\[1\]: expected str"),
        ({"nicknames": ["Ceej", " "]}, "nicknames: .* must be non-empty names of at most 40 characters"),
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


def test_nicknames_count_as_the_name(tmp_path: Path) -> None:
    from penny_slm.config import load_persona

    persona = load_persona(_write(tmp_path, {"nicknames": ["Ceej", "Casey Jones"]}))
    assert persona.nicknames == ("Ceej", "Casey Jones") and load_persona().nicknames == ()
