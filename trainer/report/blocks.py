"""The pieces a report is made of, rendered by trainer.report.markdown and trainer.report.html."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Text:
    text: str  # plain text; `backticks` mark code


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Image:
    file: str  # relative to the report directory
    caption: str


Block = Heading | Text | Code | Table | Image
