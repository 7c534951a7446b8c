"""Settings on a real file in a temp dir, with real environment variables: an override
from the environment (or a flag) is used, shown as such, and never saved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synth_tui.app import SynthApp
from synth_tui.core.config import Settings, load_settings

from .waiting import notifications, until

ENV_OVERRIDES = {
    "SYNTH_TUI_DATA_DIR": ("data_dir", "/from/the/environment"),
    "SYNTH_TUI_BACKEND": ("backend", "hf"),
    "SYNTH_TUI_MODEL": ("backends.openai.model", "env-model"),
    "SYNTH_TUI_BASE_URL": ("backends.openai.base_url", "http://env.example/v1"),
}


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    """The settings file the autouse fixture points $SYNTH_TUI_CONFIG at."""
    path = tmp_path / "config" / "settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def test_saving_unchanged_settings_does_not_persist_the_data_dir_variable(settings_file, monkeypatch):
    monkeypatch.setenv("SYNTH_TUI_DATA_DIR", "/tmp/from-the-environment")
    settings = load_settings()
    assert settings.data_dir == "/tmp/from-the-environment"
    settings.save()
    assert "data_dir" not in json.loads(settings_file.read_text())
    assert settings.source("data_dir") == "environment"
    assert settings.overridden_by("data_dir") == "SYNTH_TUI_DATA_DIR"
    monkeypatch.delenv("SYNTH_TUI_DATA_DIR")
    later = load_settings()
    assert later.data_dir is None and later.source("data_dir") == "default"


def test_no_environment_override_lands_in_the_file_and_the_files_own_values_stay(settings_file, monkeypatch):
    settings_file.write_text(json.dumps({
        "backend": "openai", "data_dir": "/from/the/file", "concurrency": 3,
        "backends": {"openai": {"model": "file-model", "base_url": "http://file.example/v1"}},
        "a_key_from_a_newer_version": {"kept": True},
    }))
    monkeypatch.setenv("SYNTH_TUI_BACKEND", "openai")  # same backend: MODEL/BASE_URL apply to openai
    for var, (_, value) in ENV_OVERRIDES.items():
        if var != "SYNTH_TUI_BACKEND":
            monkeypatch.setenv(var, value)
    settings = load_settings()
    assert settings.for_backend("openai").model == "env-model"
    assert {settings.source(p) for _, (p, _) in ENV_OVERRIDES.items() if p != "backend"} == {"environment"}
    assert settings.source("model") == "environment"  # the default backend's
    assert settings.source("concurrency") == "file" and settings.source("keymap") == "default"
    settings.save()
    saved = json.loads(settings_file.read_text())
    assert saved["data_dir"] == "/from/the/file"
    assert saved["backends"]["openai"] == {"model": "file-model", "base_url": "http://file.example/v1"}
    assert saved["a_key_from_a_newer_version"] == {"kept": True}
    assert saved["backend"] == "openai" and saved["concurrency"] == 3


@pytest.mark.parametrize("var", sorted(ENV_OVERRIDES))
def test_each_environment_override_stays_out_of_a_fresh_file(settings_file, monkeypatch, var):
    path, value = ENV_OVERRIDES[var]
    monkeypatch.setenv(var, value)
    if var in ("SYNTH_TUI_MODEL", "SYNTH_TUI_BASE_URL"):
        monkeypatch.setenv("SYNTH_TUI_BACKEND", "openai")
    settings = load_settings()
    settings.save()
    assert value not in settings_file.read_text()
    assert settings.source(path) == "environment"


def test_a_value_changed_here_is_saved_even_over_an_override(settings_file, monkeypatch):
    monkeypatch.setenv("SYNTH_TUI_DATA_DIR", "/from/the/environment")
    settings = load_settings()
    settings.data_dir = "/chosen/on/the/screen"
    settings.concurrency = 8
    settings.for_backend("openai").model = "gpt-x"
    assert settings.source("data_dir") == "file"
    settings.save()
    assert json.loads(settings_file.read_text()) == {
        "data_dir": "/chosen/on/the/screen", "concurrency": 8, "backends": {"openai": {"model": "gpt-x"}},
    }
    monkeypatch.delenv("SYNTH_TUI_DATA_DIR")
    again = load_settings()
    assert again.data_dir == "/chosen/on/the/screen" and again.source("data_dir") == "file"


def test_a_flag_override_is_shown_and_never_saved(settings_file):
    settings_file.write_text(json.dumps({"data_dir": "/from/the/file"}))
    settings = load_settings()
    settings.override("data_dir", "/from/a/flag", by="--data-dir")
    assert settings.data_dir == "/from/a/flag"
    assert settings.source("data_dir") == "flag" and settings.overridden_by("data_dir") == "--data-dir"
    settings.save()
    assert json.loads(settings_file.read_text()) == {"data_dir": "/from/the/file"}


def test_save_keeps_what_another_process_saved_meanwhile(settings_file):
    first = load_settings()
    other = load_settings()
    other.concurrency = 12
    other.save()
    first.keymap = {"editor.generate": "ctrl+r"}
    first.save()
    assert json.loads(settings_file.read_text()) == {"concurrency": 12, "keymap": {"editor.generate": "ctrl+r"}}


def test_settings_built_in_code_save_what_differs_from_the_defaults(tmp_path):
    settings = Settings(backend="openai", path=tmp_path / "s.json")
    settings.backends["openai"].base_url = "http://127.0.0.1:1/v1"
    settings.save()
    assert json.loads((tmp_path / "s.json").read_text()) == {
        "backend": "openai", "backends": {"openai": {"base_url": "http://127.0.0.1:1/v1"}},
    }


async def test_saving_from_the_settings_screen_writes_no_environment_value(tmp_path, settings_file, monkeypatch):
    """Issue 12, item 1: F5, ctrl+s without changing anything, with overrides in the
    environment: the file gets none of them."""
    settings_file.write_text(json.dumps({"concurrency": 2}))
    env = {"SYNTH_TUI_DATA_DIR": str(tmp_path / "env-data"), "SYNTH_TUI_BACKEND": "openai",
           "SYNTH_TUI_MODEL": "env-model", "SYNTH_TUI_BASE_URL": "http://127.0.0.1:9/v1"}
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    app = SynthApp(blink=False)
    async with app.run_test(size=(100, 40), notifications=True) as pilot:
        await until(pilot, lambda: app.screen.id == "editor" and app.screen.is_mounted, "the editor")
        await pilot.press("f5")
        await until(pilot, lambda: app.screen.id == "settings" and app.screen.is_mounted, "the settings")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "Saved to" in notifications(app), "the settings to be saved")
    saved = settings_file.read_text()
    assert json.loads(saved) == {"concurrency": 2}
    assert not any(value in saved for value in env.values())
