"""A small, cached client for the package index: which releases exist, and what their files hold.

Hints and typo checks need facts the installer's message leaves out: whether a name exists at
all, which versions were released, the `Requires-Python` of each file, whether a source
distribution exists, and which modules a wheel ships. The simple API (PEP 691 JSON, PEP 503
HTML as fallback) answers the first four; the last is read from the wheel's zip central
directory with HTTP range requests, never the whole wheel.

Every look-up has a timeout and degrades: a network failure raises `IndexUnavailable`, which
callers turn into "unverified", never into a verdict. Answers are cached on disk: project pages
for a few minutes (releases appear), wheel file lists for good (files are immutable).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import time
import urllib.error
import urllib.parse
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

if TYPE_CHECKING:
    from urllib.request import Request

__all__ = [
    "DEFAULT_INDEX",
    "IndexUnavailable",
    "PackageIndex",
    "Project",
    "ReleaseFile",
    "index_urls_from_env",
]

DEFAULT_INDEX = "https://pypi.org/simple/"
_ACCEPT = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"
_PROJECT_TTL_S = 600.0
#: Cache folder of project pages; named anew when what a cached page holds changes
#: (upload times were added), so an older entry is never read as lacking them.
_PAGES = "project-v2"
_TIMEOUT_S = 15.0
#: How much of a wheel's tail one range request reads: the central directory usually fits.
_TAIL_BYTES = 256 * 1024
#: After a host fails to answer, look-ups to it fail at once for this long, so an offline
#: run costs one timeout, not one per cell and per name.
_BACKOFF_S = 60.0
_unreachable_since: dict[str, float] = {}


class IndexUnavailable(Exception):
    """The index could not answer (network, HTTP error other than 404, unreadable reply)."""


@dataclass(frozen=True)
class ReleaseFile:
    filename: str
    url: str
    version: Version
    requires_python: str
    yanked: bool
    #: When the file was uploaded (PEP 700 `upload-time`, ISO 8601); "" when the index omits it.
    upload_time: str = ""

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")

    def admits(self, python: Version) -> bool:
        """Whether this file's `Requires-Python` accepts `python` (an unreadable one does)."""
        try:
            return SpecifierSet(self.requires_python).contains(python, prereleases=True)
        except InvalidSpecifier:
            return True


@dataclass(frozen=True)
class Project:
    """One project's files on one or more indexes (the union)."""

    name: str
    files: tuple[ReleaseFile, ...]

    def versions(self) -> list[Version]:
        """Every released version with at least one non-yanked file, oldest first."""
        return sorted({f.version for f in self.files if not f.yanked})

    def files_of(self, version: Version) -> list[ReleaseFile]:
        return [f for f in self.files if f.version == version and not f.yanked]

    def release_date(self, version: Version) -> str:
        """`YYYY-MM-DD` of the first upload of `version` ("" when the index gives no times)."""
        times = sorted(f.upload_time for f in self.files if f.version == version and f.upload_time)
        return times[0][:10] if times else ""


def index_urls_from_env(env: dict[str, str] | None = None) -> list[str]:
    """The index the installers use: uv's or pip's setting if any, else PyPI."""
    env = dict(os.environ) if env is None else env
    for key in ("UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL"):
        if env.get(key):
            return [env[key]]
    return [DEFAULT_INDEX]


def _file_version(filename: str, project: str) -> Version | None:
    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)[1]
        if filename.endswith((".tar.gz", ".zip")):
            return parse_sdist_filename(filename)[1]
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        pass
    match = re.match(
        re.escape(project).replace(r"\-", "[-_.]") + r"-(.+?)\.(?:tar\.gz|tar\.bz2|zip|tgz)$",
        filename,
        re.IGNORECASE,
    )
    if match:
        try:
            return Version(match.group(1))
        except InvalidVersion:
            return None
    return None


