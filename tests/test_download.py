"""The downloader, end to end against a real HTTP server on localhost (no internet needed)."""
from __future__ import annotations

import dataclasses
import io
import socket
import subprocess
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from brainlab import cache, catalogue
from brainlab.download import fetch_data, find_dataset_root, safe_extract
from brainlab.errors import DataNotFoundError, DownloadError, UnsafeArchiveError
from conftest import CLASS_NAMES, make_dataset


@pytest.fixture(scope="module")
def dataset_and_spec(tmp_path_factory):
    """A small dataset on disk and the spec (counts, checksums) that describes it."""
    root = make_dataset(tmp_path_factory.mktemp("source") / "data", per_class=2, size=32)
    files = catalogue.scan(root).files
    spec = catalogue.DatasetSpec(
        name="tiny-mri", title="tiny", class_names=CLASS_NAMES,
        counts={s: {c: 2 for c in CLASS_NAMES} for s in catalogue.SPLIT_FOLDERS},
        checksums={f.relpath: catalogue.sha256_of(f.path) for f in files},
    )
    return root, spec


def zip_of(root: Path, top="Brain-Tumor-Classification-DataSet-abc", extra=None, corrupt=None) -> bytes:
    """The dataset as GitHub serves it: one top folder holding Training/ and Testing/."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(root.rglob("*.jpg")):
            rel = path.relative_to(root).as_posix()
            content = path.read_bytes()
            if rel == corrupt:
                content = content[:-10] + b"0123456789"
            zf.writestr(f"{top}/{rel}", content)
        for name, content in (extra or {}).items():
            zf.writestr(name, content)
    return buf.getvalue()


class Server:
    """Serves ``routes`` (path -> bytes). ``cut`` paths send only half the body, then hang up."""

    def __init__(self):
        self.routes, self.cut, self.hits = {}, set(), []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits.append(self.path)
                body = server.routes.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path in server.cut:
                    server.cut.discard(self.path)  # only the first request is cut short
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".partial-" in p.name] if folder.exists() else []


def test_good_archive_is_downloaded_verified_and_reused(server, dataset_and_spec, tmp_path):
    root, spec = dataset_and_spec
    server.routes["/good.zip"] = zip_of(root)
    target = tmp_path / "datasets" / "tiny"
    got = fetch_data(target, spec=spec, sources=("github",), url=server.url + "/good.zip", progress=False)
    assert got == target and catalogue.verify(target, spec).ok
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*.jpg")) == sorted(spec.checksums)
    assert leftovers(target.parent) == []
    assert fetch_data(target, spec=spec, sources=("github",), url=server.url + "/good.zip") == target
    assert server.hits == ["/good.zip"]  # the complete copy was reused, not downloaded again


def test_interrupted_download_leaves_nothing_and_the_next_try_starts_clean(server, dataset_and_spec, tmp_path):
    root, spec = dataset_and_spec
    server.routes["/flaky.zip"] = zip_of(root)
    server.cut.add("/flaky.zip")
    target = tmp_path / "datasets" / "tiny"
    with pytest.raises(DataNotFoundError) as info:
        fetch_data(target, spec=spec, sources=("github",), url=server.url + "/flaky.zip", progress=False)
    message = str(info.value)
    assert "github" in message and "nothing was kept" in message and "BRAINLAB_DATA" in message
    assert not target.exists() and leftovers(target.parent) == []
    downloads = cache.cache_dir() / "downloads"
    assert not (downloads / "tiny-mri.zip").exists()  # no half file under the final name
    fetch_data(target, spec=spec, sources=("github",), url=server.url + "/flaky.zip", progress=False)
    assert catalogue.verify(target, spec).ok and server.hits == ["/flaky.zip", "/flaky.zip"]


def test_checksum_mismatch_is_refused_and_the_archive_dropped(server, dataset_and_spec, tmp_path):
    root, spec = dataset_and_spec
    bad_file = "Testing/no_tumor/img1.jpg"
    server.routes["/bad.zip"] = zip_of(root, corrupt=bad_file)
    target = tmp_path / "datasets" / "tiny"
    with pytest.raises(DataNotFoundError, match="checksum mismatch: " + bad_file):
        fetch_data(target, spec=spec, sources=("github",), url=server.url + "/bad.zip", progress=False)
    assert not target.exists() and leftovers(target.parent) == []
    assert not (cache.cache_dir() / "downloads" / "tiny-mri.zip").exists()


def test_archive_escaping_its_folder_is_refused(server, dataset_and_spec, tmp_path):
    root, spec = dataset_and_spec
    server.routes["/slip.zip"] = zip_of(root, extra={"../../evil.txt": b"gotcha"})
    target = tmp_path / "a" / "b" / "tiny"
    with pytest.raises(DataNotFoundError, match="would be written outside"):
        fetch_data(target, spec=spec, sources=("github",), url=server.url + "/slip.zip", progress=False)
    assert not list(tmp_path.rglob("evil.txt")) and not target.exists()


@pytest.mark.parametrize("entry", ["../evil.txt", "/etc/evil.txt", "ok/../../evil.txt", "C:/evil.txt"])
def test_safe_extract_checks_every_entry_before_writing(tmp_path, entry):
    archive = tmp_path / "x.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("fine.txt", b"fine")
        zf.writestr(entry, b"evil")
    with pytest.raises(UnsafeArchiveError, match="outside"):
        safe_extract(archive, tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "fine.txt").exists()  # nothing at all was written


def test_symlink_entries_are_refused(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(UnsafeArchiveError):
        safe_extract(archive, tmp_path / "out", progress=False)


def test_offline_gives_one_clear_message(dataset_and_spec, tmp_path):
    _, spec = dataset_and_spec
    with socket.socket() as s:  # a port on which nothing listens: like having no network
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/x.zip"
    with pytest.raises(DataNotFoundError) as info:
        fetch_data(tmp_path / "d", spec=spec, sources=("github",), url=dead, progress=False)
    assert "offline" in str(info.value) and "BRAINLAB_QUICK" in str(info.value)
    # the same through the command line: a message and exit status 1, never a traceback
    cmd = [sys.executable, "-m", "brainlab", "fetch-data", "--to", str(tmp_path / "d"), "--source", "github",
           "--url", dead]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "Could not download the dataset" in proc.stderr and "Traceback" not in proc.stderr


def test_existing_incomplete_folder_is_left_alone(dataset_and_spec, tmp_path):
    _, spec = dataset_and_spec
    target = make_dataset(tmp_path / "half", per_class=1, size=16)
    with pytest.raises(DownloadError, match="not a complete copy"):
        fetch_data(target, spec=spec, sources=("github",), url="http://127.0.0.1:9/none.zip")
    assert len(list(target.rglob("*.jpg"))) == 8  # untouched


def test_find_dataset_root_looks_one_or_two_levels_down(tmp_path):
    make_dataset(tmp_path / "x" / "y", per_class=1, size=16)
    assert find_dataset_root(tmp_path) == tmp_path / "x" / "y"
    with pytest.raises(DownloadError, match="Training and Testing"):
        find_dataset_root(tmp_path / "x" / "y" / "Training")


def test_kaggle_copy_is_verified_and_moved_into_place(dataset_and_spec, tmp_path, monkeypatch):
    """kagglehub hands back a folder in its own cache; brainlab verifies it and copies it into place."""
    import shutil

    import kagglehub

    root, spec = dataset_and_spec
    kaggle_cache = tmp_path / "kagglehub" / "datasets" / "versions" / "1"
    shutil.copytree(root, kaggle_cache / "data")
    spec = dataclasses.replace(spec, kaggle_handle="someone/tiny")
    asked = []
    monkeypatch.setattr(kagglehub, "dataset_download", lambda handle: asked.append(handle) or str(kaggle_cache))
    target = tmp_path / "datasets" / "tiny"
    assert fetch_data(target, spec=spec, sources=("kaggle",), progress=False) == target
    assert asked == ["someone/tiny"] and catalogue.verify(target, spec).ok
    assert (kaggle_cache / "data" / "Training").is_dir()  # kagglehub's own cache is left as it was


def test_failed_source_falls_back_to_the_next(server, dataset_and_spec, tmp_path, monkeypatch):
    import kagglehub

    root, spec = dataset_and_spec
    spec = dataclasses.replace(spec, kaggle_handle="someone/tiny")

    def no_kaggle(handle):
        raise ConnectionError("kaggle.com unreachable")

    monkeypatch.setattr(kagglehub, "dataset_download", no_kaggle)
    server.routes["/good.zip"] = zip_of(root)
    target = tmp_path / "datasets" / "tiny"
    assert fetch_data(target, spec=spec, url=server.url + "/good.zip", progress=False) == target
    assert catalogue.verify(target, spec).ok and server.hits == ["/good.zip"]


@pytest.fixture
def broken_kaggle_credentials(tmp_path, monkeypatch):
    """A kaggle.json that is not JSON, where kagglehub looks for it: kagglehub raises ValueError."""
    folder = tmp_path / "kaggle-config"
    folder.mkdir()
    (folder / "kaggle.json").write_text("{ this is not json")
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(folder))
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kagglehub-cache"))
    return folder / "kaggle.json"


@pytest.mark.parametrize("how", ["a handle kagglehub rejects", "a broken credentials file"])
def test_any_kaggle_failure_falls_back_to_the_archive(server, dataset_and_spec, tmp_path, capsys, how,
                                                     broken_kaggle_credentials):
    """kagglehub raises ValueError (not a network error) for both: the archive must still be tried."""
    root, spec = dataset_and_spec
    handle = "not-a-handle" if how.startswith("a handle") else "someone/tiny"
    if how.startswith("a handle"):
        broken_kaggle_credentials.unlink()  # no credentials at all: the handle alone is the problem
    spec = dataclasses.replace(spec, kaggle_handle=handle)
    server.routes["/good.zip"] = zip_of(root)
    target = tmp_path / "datasets" / "tiny"
    assert fetch_data(target, spec=spec, url=server.url + "/good.zip", progress=False) == target
    assert catalogue.verify(target, spec).ok and server.hits == ["/good.zip"]
    err = capsys.readouterr().err
    assert "brainlab: kaggle failed (ValueError: " in err and "trying github" in err
    assert ("Invalid dataset handle" if how.startswith("a handle") else "Invalid Kaggle credentials file") in err
    assert leftovers(target.parent) == []


def test_cli_reports_both_failures_without_a_traceback(server, dataset_and_spec, tmp_path, broken_kaggle_credentials):
    """`brainlab fetch-data` with a broken kaggle.json and an archive that does not verify: one message, exit 1."""
    root, _ = dataset_and_spec
    server.routes["/other.zip"] = zip_of(root)  # a real archive, but not of the dataset brainlab expects
    target = tmp_path / "d"
    cmd = [sys.executable, "-m", "brainlab", "fetch-data", "--to", str(target), "--url", server.url + "/other.zip"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert server.hits == ["/other.zip"]  # the fallback ran
    message = proc.stderr[proc.stderr.index("brainlab fetch-data: Could not download the dataset"):]
    assert "  - kaggle: ValueError: Invalid Kaggle credentials file" in message
    assert "  - github: DownloadError: the downloaded files do not match the dataset's checksums" in message
    assert "BRAINLAB_DATA" in message and not target.exists() and leftovers(tmp_path) == []


def test_unknown_source_is_refused_before_anything_is_tried(dataset_and_spec, tmp_path):
    _, spec = dataset_and_spec
    with pytest.raises(ValueError, match="unknown download source.*'ftp'"):
        fetch_data(tmp_path / "d", spec=spec, sources=("kaggle", "ftp"))
    assert not (tmp_path / "d").exists()
