"""Reading a CSV export as bytes: gzip detection, fingerprinting, header, blocks of whole lines.

Everything here works on raw bytes so that physical line numbers stay exact: a block always
ends at a line end, and the loader counts lines as ``\\n`` bytes (the last line may lack one).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ingestion.errors import ContrailError

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
READ_BYTES = 8 << 20
# A header line longer than this means the file is not a survey export.
MAX_HEADER_BYTES = 1 << 20


@dataclass(frozen=True)
class Fingerprint:
    """What the first pass over a file learns: identity and size in lines."""

    sha256: str
    file_bytes: int
    gzipped: bool
    rows_in_file: int  # physical lines after the header, blank lines included


def is_gzip(path: Path) -> bool:
    with path.open("rb") as raw:
        return raw.read(2) == GZIP_MAGIC


def _open(path: Path) -> tuple[BinaryIO, BinaryIO]:
    """(decompressed stream, raw file) for a plain or gzip file; close the first one."""
    raw = path.open("rb")
    if raw.read(2) == GZIP_MAGIC:
        raw.seek(0)
        return gzip.GzipFile(fileobj=raw, mode="rb"), raw  # type: ignore[return-value]
    raw.seek(0)
    return raw, raw


def check_file(path: Path) -> int:
    """The file's size in bytes, or a ContrailError if it is missing, a folder or empty."""
    if not path.exists():
        raise ContrailError(f"{path}: no such file")
    if not path.is_file():
        raise ContrailError(f"{path}: not a file")
    size = path.stat().st_size
    if size == 0:
        raise ContrailError(f"{path}: the file is empty; expected a header line and data rows")
    return size


def _gzip_error(path: Path, exc: Exception) -> ContrailError:
    return ContrailError(f"{path}: the gzip data is damaged or truncated ({exc}); re-export it")


def fingerprint(path: Path) -> Fingerprint:
    """First pass: sha256 of the bytes on disk, and the number of data lines inside."""
    size = check_file(path)
    digest = hashlib.sha256()
    newlines = 0
    last = b""
    stream, raw = _open(path)
    gzipped = stream is not raw
    try:
        if gzipped:
            with raw:
                inflate = zlib.decompressobj(wbits=47)  # gzip framing, multi-member aware below
                while chunk := raw.read(READ_BYTES):
                    digest.update(chunk)
                    while chunk:
                        out = inflate.decompress(chunk)
                        if out:
                            newlines += out.count(b"\n")
                            last = out[-1:]
                        chunk = inflate.unused_data
                        if chunk:
                            inflate = zlib.decompressobj(wbits=47)
                if not inflate.eof:
                    raise _gzip_error(path, EOFError("stream ends before the end marker"))
        else:
            with raw:
                while chunk := raw.read(READ_BYTES):
                    digest.update(chunk)
                    newlines += chunk.count(b"\n")
                    last = chunk[-1:]
    except zlib.error as exc:
        raise _gzip_error(path, exc) from exc
    lines = newlines + (1 if last not in (b"\n", b"") else 0)
    if lines == 0:
        raise ContrailError(f"{path}: the file is empty after decompression")
    return Fingerprint(digest.hexdigest(), size, gzipped, lines - 1)


def parse_header(line: bytes, source: str) -> tuple[list[str], bytes]:
    """Column names of the header line, and the line's bytes (BOM and CR removed)."""
    if line.startswith(UTF8_BOM):
        line = line[len(UTF8_BOM) :]
    line = line.rstrip(b"\r")
    if b"\x00" in line:
        raise ContrailError(
            f"{source} line 1: binary content (NUL bytes); this is not a CSV text file"
        )
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ContrailError(
            f"{source} line 1: the header is not UTF-8 text (byte 0x{line[exc.start]:02x} at "
            f"position {exc.start + 1}); this is not a CSV export, or it needs re-saving as UTF-8"
        ) from exc
    try:
        names = next(csv.reader([text]))
    except (csv.Error, StopIteration) as exc:
        raise ContrailError(f"{source} line 1: cannot read the header ({exc})") from exc
    return [name.strip() for name in names], line


class BlockReader:
    """Streams a file's data lines in blocks that end at line ends.

    ``header`` is read on construction; iterate for ``(block, first_line)`` pairs, where
    ``first_line`` is the 1-based physical line number of the block's first line.
    ``progress`` receives the number of file bytes (compressed, for gzip) consumed.
    """

    def __init__(
        self,
        path: Path,
        *,
        block_bytes: int = READ_BYTES,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.path = path
        self.block_bytes = block_bytes
        self._progress = progress
        self._stream, self._raw = _open(path)
        self._reported = 0
        self._carry = b""
        try:
            self.header_bytes = self._read_header()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._stream.close()
        self._raw.close()

    def __enter__(self) -> BlockReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self, size: int) -> bytes:
        try:
            data = self._stream.read(size)
        except (OSError, EOFError, zlib.error) as exc:
            raise _gzip_error(self.path, exc) from exc
        if self._progress is not None:
            position = self._raw.tell()
            if position > self._reported:
                self._progress(position - self._reported)
                self._reported = position
        return data

    def _read_header(self) -> bytes:
        buf = b""
        while True:
            cut = buf.find(b"\n")
            if cut >= 0:
                self._carry = buf[cut + 1 :]
                return buf[:cut]
            if len(buf) > MAX_HEADER_BYTES:
                raise ContrailError(
                    f"{self.path} line 1: no line end in the first {MAX_HEADER_BYTES:,} bytes; "
                    "this is not a CSV export"
                )
            data = self._read(64 << 10)
            if not data:
                self._carry = b""
                return buf
            buf += data

    def __iter__(self) -> Iterator[tuple[bytes, int]]:
        line = 2
        carry = self._carry
        self._carry = b""
        while True:
            data = self._read(self.block_bytes)
            if not data:
                if carry:
                    yield carry, line
                return
            buf = carry + data if carry else data
            cut = buf.rfind(b"\n")
            if cut < 0:
                carry = buf
                continue
            block, carry = buf[: cut + 1], buf[cut + 1 :]
            yield block, line
            line += block.count(b"\n")


def line_ends(arr: np.ndarray) -> np.ndarray:
    """Positions of every ``\\n`` byte in ``arr`` (uint8), found 8 bytes at a time."""
    eq = arr == 10
    pad = (-len(eq)) % 8
    if pad:
        eq = np.concatenate((eq, np.zeros(pad, dtype=bool)))
    words = np.flatnonzero(eq.view(np.uint64))
    rows, cols = np.nonzero(eq.reshape(-1, 8)[words])
    return words[rows] * 8 + cols