class _Anchors(HTMLParser):
    """PEP 503 HTML: each `<a href data-requires-python data-yanked>` is a file."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.links.append(dict(attrs))


class PackageIndex:
    """Look-ups against `urls` (the primary index first, then extra ones), cached in `cache`."""

    def __init__(
        self,
        urls: list[str] | tuple[str, ...] | None = None,
        *,
        cache: Path | None = None,
        timeout: float = _TIMEOUT_S,
    ) -> None:
        self.urls = tuple(urls) if urls else tuple(index_urls_from_env())
        self.cache = cache
        self.timeout = timeout
        self._projects: dict[str, Project | None] = {}

    # -- project pages -------------------------------------------------------------------

    def project(self, name: str) -> Project | None:
        """The project's files on every index, or None when no index has the name."""
        key = canonicalize_name(name)
        if key not in self._projects:
            files: list[ReleaseFile] = []
            found = False
            for url in self.urls:
                page = self._page(url, key)
                if page is not None:
                    found = True
                    files.extend(page)
            self._projects[key] = Project(key, tuple(files)) if found else None
        return self._projects[key]

    def _page(self, index_url: str, name: str) -> list[ReleaseFile] | None:
        page_url = index_url.rstrip("/") + "/" + name + "/"
        cached = self._read_cache(_PAGES, page_url, ttl=_PROJECT_TTL_S)
        if cached is None:
            try:
                body, content_type, final_url = self._get(page_url, {"Accept": _ACCEPT})
            except _NotFound:
                self._write_cache(_PAGES, page_url, {"missing": True})
                return None
            cached = {"files": _parse_page(body, content_type, final_url, name)}
            self._write_cache(_PAGES, page_url, cached)
        if cached.get("missing"):
            return None
        files = []
        for entry in cached["files"]:
            version = _file_version(entry["filename"], name)
            if version is not None:
                files.append(
                    ReleaseFile(
                        filename=entry["filename"],
                        url=entry["url"],
                        version=version,
                        requires_python=entry.get("requires_python") or "",
                        yanked=bool(entry.get("yanked")),
                        upload_time=str(entry.get("upload_time") or ""),
                    )
                )
        return files

    # -- wheel contents ------------------------------------------------------------------

    def wheel_modules(self, wheel: ReleaseFile) -> frozenset[str]:
        """The importable module names a wheel ships (`numpy`, `numpy.exceptions`, ...).

        Read from the zip's central directory with range requests: a few hundred KiB, not
        the wheel.
        """
        cached = self._read_cache("wheel", wheel.url, ttl=None)
        if cached is None:
            names = _zip_names(self, wheel.url)
            cached = {"modules": sorted(_modules_of(names))}
            self._write_cache("wheel", wheel.url, cached)
        return frozenset(cached["modules"])

    # -- HTTP and cache ------------------------------------------------------------------

    def _get(self, url: str, headers: dict[str, str]) -> tuple[bytes, str, str]:
        from urllib.request import urlopen  # noqa: PLC0415 - http.client and ssl, when used

        try:
            with urlopen(  # noqa: S310 - _request allows http(s) only
                _request(url, headers), timeout=self.timeout
            ) as response:
                return (
                    response.read(),
                    response.headers.get("Content-Type", ""),
                    response.geturl(),
                )
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise _NotFound(url) from exc
            raise IndexUnavailable(f"{url}: HTTP {exc.code}") from exc
        except (OSError, ValueError) as exc:
            raise _down(url, exc) from exc

    def _range(self, url: str, spec: str) -> tuple[bytes, int]:
        """Bytes `spec` (`-N` or `A-B`) of `url` and the file's total size."""
        from urllib.request import urlopen  # noqa: PLC0415 - http.client and ssl, when used

        try:
            with urlopen(  # noqa: S310 - _request allows http(s) only
                _request(url, {"Range": f"bytes={spec}"}), timeout=self.timeout
            ) as response:
                if response.status != 206:  # the whole file is coming: never read a wheel
                    msg = f"{url}: the server ignores range requests"
                    raise IndexUnavailable(msg)
                data = response.read()
                total = response.headers.get("Content-Range", "").rpartition("/")[2]
                return data, int(total) if total.isdigit() else len(data)
        except urllib.error.HTTPError as exc:
            raise IndexUnavailable(f"{url}: HTTP {exc.code}") from exc
        except (OSError, ValueError) as exc:
            raise _down(url, exc) from exc

    def _cache_file(self, kind: str, url: str) -> Path | None:
        if self.cache is None:
            return None
        digest = hashlib.sha256(url.encode()).hexdigest()[:24]
        return self.cache / kind / f"{digest}.json"

    def _read_cache(self, kind: str, url: str, *, ttl: float | None) -> dict[str, Any] | None:
        path = self._cache_file(kind, url)
        if path is None:
            return None
        try:
            if ttl is not None and time.time() - path.stat().st_mtime > ttl:
                return None
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _write_cache(self, kind: str, url: str, data: dict[str, Any]) -> None:
        path = self._cache_file(kind, url)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data), encoding="utf-8")
            tmp.replace(path)
        except OSError:
            pass  # a cache that cannot be written only costs a later look-up


