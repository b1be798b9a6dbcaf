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


# -- checked at load: whatever would fail at start fails here, naming the key --------------------------


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_unquoted_ratios_stay_ratios(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # YAML 1.1 reads 16:9 as the base-60 number 969; the config loader keeps it the string it looks like.
    assert load_config(_write(tmp_path, "defaults:\n  aspect_ratio: 16:9\n")).defaults.aspect_ratio == "16:9"
    assert load_config(_write(tmp_path, "defaults:\n  aspect_ratio: 9:16\n")).defaults.aspect_ratio == "9:16"
    monkeypatch.setenv("AR", "21:9")
    assert load_config(_write(tmp_path, "defaults:\n  aspect_ratio: ${AR}\n")).defaults.aspect_ratio == "21:9"
    # Numbers elsewhere are still numbers.
    assert load_config(_write(tmp_path, "jobs:\n  poll_interval: 1_0\n")).jobs.poll_interval == 10.0


def test_values_are_given_their_canonical_form(tmp_path: Path) -> None:
    c = parse_config(
        {
            "logging": {"level": "debug"},
            "defaults": {"model": "Ima Sevio 1.0", "resolution": "720p", "aspect_ratio": "16：9"},
            "store": {"path": "state/jobs.sqlite3"},
        },
        base=tmp_path,
    )
    assert (c.logging.level, c.defaults.model, c.defaults.resolution) == ("DEBUG", "ima-pro", "720P")
    assert c.defaults.aspect_ratio == "16:9"
    assert c.store.path == str(tmp_path / "state" / "jobs.sqlite3")  # relative to the config's folder


@pytest.mark.parametrize(
    ("text", "key", "says"),
    [
        ("logging:\n  level: LOUD\n", "logging.level", "DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("web:\n  port: 99999\n", "web.port", "at most 65535"),
        ("web:\n  port: -1\n", "web.port", "at least 0"),
        ("defaults:\n  aspect_ratio: 969\n", "defaults.aspect_ratio", '"16:9"'),
        ("defaults:\n  aspect_ratio: wide\n", "defaults.aspect_ratio", "in quotes"),
        ("defaults:\n  duration: 0\n", "defaults.duration", "at least 1"),
        ("defaults:\n  duration: 90\n", "defaults.duration", "at most 60"),
        ("defaults:\n  resolution: 8K\n", "defaults.resolution", "480P, 720P, 1080P, 4K"),
        ("defaults:\n  model: kling\n", "defaults.model", "ima-pro-fast"),
        ("defaults:\n  locale: fr\n", "defaults.locale", "en, zh"),
        ("jobs:\n  max_images: 20\n", "jobs.max_images", "at most 9"),
        ("jobs:\n  poll_interval: 0\n", "jobs.poll_interval", "greater than 0"),
        ("jobs:\n  per_user_concurrency: 0\n", "jobs.per_user_concurrency", "at least 1"),
        ("jobs:\n  max_image_mb: 0\n", "jobs.max_image_mb", "greater than 0"),
        ("ima:\n  base_url: api.imastudio.com\n", "ima.base_url", "http(s)://"),
        ("ima:\n  language: fr\n", "ima.language", "en, zh"),
        ("feishu:\n  domain: open.feishu.cn\n", "feishu.domain", "http(s)://"),
        ("store:\n  path: blocker/jobs.sqlite3\n", "store.path", "not a writable folder"),
        ("store:\n  path: .\n", "store.path", "is a folder"),
        ("logging:\n  file: blocker/bot.log\n", "logging.file", "not a writable folder"),
        ("ima:\n  catalog_ttl: -1\n", "ima.catalog_ttl", "at least 0"),
        ("jobs:\n  global_concurrency: 0\n", "jobs.global_concurrency", "at least 1"),
        ("jobs:\n  max_pending_per_user: 0\n", "jobs.max_pending_per_user", "at least 1"),
        ("jobs:\n  daily_credit_budget: -5\n", "jobs.daily_credit_budget", "at least 0"),
        ("jobs: 5\n", "jobs", "must be a mapping"),
        ("- a\n- b\n", "(root)", "must be a mapping"),
        ("ima:\n  api_key: [a, b]\n", "ima.api_key", "must be a single value"),
        ("jobs:\n  max_images: 2.5\n", "jobs.max_images", "whole number"),
    ],
)
def test_check_config_rejects_what_would_fail_at_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, key: str, says: str
) -> None:
    (tmp_path / "blocker").write_text("a file where a folder should be", encoding="utf-8")
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == key and says in info.value.problem
    from bot.__main__ import main

    assert main(["check-config", "--config", str(path)]) == 1
    assert capsys.readouterr().err.startswith(f"config error: {key}: ")


def test_the_example_keeps_state_beside_the_config_unless_docker_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IMABOT_STORE_PATH", raising=False)
    monkeypatch.delenv("IMABOT_WEB_HOST", raising=False)
    monkeypatch.setenv("IMA_API_KEY", "ima_example_key_123456")
    path = tmp_path / "config.yaml"
    path.write_text((ROOT / "config.example.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    c = load_config(path)
    assert c.store.path == str(tmp_path / ".imabot" / "imabot.sqlite3")  # never /data from a checkout
    assert c.web.host == "127.0.0.1"
    assert not (tmp_path / ".imabot").exists()  # checking creates nothing
    monkeypatch.setenv("IMABOT_STORE_PATH", str(tmp_path / "data" / "imabot.sqlite3"))  # as the image sets
    monkeypatch.setenv("IMABOT_WEB_HOST", "0.0.0.0")
    c = load_config(path)
    assert (c.store.path, c.web.host) == (str(tmp_path / "data" / "imabot.sqlite3"), "0.0.0.0")
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "IMABOT_STORE_PATH=/data/imabot.sqlite3" in dockerfile and "IMABOT_WEB_HOST=0.0.0.0" in dockerfile


def test_lists_and_optional_values(tmp_path: Path) -> None:
    c = load_config(
        _write(
            tmp_path,
            "discord:\n  guild_allowlist: 123\n  channel_allowlist: [1, 2]\ndefaults:\n  duration: ''\n",
        )
    )
    assert c.discord.guild_allowlist == ["123"] and c.discord.channel_allowlist == ["1", "2"]
    assert c.defaults.duration is None
    assert load_config(_write(tmp_path, "discord:\n  guild_allowlist: ''\n")).discord.guild_allowlist == []


# The documented ranges (config.example.yaml): lowest, highest (None = no bound), whether the lowest is refused.
RANGES = {
    "ima.catalog_ttl": (0, None, False),
    "jobs.global_concurrency": (1, None, False),
    "jobs.per_user_concurrency": (1, None, False),
    "jobs.max_pending_per_user": (1, None, False),
    "jobs.daily_credit_budget": (0, None, False),
    "jobs.poll_interval": (0, 600, True),
    "jobs.max_wait": (0, 2400, True),
    "jobs.progress_interval_pro": (0, None, True),
    "jobs.progress_interval_fast": (0, None, True),
    "jobs.history_min_samples": (1, None, False),
    "jobs.max_images": (1, 9, False),
    "jobs.max_image_mb": (0, None, True),
    "jobs.dedup_hours": (0, None, True),
    "defaults.duration": (1, 60, False),
    "discord.min_edit_interval": (0, None, False),
    "feishu.min_patch_interval": (0, None, False),
    "web.port": (0, 65535, False),
}


@pytest.mark.parametrize("key", sorted(RANGES))
def test_each_number_is_checked_at_its_bounds(key: str) -> None:
    low, high, open_low = RANGES[key]
    section, name = key.split(".")

    def build(value: float) -> None:
        parse_config({section: {name: value}})

    build(low + 1) if open_low else build(low)
    for bad in (low, low - 1) if open_low else (low - 1,):
        with pytest.raises(ConfigError) as info:
            build(bad)
        assert info.value.key == key
    if high is not None:
        build(high)
        with pytest.raises(ConfigError) as info:
            build(high + 1)
        assert info.value.key == key


@pytest.mark.parametrize(
    ("section", "name", "value"),
    [
        ("defaults", "resolution", "480p"),
        ("defaults", "resolution", "4k"),
        ("feishu", "transport", "webhook"),
        ("ima", "language", "ZH"),
        ("logging", "level", "critical"),
    ],
)
def test_every_offered_choice_is_accepted(section: str, name: str, value: str) -> None:
    got = getattr(getattr(parse_config({section: {name: value}}), section), name)
    assert got.lower() == value.lower()


def test_check_config_names_a_database_store_without_its_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMA_API_KEY", "ima_example_key_123456")
    url = "postgresql://bot:s3cret-pw@db.internal:5432/imabot"
    path = _write(tmp_path, f"ima:\n  api_key: ima_example_key_123456\nstore:\n  url: {url}\n")
    from bot.__main__ import main

    assert main(["check-config", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "store=postgresql://bot:***@db.internal:5432/imabot" in out and "s3cret" not in out
