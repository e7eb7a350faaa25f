"""Reading a Triton model's `parameters { key: ... value: { string_value: ... } }` in `initialize`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def model_parameters(model_config: Mapping[str, Any]) -> dict[str, str]:
    """The config's parameters as a plain {key: string_value} dict."""
    return {k: v.get("string_value", "") for k, v in model_config.get("parameters", {}).items()}


def resolve_path(value: str, model_dir: str | Path) -> Path:
    """A path parameter: absolute as given, relative to the model repository root (the model folder's parent)."""
    path = Path(value)
    return path if path.is_absolute() else (Path(model_dir).parent / path).resolve()


def parse_config_parameters(config_path: str | Path) -> dict[str, str]:
    """The parameters of a config.pbtxt file on disk (tests, tools and the export read the served defaults)."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    config = text_format.Parse(Path(config_path).read_text(), model_config_pb2.ModelConfig())
    return {key: value.string_value for key, value in config.parameters.items()}
