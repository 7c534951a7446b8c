"""synth-tui: generate valid, varied synthetic datasets with LLMs."""

__version__ = "0.1.0"