class _NotFound(Exception):
    pass


def _down(url: str, exc: Exception) -> IndexUnavailable:
    """Remember that `url`'s host did not answer; the error to raise."""
    _unreachable_since[urllib.parse.urlsplit(url).netloc] = time.monotonic()
    return IndexUnavailable(f"{url}: {exc}")


def _request(url: str, headers: dict[str, str]) -> Request:
    # urllib.request (with http.client, ssl and email) only when an index is asked: every
    # command imports this module, and `plan` or `report` never does.
    from urllib.request import Request  # noqa: PLC0415

    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        msg = f"{url}: only http(s) indexes are looked up"
        raise IndexUnavailable(msg)
    since = _unreachable_since.get(parts.netloc)
    if since is not None and time.monotonic() - since < _BACKOFF_S:
        msg = f"{parts.netloc} did not answer a moment ago"
        raise IndexUnavailable(msg)
    return Request(  # noqa: S310 - scheme checked above
        url, headers={"User-Agent": "compat-matrix", **headers}
    )


def _parse_page(body: bytes, content_type: str, base: str, name: str) -> list[dict[str, Any]]:
    text = body.decode("utf-8", "replace")
    if "json" in content_type:
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise IndexUnavailable(f"unreadable index page for {name}") from exc
        return [
            {
                "filename": str(f.get("filename", "")),
                "url": urllib.parse.urljoin(base, str(f.get("url", ""))),
                "requires_python": f.get("requires-python") or "",
                "yanked": bool(f.get("yanked")),
                "upload_time": str(f.get("upload-time") or ""),
            }
            for f in document.get("files", ())
            if isinstance(f, dict)
        ]
    parser = _Anchors()
    parser.feed(text)
    files = []
    for link in parser.links:
        href = link.get("href") or ""
        url = urllib.parse.urljoin(base, href).split("#", 1)[0]
        files.append(
            {
                "filename": urllib.parse.unquote(url.rsplit("/", 1)[-1]),
                "url": url,
                "requires_python": link.get("data-requires-python") or "",
                "yanked": "data-yanked" in link,
            }
        )
    return files


class _RangeFile(io.RawIOBase):
    """A seekable read-only view of a remote file, fetched in ranges (what zipfile needs)."""

    def __init__(self, index: PackageIndex, url: str) -> None:
        super().__init__()
        self._index = index
        self._url = url
        tail, self._size = index._range(url, f"-{_TAIL_BYTES}")
        self._chunks: dict[int, bytes] = {max(self._size - len(tail), 0): tail}
        self._pos = 0

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(base + offset, 0)
        return self._pos

    def read(self, size: int = -1) -> bytes:
        end = self._size if size < 0 else min(self._pos + size, self._size)
        if end <= self._pos:
            return b""
        for start, chunk in self._chunks.items():
            if start <= self._pos and end <= start + len(chunk):
                data = chunk[self._pos - start : end - start]
                self._pos = end
                return data
        data, _ = self._index._range(self._url, f"{self._pos}-{end - 1}")
        self._chunks[self._pos] = data
        self._pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _zip_names(index: PackageIndex, url: str) -> list[str]:
    try:
        with zipfile.ZipFile(_RangeFile(index, url)) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        if isinstance(exc, IndexUnavailable):
            raise
        raise IndexUnavailable(f"{url}: unreadable wheel ({exc})") from exc


_MODULE_FILE = re.compile(
    r"^(?P<path>[A-Za-z_][\w/]*?)(?:/__init__)?(?:\.py|\.pyi|\.[\w.-]+\.so|\.so|\.pyd)$"
)


def _modules_of(names: list[str]) -> set[str]:
    """Module names from a wheel's file list: files, and the package folders above them."""
    modules: set[str] = set()
    for name in names:
        if ".dist-info/" in name or ".data/" in name:
            continue
        match = _MODULE_FILE.match(name)
        if match:
            modules.add(match.group("path").replace("/", "."))
        parts = name.split("/")[:-1]
        for i in range(len(parts)):
            if not parts[i].isidentifier():
                break
            modules.add(".".join(parts[: i + 1]))
    return modules
