"""The pieces a report is made of, rendered by trainer.report.markdown and trainer.report.html.

Every string is escaped when a block is made: names, paths, class names and metrics come from
model bundles, which are untrusted, and a control character in them must not reach a terminal
that shows the Markdown (line breaks inside code blocks stay).
"""
from __future__ import annotations

from dataclasses import dataclass

from emolive.engine.schema import printable


def shown(text: str) -> str:
    """`text` with control characters escaped, line by line."""
    return "\n".join(printable(line) for line in str(text).split("\n"))


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", printable(str(self.text)))


@dataclass(frozen=True)
class Text:
    text: str  # plain text; `backticks` mark code

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", printable(str(self.text)))


@dataclass(frozen=True)
class Code:
    text: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", shown(self.text))


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]

    def __post_init__(self) -> None:
        object.__setattr__(self, "header", [printable(str(c)) for c in self.header])
        object.__setattr__(self, "rows", [[printable(str(c)) for c in row] for row in self.rows])


@dataclass(frozen=True)
class Image:
    file: str  # relative to the report directory
    caption: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "caption", printable(str(self.caption)))


Block = Heading | Text | Code | Table | Image
