"""Download the public datasets into a data folder: checksums, resume, nothing half-written.

The sources are data (`resources/sources.json`): for each, the URLs, their sha256 and size where known, the
archive type and which members go where under the data folder. A download streams into
`<data>/.downloads/<file>.part`; when a `.part` is there already it resumes with an HTTP Range request (or
starts over if the server ignores the range). A finished download is checked against its size and sha256,
then renamed; archives are extracted into a staging folder, the expected files are checked there, and only
then is each file moved into place with an atomic rename. A failure raises `FetchError`: one line naming
the source and the reason, no final file written.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import os
import shutil
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import IO, Any

import httpx

from medcode.data.errors import DatasetNotFoundError, InvalidInputError, MedcodeError

logger = logging.getLogger(__name__)

SOURCES_RESOURCE = "sources.json"
DOWNLOADS = ".downloads"
CHUNK = 1 << 16
ARCHIVES = ("file", "zip", "tar.gz")


class FetchError(MedcodeError):
    """A source could not be downloaded or placed; the message names the source and the reason."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


@dataclass(frozen=True)
class ExtractRule:
    """Members of an archive to place under the data folder.

    `tree`: every member under the folder `member` goes below `to`, keeping its relative path.
    Otherwise `member` is a file-name pattern (fnmatch, case-insensitive, matched against the member's
    base name wherever it sits) and the one member it matches is written to the file `to`.
    """

    member: str
    to: str
    tree: bool = False


@dataclass(frozen=True)
class Download:
    url: str
    filename: str
    archive: str = "file"
    sha256: str | None = None
    size: int | None = None
    to: str | None = None
    extract: tuple[ExtractRule, ...] = ()


@dataclass(frozen=True)
class Expected:
    """A path (file or folder) the source must leave under the data folder; a file's sha256/size if known."""

    path: str
    sha256: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class Source:
    name: str
    title: str
    licence: str
    downloads: tuple[Download, ...]
    expect: tuple[Expected, ...]
    provides: str = ""
    homepage: str = ""
    note: str = ""


@dataclass
class FetchResult:
    source: str
    skipped: bool = False
    placed: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- source list


def _relative(path: str, where: str) -> str:
    parts = PurePosixPath(path).parts
    if not parts or PurePosixPath(path).is_absolute() or ".." in parts:
        raise ValueError(f"{where}: {path!r} is not a relative path inside the data folder")
    return path


def _parse_source(raw: dict[str, Any]) -> Source:
    name = raw["name"]
    downloads = []
    for d in raw["downloads"]:
        archive = d.get("archive", "file")
        if archive not in ARCHIVES:
            raise ValueError(f"source {name}: unknown archive type {archive!r}")
        if archive == "file" and not d.get("to"):
            raise ValueError(f"source {name}: a plain file download needs 'to'")
        if archive != "file" and not d.get("extract"):
            raise ValueError(f"source {name}: an archive download needs 'extract' rules")
        rules = tuple(
            ExtractRule(r["member"], _relative(r["to"], name), bool(r.get("tree", False)))
            for r in d.get("extract", ())
        )
        downloads.append(
            Download(
                url=d["url"],
                filename=PurePosixPath(d["filename"]).name,
                archive=archive,
                sha256=(d.get("sha256") or None),
                size=d.get("size"),
                to=_relative(d["to"], name) if d.get("to") else None,
                extract=rules,
            )
        )
    expect = tuple(
        Expected(_relative(e["path"], name), e.get("sha256"), e.get("size")) for e in raw.get("expect", ())
    )
    return Source(
        name=name,
        title=raw.get("title", name),
        licence=raw.get("licence", ""),
        downloads=tuple(downloads),
        expect=expect,
        provides=raw.get("provides", ""),
        homepage=raw.get("homepage", ""),
        note=raw.get("note", ""),
    )


