"""Render the report's blocks as GitHub-flavoured Markdown (figures as relative links)."""
from __future__ import annotations

from pathlib import Path

from emolive.trainer.report.blocks import Block, Code, Heading, Image, Table, Text


def render_markdown(blocks: list[Block]) -> str:
    parts = []
    for b in blocks:
        if isinstance(b, Heading):
            parts.append(f"{'#' * b.level} {b.text}")
        elif isinstance(b, Text):
            parts.append(b.text)
        elif isinstance(b, Code):
            parts.append(f"```\n{b.text}\n```")
        elif isinstance(b, Table):
            lines = [_row(b.header), _row(["---"] * len(b.header))] + [_row(r) for r in b.rows]
            parts.append("\n".join(lines))
        elif isinstance(b, Image):
            parts.append(f"![{b.caption}]({b.file})")
    return "\n\n".join(parts) + "\n"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def write_markdown(blocks: list[Block], path: Path) -> Path:
    path.write_text(render_markdown(blocks))
    return path
