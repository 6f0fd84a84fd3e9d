"""Python source files, for both passes: reading one into text, or a clear reason why not
(reported as JD001); encoding text back like the original; writing a file atomically (`--fix`,
the cache)."""

from __future__ import annotations

import codecs
import io
import os
import re
import stat
import tokenize
from pathlib import Path

#: Files larger than this are not linted (generated code, data files named .py).
MAX_BYTES = 20 * 1024 * 1024


class SourceError(Exception):
    """The file can't be linted; the message says why, in the user's terms."""


def read_bytes(path: Path) -> bytes:
    try:
        st = os.stat(path)
    except OSError as e:
        raise SourceError(_os_message(e)) from None
    if stat.S_ISDIR(st.st_mode):
        raise SourceError("is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise SourceError("not a regular file (FIFO, socket or device): skipped")
    if st.st_size > MAX_BYTES:
        raise SourceError(f"file is larger than {MAX_BYTES // (1024 * 1024)} MiB: skipped")
    try:
        # O_NONBLOCK: a file swapped for a FIFO after the stat above must not block the run
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            return f.read()
    except OSError as e:
        raise SourceError(_os_message(e)) from None


def decode(data: bytes) -> str:
    """Bytes → text, honouring a BOM or PEP 263 coding cookie; binary and bad encodings fail."""
    if b"\x00" in data[:8192] or b"\x00" in data:
        raise SourceError("binary file (contains NUL bytes): not Python source")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as e:
        raise SourceError(f"bad encoding declaration: {e}") from None
    try:
        codecs.lookup(encoding)
        text = data.decode(encoding)
    except LookupError:
        raise SourceError(f"unknown encoding {encoding!r} in its coding declaration") from None
    except UnicodeDecodeError as e:
        raise SourceError(
            f"cannot decode as {encoding}: invalid byte 0x{data[e.start]:02x} at offset {e.start}"
        ) from None
    return text.removeprefix("\ufeff")


def read_text(path: Path) -> str:
    return decode(read_bytes(path))


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def split_lines(text: str) -> list[str]:
    """The lines of `text` without their line breaks, split where Python (and libcst's line
    numbers) split them: at `\\n`, `\\r\\n` and a lone `\\r`."""
    lines = _LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()  # the text ends with a line break
    return lines


def encode_like(text: str, original: bytes) -> bytes:
    """`text` in the original's encoding, with its BOM if it had one."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(original).readline)
        encoding = codecs.lookup(encoding).name
    except SyntaxError:
        encoding = "utf-8"
    if original.startswith(codecs.BOM_UTF8):
        return codecs.BOM_UTF8 + text.encode("utf-8")
    return text.encode("utf-8" if encoding == "utf-8-sig" else encoding)


def _os_message(e: OSError) -> str:
    reason = e.strerror or str(e)
    return f"cannot read file: {reason}"


def write_atomic(path: Path, data: bytes, *, keep_mode: bool = True, durable: bool = True) -> None:
    """Replace `path`'s content with `data` so that readers see the old or the new file, never a
    mix: a temporary file in the same directory, then `os.replace`. `keep_mode` keeps the
    existing file's permission bits; `durable` flushes to disk first (a user's source file, not
    a cache entry)."""
    import tempfile  # only when writing: a warm lint run never writes

    target = path.resolve()
    mode = stat.S_IMODE(os.stat(target).st_mode) if keep_mode else None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".jaxdoctor-tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
