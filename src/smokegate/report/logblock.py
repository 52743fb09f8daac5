"""The JSON report as a block of lines at the end of a log, so a run inside a pod can hand its
report to ``smokegate run --in-cluster`` through the one channel every pod has: its log.

    === smokegate report v1 begin: 48213 bytes, gzip+base64, sha256 9f2c… ===
    H4sIAAAAAAAC/+1dW3PbOJZ…            (76 characters a line)
    === smokegate report v1 end ===

Why the log and not the container's termination message: a termination message holds at most
4 KiB (and 12 KiB for all containers of a pod), while a report with Helm test logs can be
megabytes. The log holds anything up to the container runtime's log file size (the kubelet's
``containerLogMaxSize``, 10 MiB by default); the block comes last, so rotation of a long log
loses the console lines first, never the report. gzip shrinks a report about tenfold; base64
keeps every line short and plain ASCII, which survives any log pipeline (the CRI splits lines
longer than 16 KiB). The checksum is the uncompressed JSON's: a truncated or mixed-up block is
refused, never half-read.

``LogBlockReader`` sorts a log's lines into console text and the block; a line of other output
(stderr interleaved by the runtime) inside the block is passed through as console text.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
import zlib

BEGIN = "=== smokegate report v1 begin: {size} bytes, gzip+base64, sha256 {digest} ==="
END = "=== smokegate report v1 end ==="
LINE = 76
MAX_REPORT_BYTES = 256 * 1024 * 1024
"""A block claiming a larger report (or inflating past it) is refused: no gzip bomb."""

_BEGIN_RE = re.compile(
    r"^=== smokegate report v1 begin: (\d+) bytes, gzip\+base64, sha256 ([0-9a-f]{64}) ===$"
)
_BASE64_RE = re.compile(r"^[A-Za-z0-9+/]+=*$")


class LogBlockError(ValueError):
    """The block is incomplete, corrupt or too large; the message says which."""


def encode(report_json: str) -> str:
    """The block (ending in a newline) for ``report_json``."""
    data = report_json.encode("utf-8")
    # mtime=0: the same report gives the same block.
    packed = base64.b64encode(gzip.compress(data, compresslevel=6, mtime=0)).decode("ascii")
    lines = [BEGIN.format(size=len(data), digest=hashlib.sha256(data).hexdigest())]
    lines += [packed[i : i + LINE] for i in range(0, len(packed), LINE)]
    lines.append(END)
    return "\n".join(lines) + "\n"


class LogBlockReader:
    """Feed a log line by line (``feed`` returns the line when it is console text, None when
    it belongs to the block); then ``complete`` and ``report_json()``."""

    def __init__(self) -> None:
        self._size: int | None = None
        self._digest = ""
        self._chunks: list[str] = []
        self._inside = False
        self.complete = False
        self.begun = False

    def feed(self, line: str) -> str | None:
        text = line.rstrip("\r\n")
        if not self._inside:
            match = _BEGIN_RE.match(text)
            if match is None:
                return line
            # A second block (a retried run in the same log) replaces the first.
            self._size, self._digest = int(match.group(1)), match.group(2)
            self._chunks, self._inside, self.complete, self.begun = [], True, False, True
            return None
        if text == END:
            self._inside = False
            self.complete = True
            return None
        if _BASE64_RE.match(text):
            self._chunks.append(text)
            return None
        return line

    def report_json(self) -> str:
        """The report's JSON text; ``LogBlockError`` when there is none or it is damaged."""
        if not self.begun:
            raise LogBlockError("the log has no report block")
        if not self.complete:
            raise LogBlockError("the log's report block is cut off (no end line)")
        assert self._size is not None
        if self._size > MAX_REPORT_BYTES:
            raise LogBlockError(f"the report claims {self._size} bytes: over the limit")
        try:
            packed = base64.b64decode("".join(self._chunks), validate=True)
            inflater = zlib.decompressobj(wbits=31)  # gzip framing
            data = inflater.decompress(packed, MAX_REPORT_BYTES + 1)
        except (ValueError, zlib.error) as exc:
            raise LogBlockError(f"the report block is corrupt: {exc}") from None
        if len(data) != self._size or hashlib.sha256(data).hexdigest() != self._digest:
            raise LogBlockError(
                f"the report block does not match its checksum ({len(data)} of "
                f"{self._size} bytes): lines are missing or mixed up"
            )
        return data.decode("utf-8")


def extract(log: str) -> tuple[str, str]:
    """``(console text, report JSON)`` from a whole log; ``LogBlockError`` without a report."""
    reader = LogBlockReader()
    console = [kept for line in log.splitlines(keepends=True) if (kept := reader.feed(line))]
    return "".join(console), reader.report_json()
