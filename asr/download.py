"""Resumable, verified downloads for recipes.

:func:`download` fetches ``name`` from the first mirror that answers, resuming a partial
``name.part`` with an HTTP ``Range`` request, retrying with backoff, and checks the size
and MD5 before the file takes its final name. A file that fails its check is deleted and
reported; nothing corrupt is ever left under the final name. A verified file gets a
``name.md5ok`` marker (size and mtime), so a rerun does not hash 30 GB again. Recipes call
:func:`download` (e.g. ``recipes/librispeech/local/resources.py``).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

log = logging.getLogger("asr.download")
CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A file that could not be downloaded or failed its check; the message says which."""


@dataclass(frozen=True)
class RemoteFile:
    """A file to fetch: its name under the mirror's base URL, MD5 and size in bytes (0: unknown)."""

    name: str
    md5: str
    size: int = 0


def md5sum(path: str | Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".md5ok")


def is_verified(path: Path, remote: RemoteFile) -> bool:
    """Whether ``path`` was verified against ``remote`` and has not changed since."""
    marker = _marker(path)
    if not (path.is_file() and marker.is_file()):
        return False
    stat = path.stat()
    try:
        seen = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return seen == {"md5": remote.md5, "size": stat.st_size, "mtime": stat.st_mtime}


def _fetch(url: str, part: Path, size: int, timeout: float, show: bool) -> None:
    """Append the rest of ``url`` to ``part`` (resuming where it stops)."""
    have = part.stat().st_size if part.exists() else 0
    if size and have == size:
        return
    if size and have > size:  # longer than the real file: start over
        part.unlink()
        have = 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # nothing left to fetch
            return
        raise
    with response:
        if have and response.status != 206:  # the server ignored the range: from the start
            have = 0
        mode = "ab" if have else "wb"
        total = size or (have + int(response.headers.get("Content-Length", 0))) or None
        with open(part, mode) as f, tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=part.stem,
                                         disable=not show, mininterval=2) as bar:  # fmt: skip
            while chunk := response.read(CHUNK):
                f.write(chunk)
                bar.update(len(chunk))


def download(
    mirrors: Sequence[str],
    remote: RemoteFile,
    dest: str | Path,
    retries: int = 5,
    timeout: float = 60.0,
    backoff: float = 2.0,
    show: bool = True,
) -> Path:
    """``dest/remote.name``, downloaded from ``mirror + remote.name`` and verified (see the
    module doc). Raises :class:`DownloadError` naming the file and the problem."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    final, part = dest / remote.name, dest / (remote.name + ".part")
    if is_verified(final, remote):
        return final
    if final.exists():  # there but never verified (e.g. copied in by hand): check it as a part
        final.replace(part)
    errors = []
    for attempt in range(retries):
        for base in mirrors:
            url = base.rstrip("/") + "/" + remote.name
            try:
                _fetch(url, part, remote.size, timeout, show)
                return _verify(part, final, remote, url)
            except (urllib.error.URLError, http.client.HTTPException, OSError) as e:  # a bad MD5 is final
                errors.append(f"{url}: {e}")
                log.warning("%s: %s (attempt %d of %d)", url, e, attempt + 1, retries)
        time.sleep(backoff * 2**attempt)
    raise DownloadError(f"{remote.name}: could not download after {retries} attempts: {errors[-1]}")


def _verify(part: Path, final: Path, remote: RemoteFile, url: str) -> Path:
    size = part.stat().st_size
    if remote.size and size != remote.size:
        raise _Incomplete(f"{url}: got {size} bytes of {remote.size}")
    digest = md5sum(part)
    if digest != remote.md5:
        part.unlink()
        raise DownloadError(f"{url}: MD5 {digest} does not match the expected {remote.md5}; the download was deleted")
    part.replace(final)
    stat = final.stat()
    _marker(final).write_text(json.dumps({"md5": remote.md5, "size": stat.st_size, "mtime": stat.st_mtime}))
    return final


class _Incomplete(OSError):
    """The connection ended early: retried (the next request resumes)."""
