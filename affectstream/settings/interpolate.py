"""`${NAME}` and `${NAME:-default}` in setting values, from the environment."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class UnsetVariable(KeyError):
    """A `${NAME}` without a default names a variable that is not set; `name` says which, `path` where
    (`expand_tree`: the dotted path of the setting; "" from `expand`)."""

    def __init__(self, name: str, path: str = "") -> None:
        super().__init__(name)
        self.name = name
        self.path = path


def expand(text: str, fallbacks: Mapping[str, str] | None = None) -> str:
    """`text` with every `${NAME}` replaced by the variable's value, else its written default, else
    `fallbacks[NAME]`.

    Raises:
        UnsetVariable: A variable is not set and has neither a default nor a fallback.
    """

    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        if fallbacks and name in fallbacks:
            return fallbacks[name]
        raise UnsetVariable(name)

    return _VAR.sub(sub, text)


def expand_tree(value: Any, path: str = "") -> Any:
    """`expand` in every string of nested mappings and lists (a parsed YAML file).

    Raises:
        UnsetVariable: With the dotted `path` of the setting that names the unset variable.
    """
    if isinstance(value, str):
        try:
            return expand(value)
        except UnsetVariable as exc:
            raise UnsetVariable(exc.name, path) from None
    if isinstance(value, dict):
        return {k: expand_tree(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_tree(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return value
