"""The Textual app."""


def run_app() -> int:
    print("The TUI is not built yet; use `synth-tui generate --help`.")
    return 0
