"""Reading the project's YAML files (campaigns, personas) with one clear error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_yaml(path: str | Path, error: type[ValueError], what: str) -> Any:
    """The parsed file, or ``error("<path>: cannot read <what>: <reason>")``."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise error(f"{path}: cannot read {what}: {exc}") from None
