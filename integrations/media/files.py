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
from pathlib import Path

from contact_center.ports import StoredMedia

_KEY = re.compile(r"[0-9a-f]{64}")


class FileMediaStore:
    """``MediaStore`` on the local disk (one hub process, or several sharing a volume)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.folder / key[:2] / key, self.folder / key[:2] / f"{key}.json"

    async def put(self, data: bytes, content_type: str, name: str = "") -> StoredMedia:
        """Keep the bytes (atomically: a temporary file renamed into place)."""
        key = hashlib.sha256(data).hexdigest()
        stored = StoredMedia(key=key, content_type=content_type[:100], size=len(data), name=name[:200])
        await asyncio.to_thread(self._write, key, data, stored)
        return stored

    def _write(self, key: str, data: bytes, stored: StoredMedia) -> None:
        blob, meta = self._paths(key)
        blob.parent.mkdir(parents=True, exist_ok=True)
        for path, content in ((blob, data), (meta, json.dumps({"content_type": stored.content_type, "name": stored.name}).encode())):
            tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
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
