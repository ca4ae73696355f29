"""Configs from parsed arguments: one rule, so no config is copied from argparse field by field."""
from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


def same_named(cls: type[T], args: argparse.Namespace, **derived: Any) -> T:
    """A dataclass from parsed arguments: each field from the argument of its name (lists become
    tuples), `derived` for fields whose argument says it another way (`--no-multitask`).

    A field without an argument of its name keeps its default, so one config serves commands
    that expose only some of its options.
    """
    values = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name) and f.name not in derived}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}, **derived)
