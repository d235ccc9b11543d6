"""The config file: defaults, validation errors that name file, key and fix."""

from pathlib import Path

import pytest

from orchestrator import config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_example_config_loads_with_the_seed_budgets() -> None:
    cfg = config.load(Path(__file__).parent.parent / "deploy" / "config.example.toml", environ={})
    assert (cfg.max_turns, cfg.daily_sessions) == (30, 5)
    assert cfg.jobs["port_sheet_sync"].interval_seconds == 1800
    assert cfg.jobs["port_sheet_sync"].options["spreadsheet_id"] == "REPLACE-WITH-SPREADSHEET-ID"
    assert cfg.services[0].port == 8080
    assert cfg.listen_host_port == ("127.0.0.1", 9741)


def test_empty_file_gives_defaults_listening_on_loopback(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, ""), environ={})
    assert cfg.listen_address.startswith("127.0.0.1:")
    assert cfg.anthropic_base_url is None


def test_anthropic_base_url_is_taken_from_the_environment(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, ""), environ={"ANTHROPIC_BASE_URL": "http://127.0.0.1:1"})
    assert cfg.anthropic_base_url == "http://127.0.0.1:1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[orchestrator]\nmax_turns = 0", "orchestrator.max_turns: must be greater than 0, got 0"),
        ('[orchestrator]\nmax_turns = "30"', "orchestrator.max_turns: must be an integer"),
        ("[orchestrator]\nmax_turn = 30", "orchestrator.max_turn: unknown key; remove it"),
        ("[orchestrator]\ndaily_sessions = true", "orchestrator.daily_sessions: must be an integer"),
        ('[orchestrator]\nlisten_address = "9741"', "orchestrator.listen_address: '9741' is not"),
        ("[bogus]\n", "bogus: unknown section"),
        ("[jobs.port_sheet_sync]\ninterval_seconds = -1", "jobs.port_sheet_sync.interval_seconds"),
        ("[[services]]\nname = 'x'\nport = 70000", "services[0].port: 70000 is not a port"),
        ("[[services]]\nport = 80", "services[0].name: missing"),
        ("[orchestrator\n", "not valid TOML"),
    ],
)
def test_bad_config_names_file_key_and_fix(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(config.ConfigError) as excinfo:
        config.load(path, environ={})
    assert str(excinfo.value).startswith(f"{path}: ")
    assert message in str(excinfo.value)
    assert "; " in str(excinfo.value)


def test_missing_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="file not found; create it or pass --config"):
        config.load(tmp_path / "nope.toml", environ={})
