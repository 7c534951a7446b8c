from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from synth_tui.core.backends.ollama import OllamaBackend
from synth_tui.core.backends.openai import OpenAIBackend
from synth_tui.core.engine import RunConfig
from synth_tui.core.schema import check_schema

from .fake_llm import FakeLLM

ROOT = Path(__file__).resolve().parent.parent

PERSON = {
    "name": {"type": "string"},
    "age": {"type": "integer", "minimum": 18, "maximum": 90},
    "email": {"type": "string", "format": "email"},
    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    "address": {"city": {"type": "string"}, "zip": {"type": "string", "required": False}},
}


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's settings or data, or a real key."""
    monkeypatch.setenv("SYNTH_TUI_CONFIG", str(tmp_path / "config" / "settings.json"))
    monkeypatch.setenv("SYNTH_TUI_DATA_DIR", str(tmp_path / "default-data"))
    for var in ("OPENAI_API_KEY", "HF_TOKEN", "SYNTH_TUI_BACKEND", "SYNTH_TUI_MODEL", "SYNTH_TUI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def llm() -> Iterator[FakeLLM]:
    server = FakeLLM().start()
    yield server
    server.stop()


@pytest.fixture
def person_schema():
    return check_schema(PERSON)


def fast_config(count: int, **kw: Any) -> RunConfig:
    """A run config whose retries wait milliseconds, not seconds."""
    kw.setdefault("retry_base", 0.01)
    kw.setdefault("retry_cap", 0.05)
    return RunConfig(count=count, **kw)


def openai_backend(server: FakeLLM, **kw: Any) -> OpenAIBackend:
    kw.setdefault("model", "test-model")
    return OpenAIBackend(base_url=server.url + "/v1", **kw)


def ollama_backend(server: FakeLLM, **kw: Any) -> OllamaBackend:
    kw.setdefault("model", "test-model")
    return OllamaBackend(base_url=server.url, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """The test server in its own process, for tests that kill the CLI."""

    def __init__(self, *args: str, program: Sequence[str] = ("-m", "tests.fake_llm")) -> None:
        """``program``: what Python runs (given ``--port N`` and ``args``), the test server unless said."""
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, *program, "--port", str(self.port), *args], cwd=ROOT, stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("test server did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def server_process() -> Iterator[ServerProcess]:
    srv = ServerProcess("--delay", "0.02")
    yield srv
    srv.stop()


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60, **kw: Any) -> subprocess.CompletedProcess:
    """Run the real CLI in a child process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "synth_tui", *args], cwd=ROOT, env=full_env, capture_output=True, text=True,
        timeout=timeout, **kw,
    )


def write_schema(tmp_path: Path, schema: dict[str, Any] | str = PERSON, name: str = "schema.json") -> Path:
    path = tmp_path / name
    path.write_text(schema if isinstance(schema, str) else json.dumps(schema))
    return path
