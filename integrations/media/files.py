"""The embedded media store: attachments as files under one folder, named by the SHA-256 of their bytes.

The same bytes give the same key (a repeated webhook stores nothing twice). A key is 64 hex digits;
anything else is refused before it reaches the file system. Each file has a small JSON sidecar with
its content type and name.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import threading
from pathlib import Path

from contact_center.ports import StoredMedia

_KEY = re.compile(r"[0-9a-f]{64}")


class FileMediaStore:
    """``MediaStore`` on the local disk (one hub process, or several sharing a volume)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._dirs: set[str] = set()  # the key prefixes whose folder exists (made once)

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.folder / key[:2] / key, self.folder / key[:2] / f"{key}.json"

    inline_limit = 256 * 1024  # files up to this size are written on the event loop (a page-cache write, tens of µs)

    async def put(self, data: bytes, content_type: str, name: str = "") -> StoredMedia:
        """Keep the bytes (atomically: a temporary file renamed into place).

        A small file is written at once on the calling thread: handing it to a worker thread cost more (two
        wake-ups and the GIL passed back and forth) than the write itself; a larger one goes to a thread."""
        key = hashlib.sha256(data).hexdigest()
        stored = StoredMedia(key=key, content_type=content_type[:100], size=len(data), name=name[:200])
        if len(data) <= self.inline_limit:
            self._write(key, data, stored)
        else:
            await asyncio.to_thread(self._write, key, data, stored)
        return stored

    def _write(self, key: str, data: bytes, stored: StoredMedia) -> None:
        blob, meta = self._paths(key)
        if key[:2] not in self._dirs:
            blob.parent.mkdir(parents=True, exist_ok=True)
            self._dirs.add(key[:2])
        try:  # the same key is the same bytes: a blob already in place is not written again
            same = blob.stat().st_size == len(data)
        except OSError:
            same = False
        items = [(meta, json.dumps({"content_type": stored.content_type, "name": stored.name}).encode())]
        if not same:
            items.insert(0, (blob, data))
        for path, content in items:
            tmp = path.with_suffix(path.suffix + f".{os.getpid()}.{threading.get_ident()}.tmp")
            try:
                tmp.write_bytes(content)
                os.replace(tmp, path)
            except FileNotFoundError:  # the folder was removed meanwhile: make it again, once
                self._dirs.discard(key[:2])
                blob.parent.mkdir(parents=True, exist_ok=True)
                tmp.write_bytes(content)
                os.replace(tmp, path)

    async def get(self, key: str) -> tuple[StoredMedia, bytes] | None:
        """The file with this key, or None (also for a key that is not 64 hex digits)."""
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            return None
        return await asyncio.to_thread(self._read, key)

    def _read(self, key: str) -> tuple[StoredMedia, bytes] | None:
        blob, meta = self._paths(key)
        try:
            data = blob.read_bytes()
            info = json.loads(meta.read_text())
        except (OSError, ValueError):
            return None
        return StoredMedia(key=key, content_type=str(info.get("content_type", "application/octet-stream")), size=len(data),
                           name=str(info.get("name", ""))), data
