"""JSON lines: one estimate per line, for shell pipelines (`emolive stream --json | jq …`)."""
from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, TextIO

from emolive.engine.schema import to_json
from emolive.engine.sinks.base import Sink, SinkError


class JsonLinesSink(Sink):
    """Write each estimate as one JSON line and flush, so a reader sees it at once.

    Status payloads are not written: readers of this stream expect estimates only.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout

    def emit(self, estimate: Mapping[str, Any]) -> None:
        try:
            self._stream.write(to_json(estimate) + "\n")
            self._stream.flush()
        except BrokenPipeError:
            raise SinkError("the JSON lines reader closed its end of the pipe") from None

    def close(self) -> None:
        """Nothing to release: the stream belongs to the caller (usually stdout)."""
