"""JSON lines: one estimate per line, for shell pipelines (`emolive stream --json | jq …`)."""
from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, TextIO

from emolive.engine.schema import to_json
from emolive.engine.sinks.base import Sink
from emolive.engine.sinks.lines import LineWriter


class JsonLinesSink(Sink):
    """Write each estimate as one JSON line and flush, so a reader sees it at once.

    Status payloads are not written: readers of this stream expect estimates only.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._out = LineWriter(stream if stream is not None else sys.stdout, "the JSON lines")

    def emit(self, estimate: Mapping[str, Any]) -> None:
        self._out.write([to_json(estimate)])

    def close(self) -> None:
        """Nothing to release: the stream belongs to the caller (usually stdout)."""