def load_sources(path: Path | None = None) -> dict[str, Source]:
    """The source list by name: the packaged `resources/sources.json`, or the file at `path`."""
    if path is None:
        text = (resources.files("medcode.data") / "resources" / SOURCES_RESOURCE).read_text(encoding="utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    where = path or SOURCES_RESOURCE
    try:
        sources = [_parse_source(s) for s in json.loads(text)["sources"]]
    except (KeyError, TypeError, ValueError) as exc:
        reason = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise InvalidInputError(f"{where}: not a valid source list ({reason})") from exc
    return {s.name: s for s in sources}


def select(sources: dict[str, Source], names: list[str]) -> list[Source]:
    """The named sources (all when `names` is empty); an unknown name is a DatasetNotFoundError."""
    if not names:
        return list(sources.values())
    unknown = [n for n in names if n not in sources]
    if unknown:
        raise DatasetNotFoundError(
            f"unknown source {', '.join(unknown)}; known sources: {', '.join(sources)}"
        )
    return [sources[n] for n in dict.fromkeys(names)]


def missing_paths(source: Source, data_dir: Path) -> list[str]:
    """The expected paths of `source` absent under `data_dir` (a folder must hold something)."""
    missing = []
    for e in source.expect:
        target = data_dir / e.path
        present = target.is_file() or (target.is_dir() and any(target.iterdir()))
        if not present:
            missing.append(e.path)
    return missing


def is_present(source: Source, data_dir: Path) -> bool:
    return not missing_paths(source, data_dir)


# ---------------------------------------------------------------------------------------------- download


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _host(url: str) -> str:
    return httpx.URL(url).host or url


def _progress_bar(total: int | None, initial: int, label: str, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=label)


def download(
    name: str,
    item: Download,
    folder: Path,
    *,
    client: httpx.Client,
    progress: bool = False,
) -> Path:
    """Download `item` into `folder/<filename>` (through `<filename>.part`, resumed when present), check
    its size and sha256, and return the final path. FetchError on any failure; the final file is only
    ever the complete, checked download."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / item.filename
    part = folder / (item.filename + ".part")
    if final.is_file() and _matches(final, item):
        return final
    final.unlink(missing_ok=True)
    digest = hashlib.sha256()
    have = 0
    if part.is_file():
        with part.open("rb") as handle:
            for block in iter(lambda: handle.read(CHUNK), b""):
                digest.update(block)
                have += len(block)
    if item.size is not None and have > item.size:
        part.unlink()
        digest, have = hashlib.sha256(), 0
    if item.size is None or have < item.size:
        digest, have = _stream(name, item, part, digest, have, client=client, progress=progress)
    if item.size is not None and have != item.size:
        raise FetchError(name, f"{item.filename}: got {have} bytes, expected {item.size}")
    got = digest.hexdigest()
    if item.sha256 is not None and got != item.sha256.lower():
        part.unlink(missing_ok=True)
        raise FetchError(
            name, f"{item.filename}: checksum mismatch (sha256 {got[:16]}…, expected {item.sha256[:16]}…)"
        )
    os.replace(part, final)
    logger.info("%s: downloaded %s (%d bytes, sha256 %s)", name, item.filename, have, got)
    return final


def _matches(path: Path, item: Download) -> bool:
    """A finished download already there counts only when its size and sha256 are known and match."""
    if item.sha256 is None:
        return False
    if item.size is not None and path.stat().st_size != item.size:
        return False
    return sha256_of(path) == item.sha256.lower()


def _stream(
    name: str,
    item: Download,
    part: Path,
    digest: Any,
    have: int,
    *,
    client: httpx.Client,
    progress: bool,
) -> tuple[Any, int]:
    headers = {"Range": f"bytes={have}-"} if have else {}
    started = False
    try:
        with client.stream("GET", item.url, headers=headers) as response:
            started = True
            if response.status_code == 416 and have:
                # The range starts at or past the end: the .part is complete when the server's total is
                # its size; otherwise it is stale and the download starts over.
                total = response.headers.get("content-range", "").rpartition("/")[2]
                if total.isdigit() and int(total) == have:
                    return digest, have
                response.close()
                part.unlink(missing_ok=True)
                return _stream(name, item, part, hashlib.sha256(), 0, client=client, progress=progress)
            if response.status_code >= 400:
                reason = response.reason_phrase or "error"
                raise FetchError(
                    name, f"{item.filename}: HTTP {response.status_code} {reason} from {_host(item.url)}"
                )
            if have and response.status_code != 206:
                logger.info("%s: server ignored the range request; starting %s over", name, item.filename)
                digest, have = hashlib.sha256(), 0
            elif have and not _range_starts_at(response.headers.get("content-range", ""), have):
                digest, have = hashlib.sha256(), 0
            length = response.headers.get("content-length")
            total = (have + int(length)) if length and length.isdigit() else item.size
            mode = "ab" if have else "wb"
            bar = _progress_bar(total, have, f"{name}: {item.filename}", progress)
            try:
                with part.open(mode) as handle:
                    for block in response.iter_bytes(CHUNK):
                        handle.write(block)
                        digest.update(block)
                        have += len(block)
                        if bar is not None:
                            bar.update(len(block))
            finally:
                if bar is not None:
                    bar.close()
    except httpx.HTTPError as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        if not started:
            raise FetchError(name, f"{item.filename}: cannot reach {_host(item.url)} ({detail})") from exc
        raise FetchError(
            name,
            f"{item.filename}: download interrupted after {have} bytes from {_host(item.url)} "
            f"({detail}); run the command again to resume",
        ) from exc
    return digest, have


def _range_starts_at(content_range: str, start: int) -> bool:
    """Whether a 'bytes START-END/TOTAL' header starts where the .part ends."""
    unit, _, spec = content_range.partition(" ")
    first = spec.partition("-")[0]
    return unit == "bytes" and first.isdigit() and int(first) == start


# ---------------------------------------------------------------------------------------------- extract


def _safe_member(name: str) -> PurePosixPath | None:
    """A member path without traversal (None for names to skip: absolute, '..', empty)."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or not path.parts:
        return None
    return path


def _members(archive: Path, kind: str) -> Iterator[tuple[PurePosixPath, Callable[[], IO[bytes]]]]:
    """(member path, opener) for every regular file in a zip or tar.gz archive."""
    if kind == "zip":
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                path = _safe_member(info.filename)
                if path is not None and not info.is_dir():
                    yield path, (lambda info=info: zf.open(info))  # type: ignore[misc]
    else:
        with tarfile.open(archive, "r:gz") as tf:
            for member in tf:
                path = _safe_member(member.name)
                if path is not None and member.isfile():
                    yield path, (lambda member=member: tf.extractfile(member))  # type: ignore[misc, return-value]


def extract(name: str, item: Download, archive: Path, staging: Path) -> list[str]:
    """Write the members the rules name into `staging` (paths relative to the data folder); returns them.
    A rule that matches nothing, or a file rule matching more than one member, is a FetchError."""
    placed: list[str] = []
    matched = {rule: 0 for rule in item.extract}
    try:
        for path, opener in _members(archive, item.archive):
            for rule in item.extract:
                target = _target(rule, path)
                if target is None:
                    continue
                matched[rule] += 1
                if matched[rule] > 1 and not rule.tree:
                    raise FetchError(name, f"{item.filename}: more than one member matches {rule.member!r}")
                out = staging / target
                out.parent.mkdir(parents=True, exist_ok=True)
                with opener() as src, out.open("wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK)
                placed.append(target)
                break
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise FetchError(name, f"{item.filename}: not a readable {item.archive} archive ({exc})") from exc
    for rule, count in matched.items():
        if count == 0:
            raise FetchError(name, f"{item.filename}: no member matches {rule.member!r}")
    return placed


def _target(rule: ExtractRule, path: PurePosixPath) -> str | None:
    if rule.tree:
        prefix = PurePosixPath(rule.member.strip("/")) if rule.member.strip("/") else PurePosixPath()
        n = len(prefix.parts)
        if tuple(path.parts[:n]) != prefix.parts or len(path.parts) <= n:
            return None
        return str(PurePosixPath(rule.to, *path.parts[n:]))
    if fnmatch.fnmatch(path.name.lower(), rule.member.lower()):
        return rule.to
    return None


# ---------------------------------------------------------------------------------------------- fetch


def _check_expected(name: str, root: Path, expect: tuple[Expected, ...]) -> None:
    for e in expect:
        path = root / e.path
        if not (path.is_file() or (path.is_dir() and any(path.iterdir()))):
            raise FetchError(name, f"{e.path} is not in the download")
        if e.size is not None and path.is_file() and path.stat().st_size != e.size:
            raise FetchError(name, f"{e.path}: {path.stat().st_size} bytes, expected {e.size}")
        if e.sha256 is not None and path.is_file() and sha256_of(path) != e.sha256.lower():
            raise FetchError(name, f"{e.path}: checksum mismatch")


def fetch(
    source: Source,
    data_dir: Path,
    *,
    client: httpx.Client | None = None,
    progress: bool = False,
    force: bool = False,
) -> FetchResult:
    """Download `source` into `data_dir` unless its expected files are all there (`force`: anyway).

    Every download is complete and checked, and every extracted file is checked, before any file is moved
    into place; each move is an atomic rename. The archives and staging folder are removed afterwards;
    an interrupted download's `.part` stays for the next run to resume.
    """
    if not force and source.expect and is_present(source, data_dir):
        return FetchResult(source.name, skipped=True)
    own_client = client is None
    if client is None:
        client = httpx.Client(follow_redirects=True, timeout=httpx.Timeout(60.0, connect=20.0))
    downloads = data_dir / DOWNLOADS
    staging = downloads / f"{source.name}.staging"
    archives: list[Path] = []
    try:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        placed: list[str] = []
        for item in source.downloads:
            path = download(source.name, item, downloads, client=client, progress=progress)
            archives.append(path)
            if item.archive == "file":
                assert item.to is not None
                out = staging / item.to
                out.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, out)
                placed.append(item.to)
            else:
                placed.extend(extract(source.name, item, path, staging))
        _check_expected(source.name, staging, source.expect)
        for rel in placed:
            dest = data_dir / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, dest)
        logger.info("%s: %d files placed under %s", source.name, len(placed), data_dir)
        return FetchResult(source.name, placed=placed)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        for path in archives:
            path.unlink(missing_ok=True)
        if downloads.is_dir() and not any(downloads.iterdir()):
            downloads.rmdir()
        if own_client:
            client.close()
