"""The config loader: env expansion, types, and errors that name the dotted key."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]


def test_example_config_loads_and_documents_every_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMA_API_KEY", "ima_example_key_123456")
    config = load_config(ROOT / "config.example.yaml")
    assert config.ima.api_key == "ima_example_key_123456"
    assert config.jobs.poll_interval == 8 and config.jobs.max_wait == 2400
    # Every option of every section appears in the example (it is the documentation).
    text = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    from dataclasses import fields

    from bot.config import Config

    for section in fields(Config):
        assert f"\n{section.name}:" in text, section.name
        for option in fields(
            section.type if isinstance(section.type, type) else getattr(config, section.name)
        ):
            assert f"  {option.name}:" in text, f"{section.name}.{option.name}"


def test_env_expansion_quoted_unquoted_and_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMA_API_KEY", "ima_k_abcdef")
    monkeypatch.setenv("POLL", "3")
    path = tmp_path / "c.yaml"
    path.write_text(
        'ima:\n  api_key: "${IMA_API_KEY}"\njobs:\n  poll_interval: ${POLL}\n  max_wait: ${NOT_SET:-1200}\n',
        encoding="utf-8",
    )
    c = load_config(path)
    assert (c.ima.api_key, c.jobs.poll_interval, c.jobs.max_wait) == ("ima_k_abcdef", 3.0, 1200.0)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"jobs": {"poll_interval": "fast"}}, "jobs.poll_interval"),
        ({"jobs": {"max_wait": 9000}}, "jobs.max_wait"),
        ({"defaults": {"model": "kling"}}, "defaults.model"),
        ({"discord": {"enabled": True}}, "discord.token"),
        ({"feishu": {"transport": "smoke"}}, "feishu.transport"),
        ({"web": {"port": "x"}}, "web.port"),
        ({"ima": {"api_kee": "x"}}, "ima.api_kee"),
        ({"discord": {"upload_video": "yes"}}, "discord.upload_video"),
    ],
)
def test_errors_name_the_dotted_key(data: dict, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert info.value.key == key


def test_unset_variable_names_the_key_not_the_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SURELY_UNSET_VAR", raising=False)
    path = tmp_path / "c.yaml"
    path.write_text("discord:\n  token: ${SURELY_UNSET_VAR}\n", encoding="utf-8")
    with pytest.raises(
        ConfigError, match=r"discord\.token: environment variable SURELY_UNSET_VAR is not set"
    ):
        load_config(path)


def test_secrets_are_listed_for_redaction() -> None:
    c = parse_config({"ima": {"api_key": "ima_secret_1"}, "discord": {"token": "discord-token-xyz"}})
    assert set(c.secrets()) == {"ima_secret_1", "discord-token-xyz"}
