"""`medcode data fetch` against an HTTP server on 127.0.0.1 serving files the tests write.

No test reaches beyond loopback: `socket.create_connection` refuses any other address for the whole module.
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from medcode.cli import main
from medcode.data.errors import InvalidInputError
from medcode.data.fetch import (
    Download,
    Expected,
    ExtractRule,
    FetchError,
    Source,
    download,
    fetch,
    load_sources,
)

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
BODY = b"id\tlabel\txrefs\n" + b"".join(
    f'"DOID:{i:07d}"\t"disease {i}"\t"ICD10CM:E{i % 90 + 10}.{i % 10}"\n'.encode() for i in range(3000)
)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.create_connection

    def guarded(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        if address[0] not in LOOPBACK:
            raise AssertionError(f"test tried to reach {address[0]}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@dataclass
class Server:
    files: dict[str, bytes] = field(default_factory=dict)
    truncate: set[str] = field(default_factory=set)  # send the full Content-Length, then half, then close
    fail: set[str] = field(default_factory=set)  # answer 500
    ignore_range: set[str] = field(default_factory=set)
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)
    base: str = ""

    def url(self, path: str) -> str:
        return f"{self.base}/{path}"


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.lstrip("/").split("?")[0]
            state.requests.append((path, self.headers.get("Range")))
            if path in state.fail:
                self.send_response(500)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if path not in state.files:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = state.files[path]
            start = 0
            wanted = self.headers.get("Range")
            if wanted and path not in state.ignore_range:
                start = int(wanted.removeprefix("bytes=").split("-")[0])
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            chunk = body[start:]
            self.send_header("Content-Length", str(len(chunk)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if path in state.truncate:
                self.wfile.write(chunk[: len(chunk) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(chunk)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=10) as c:
        yield c


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def plain(server: Server, name: str = "ICD10inDO.tsv", data: bytes = BODY, **over: Any) -> Download:
    server.files[name] = data
    fields: dict[str, Any] = {
        "url": server.url(name),
        "filename": name,
        "sha256": sha(data),
        "size": len(data),
        "to": f"disease-ontology/{name}",
    }
    fields.update(over)
    return Download(**fields)


def do_source(*downloads: Download) -> Source:
    return Source(
        name="disease-ontology",
        title="DO",
        licence="CC0 1.0",
        downloads=downloads,
        expect=tuple(Expected(d.to) for d in downloads if d.to),
    )


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def assert_fails_leaving_nothing(source: Source, root: Path, client: httpx.Client, match: str) -> None:
    """Fetching `source` into `root` raises FetchError matching `match`, and no file is left under `root`."""
    with pytest.raises(FetchError, match=match):
        fetch(source, root, client=client)
    assert files_under(root) == []


# ---------------------------------------------------------------------------------------------- downloads


def test_good_download_is_checked_and_placed(server: Server, client: httpx.Client, tmp_path: Path) -> None:
    result = fetch(do_source(plain(server)), tmp_path, client=client)
    assert result.placed == ["disease-ontology/ICD10inDO.tsv"]
    assert (tmp_path / "disease-ontology" / "ICD10inDO.tsv").read_bytes() == BODY
    assert files_under(tmp_path) == ["disease-ontology/ICD10inDO.tsv"]  # no .part, no staging left


def test_fetched_source_is_skipped_the_second_time(
    server: Server, client: httpx.Client, tmp_path: Path
) -> None:
    source = do_source(plain(server))
    fetch(source, tmp_path, client=client)
    server.requests.clear()
    assert fetch(source, tmp_path, client=client).skipped
    assert server.requests == []
    assert not fetch(source, tmp_path, client=client, force=True).skipped
    assert len(server.requests) == 1


def test_partial_download_resumes_with_a_range_request(
    server: Server, client: httpx.Client, tmp_path: Path
) -> None:
    item = plain(server)
    folder = tmp_path / ".downloads"
    folder.mkdir()
    (folder / "ICD10inDO.tsv.part").write_bytes(BODY[:1000])
    final = download("disease-ontology", item, folder, client=client)
    assert server.requests == [("ICD10inDO.tsv", "bytes=1000-")]
    assert final.read_bytes() == BODY
    assert not (folder / "ICD10inDO.tsv.part").exists()


def test_resume_starts_over_when_the_server_ignores_the_range(
    server: Server, client: httpx.Client, tmp_path: Path
) -> None:
    item = plain(server)
    server.ignore_range.add("ICD10inDO.tsv")
    folder = tmp_path / ".downloads"
    folder.mkdir()
    (folder / "ICD10inDO.tsv.part").write_bytes(BODY[:1000])
    assert download("disease-ontology", item, folder, client=client).read_bytes() == BODY


def test_complete_part_is_finished_without_downloading_again(
    server: Server, client: httpx.Client, tmp_path: Path
) -> None:
    item = plain(server, size=None)  # size unknown: the server's 416 total says the .part is whole
    folder = tmp_path / ".downloads"
    folder.mkdir()
    (folder / "ICD10inDO.tsv.part").write_bytes(BODY)
    assert download("disease-ontology", item, folder, client=client).read_bytes() == BODY
    assert server.requests == [("ICD10inDO.tsv", f"bytes={len(BODY)}-")]


def test_truncated_download_fails_and_keeps_only_the_part(
    server: Server, client: httpx.Client, tmp_path: Path
) -> None:
    source = do_source(plain(server))
    server.truncate.add("ICD10inDO.tsv")
    with pytest.raises(FetchError) as caught:
        fetch(source, tmp_path, client=client)
    message = str(caught.value)
    assert message.startswith("disease-ontology: ICD10inDO.tsv: download interrupted after")
    assert "run the command again to resume" in message and "\n" not in message
    assert not (tmp_path / "disease-ontology").exists()
    part = tmp_path / ".downloads" / "ICD10inDO.tsv.part"
    kept = part.read_bytes()
    assert 0 < len(kept) <= len(BODY) // 2 and BODY.startswith(kept)
    assert f"after {len(kept)} bytes" in message
    # the next run resumes where the first stopped and finishes the file
    server.truncate.clear()
    fetch(source, tmp_path, client=client)
    assert server.requests[-1] == ("ICD10inDO.tsv", f"bytes={len(kept)}-")
    assert (tmp_path / "disease-ontology" / "ICD10inDO.tsv").read_bytes() == BODY
    assert files_under(tmp_path) == ["disease-ontology/ICD10inDO.tsv"]


def test_wrong_checksum_fails_and_leaves_nothing(
    server: Server, client: httpx.Client, tmp_path: Path
) -> None:
    source = do_source(plain(server, sha256=sha(b"something else")))
    assert_fails_leaving_nothing(
        source, tmp_path, client, r"^disease-ontology: ICD10inDO.tsv: checksum mismatch"
    )


def test_wrong_size_fails_and_leaves_no_final_file(
    server: Server, client: httpx.Client, tmp_path: Path
) -> None:
    source = do_source(plain(server, size=len(BODY) + 10, sha256=None))
    with pytest.raises(FetchError, match=rf"got {len(BODY)} bytes, expected {len(BODY) + 10}"):
        fetch(source, tmp_path, client=client)
    assert not (tmp_path / "disease-ontology").exists()


def test_server_error_fails_with_the_status_and_writes_nothing(
    server: Server, client: httpx.Client, tmp_path: Path
) -> None:
    source = do_source(plain(server))
    server.fail.add("ICD10inDO.tsv")
    with pytest.raises(FetchError) as caught:
        fetch(source, tmp_path, client=client)
    assert str(caught.value) == (
        "disease-ontology: ICD10inDO.tsv: HTTP 500 Internal Server Error from 127.0.0.1"
    )
    assert files_under(tmp_path) == []


def test_one_failed_file_of_a_source_places_none_of_its_files(
    server: Server, client: httpx.Client, tmp_path: Path
) -> None:
    good = plain(server)
    bad = plain(server, "HumanDO.tsv", b"id\tlabel\n", sha256=sha(b"other"))
    assert_fails_leaving_nothing(do_source(good, bad), tmp_path, client, r"HumanDO\.tsv: checksum mismatch")


def test_existing_file_is_untouched_when_the_download_fails(
    server: Server, client: httpx.Client, tmp_path: Path
) -> None:
    (tmp_path / "disease-ontology").mkdir()
    (tmp_path / "disease-ontology" / "ICD10inDO.tsv").write_bytes(b"old release\n")
    server.truncate.add("ICD10inDO.tsv")
    with pytest.raises(FetchError):
        fetch(do_source(plain(server)), tmp_path, client=client, force=True)
    assert (tmp_path / "disease-ontology" / "ICD10inDO.tsv").read_bytes() == b"old release\n"


# ---------------------------------------------------------------------------------------------- archives


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


CODIESP_ZIP = {
    "final_dataset_v4_to_publish/train/trainD.tsv": b"S1-1\tn44.8\n",
    "final_dataset_v4_to_publish/train/text_files_en/S1-1.txt": b"A man with testicular swelling.\n",
    "final_dataset_v4_to_publish/dev/devD.tsv": b"S2-1\tr60.9\n",
    "final_dataset_v4_to_publish/dev/text_files_en/S2-1.txt": b"Oedema of both legs.\n",
    "final_dataset_v4_to_publish/../escape.txt": b"outside\n",
    "final_dataset_v4_to_publish/README.txt": b"readme\n",
}


def sources_file(tmp_path: Path, server: Server, *, member_sha: str | None = None) -> Path:
    """A source list in the packaged shape, with loopback URLs: a CodiEsp-like zip and the DO report."""
    server.files["codiesp.zip"] = zip_bytes(CODIESP_ZIP)
    server.files["ICD10inDO.tsv"] = BODY
    train_d = CODIESP_ZIP["final_dataset_v4_to_publish/train/trainD.tsv"]
    raw = {
        "sources": [
            {
                "name": "codiesp",
                "title": "CodiEsp",
                "licence": "CC BY 4.0",
                "provides": "codiesp",
                "downloads": [
                    {
                        "url": server.url("codiesp.zip") + "?download=1",
                        "filename": "codiesp.zip",
                        "sha256": None,
                        "size": None,
                        "archive": "zip",
                        "extract": [
                            {"member": "final_dataset_v4_to_publish/", "to": "codiesp", "tree": True}
                        ],
                    }
                ],
                "expect": [
                    {"path": "codiesp/train/text_files_en"},
                    {"path": "codiesp/train/trainD.tsv", "sha256": member_sha or sha(train_d)},
                ],
            },
            {
                "name": "disease-ontology",
                "title": "Human Disease Ontology",
                "licence": "CC0 1.0",
                "provides": "disease_ontology",
                "downloads": [
                    {
                        "url": server.url("ICD10inDO.tsv"),
                        "filename": "ICD10inDO.tsv",
                        "sha256": sha(BODY),
                        "size": len(BODY),
                        "to": "disease-ontology/ICD10inDO.tsv",
                    }
                ],
                "expect": [{"path": "disease-ontology/ICD10inDO.tsv"}],
            },
        ]
    }
    path = tmp_path / "sources.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path


def test_zip_tree_is_extracted_under_its_folder_without_traversal(
    server: Server, client: httpx.Client, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    source = load_sources(sources_file(tmp_path, server))["codiesp"]
    result = fetch(source, data, client=client)
    assert sorted(result.placed) == [
        "codiesp/README.txt",
        "codiesp/dev/devD.tsv",
        "codiesp/dev/text_files_en/S2-1.txt",
        "codiesp/train/text_files_en/S1-1.txt",
        "codiesp/train/trainD.tsv",
    ]
    assert files_under(data) == sorted(result.placed)  # archive and staging removed, nothing escaped
    assert not (tmp_path / "escape.txt").exists()


def test_extracted_file_with_a_wrong_checksum_places_nothing(
    server: Server, client: httpx.Client, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    source = load_sources(sources_file(tmp_path, server, member_sha="0" * 64))["codiesp"]
    assert_fails_leaving_nothing(
        source, data, client, r"^codiesp: codiesp/train/trainD.tsv: checksum mismatch$"
    )


def test_archive_that_does_not_open_is_a_clear_error(
    server: Server, client: httpx.Client, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    source = load_sources(sources_file(tmp_path, server))["codiesp"]
    server.files["codiesp.zip"] = b"<html>not a zip</html>"
    assert_fails_leaving_nothing(source, data, client, r"^codiesp: codiesp.zip: not a readable zip archive")


def test_file_rule_renames_the_one_member_it_matches(
    server: Server, client: httpx.Client, tmp_path: Path
) -> None:
    server.files["pcs.zip"] = zip_bytes(
        {"Zip File 2/icd10pcs_codes_2026.txt": b"0016070 Bypass\n", "readme.pdf": b"%PDF"}
    )
    item = Download(
        url=server.url("pcs.zip"),
        filename="pcs.zip",
        archive="zip",
        extract=(ExtractRule("icd10pcs?codes?2026.txt", "icd10pcs/icd10pcs-codes-2026.txt"),),
    )
    source = Source(
        "icd10pcs", "PCS", "public domain", (item,), (Expected("icd10pcs/icd10pcs-codes-2026.txt"),)
    )
    fetch(source, tmp_path, client=client)
    assert files_under(tmp_path) == ["icd10pcs/icd10pcs-codes-2026.txt"]
    assert (tmp_path / "icd10pcs" / "icd10pcs-codes-2026.txt").read_bytes() == b"0016070 Bypass\n"


def test_file_rule_matching_nothing_names_the_pattern(
    server: Server, client: httpx.Client, tmp_path: Path
) -> None:
    server.files["pcs.zip"] = zip_bytes({"readme.pdf": b"%PDF"})
    item = Download(
        url=server.url("pcs.zip"),
        filename="pcs.zip",
        archive="zip",
        extract=(ExtractRule("icd10pcs?codes?2026.txt", "icd10pcs/icd10pcs-codes-2026.txt"),),
    )
    source = Source("icd10pcs", "PCS", "public domain", (item,), ())
    assert_fails_leaving_nothing(
        source, tmp_path, client, r"^icd10pcs: pcs.zip: no member matches 'icd10pcs\?codes\?2026.txt'$"
    )


# ---------------------------------------------------------------------------------------------- source list


def test_packaged_source_list_names_every_public_source() -> None:
    sources = load_sources()
    assert set(sources) == {"codiesp", "icd10cm", "icd10pcs", "hcpcs", "disease-ontology"}
    assert {s.provides for s in sources.values()} == {
        "codiesp",
        "icd10cm_index",
        "icd10pcs",
        "hcpcs",
        "disease_ontology",
    }
    for source in sources.values():
        assert source.licence and source.expect
        for item in source.downloads:
            assert item.url.startswith("https://")
            assert item.sha256 is None or len(item.sha256) == 64


def test_source_list_with_a_path_outside_the_data_folder_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sources.json"
    raw = {
        "sources": [
            {"name": "x", "downloads": [{"url": "http://127.0.0.1/x", "filename": "x", "to": "../x"}]}
        ]
    }
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(InvalidInputError, match="not a relative path inside the data folder"):
        load_sources(path)


@pytest.mark.shared
def test_packaged_checksums_match_the_shared_copies(shared_data: Path) -> None:
    from medcode.data.fetch import sha256_of

    checked = 0
    for source in load_sources().values():
        for e in source.expect:
            path = shared_data / e.path
            if e.sha256 and path.is_file():
                assert sha256_of(path) == e.sha256, e.path
                checked += 1
        for item in source.downloads:
            if item.sha256 and item.to and (shared_data / item.to).is_file():
                assert sha256_of(shared_data / item.to) == item.sha256, item.to
                checked += 1
    assert checked >= 9


# ---------------------------------------------------------------------------------------------- CLI


def test_cli_fetch_then_check_says_nothing_fetched_is_missing(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    sources = sources_file(tmp_path, server)
    assert (
        main(["data", "fetch", "disease-ontology", "--data-dir", str(data), "--sources", str(sources)]) == 0
    )
    out = capsys.readouterr().out
    assert out.strip() == f"disease-ontology: 1 files under {data}"
    assert (data / "disease-ontology" / "ICD10inDO.tsv").read_bytes() == BODY
    assert (
        main(["data", "fetch", "disease-ontology", "--data-dir", str(data), "--sources", str(sources)]) == 0
    )
    assert "already there" in capsys.readouterr().out


def test_cli_fetch_failure_is_one_line_and_non_zero(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    sources = sources_file(tmp_path, server)
    server.fail.add("codiesp.zip")
    code = main(["data", "fetch", "--data-dir", str(data), "--sources", str(sources)])
    assert code == 1
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [
        "medcode: error: codiesp: codiesp.zip: HTTP 500 Internal Server Error from 127.0.0.1"
    ]
    # the other source still came down; nothing of the failed one is there
    assert "disease-ontology: 1 files" in captured.out
    assert files_under(data) == ["disease-ontology/ICD10inDO.tsv"]


def test_cli_fetch_unknown_source_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "fetch", "mtsamples", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("medcode: error: unknown source mtsamples; known sources: codiesp, icd10cm")


def test_cli_check_names_the_fetch_command_for_each_missing_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    do = tmp_path / "disease-ontology"
    do.mkdir()
    (do / "ICD10inDO.tsv").write_bytes(BODY)
    main(["data", "check", "--data-dir", str(tmp_path), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert "disease_ontology" in report["datasets"]
    assert [m["name"] for m in report["missing"]] == ["codiesp", "icd10cm", "icd10pcs", "hcpcs"]
    main(["data", "check", "--data-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "missing: hcpcs (HCPCS Level II" in out
    assert "get it with `medcode data fetch hcpcs`" in out
    assert "missing: disease-ontology" not in out


def test_unreachable_server_is_named_and_nothing_written(client: httpx.Client, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again at once: nothing listens there
    item = Download(url=f"http://127.0.0.1:{port}/x.tsv", filename="x.tsv", to="disease-ontology/x.tsv")
    source = Source("disease-ontology", "DO", "CC0 1.0", (item,), (Expected("disease-ontology/x.tsv"),))
    assert_fails_leaving_nothing(
        source, tmp_path, client, r"^disease-ontology: x\.tsv: cannot reach 127\.0\.0\.1 \("
    )


def test_tar_gz_tree_is_extracted(server: Server, client: httpx.Client, tmp_path: Path) -> None:
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        for name, data in {
            "subsets/a.obo": b"[Term]\n",
            "subsets/b.obo": b"[Term]\n",
            "other.txt": b"x",
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    server.files["do.tar.gz"] = buffer.getvalue()
    item = Download(
        url=server.url("do.tar.gz"),
        filename="do.tar.gz",
        archive="tar.gz",
        extract=(ExtractRule("subsets", "disease-ontology/subsets", tree=True),),
    )
    source = Source("disease-ontology", "DO", "CC0 1.0", (item,), (Expected("disease-ontology/subsets"),))
    fetch(source, tmp_path, client=client)
    assert files_under(tmp_path) == ["disease-ontology/subsets/a.obo", "disease-ontology/subsets/b.obo"]
