"""The dataset registry: verified files, mirrors, and the errors a learner sees when things go wrong."""
import hashlib
import os
import zipfile

import pytest

from course_lib.core import data


def _register(monkeypatch, content: bytes, urls: tuple[str, ...], name="toy", file="toy.txt"):
    rf = data.RemoteFile(file, hashlib.sha256(content).hexdigest(), len(content), urls)
    monkeypatch.setitem(data.REGISTRY, name, data.Dataset(name, (rf,), license="test", source="test"))
    return rf


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("COURSE_DATA_MIRROR", raising=False)
    return tmp_path / "cache"


DEAD = "http://127.0.0.1:9/unreachable.txt"  # connection refused at once, no network needed


def test_good_file_from_mirror_folder_verifies(tmp_path, cache, monkeypatch):
    (tmp_path / "mirror" / "toy").mkdir(parents=True)
    (tmp_path / "mirror" / "toy" / "toy.txt").write_bytes(b"hello world\n")
    _register(monkeypatch, b"hello world\n", (DEAD,))
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(tmp_path / "mirror"))
    path = data.fetch("toy")
    assert path == cache / "toy" / "toy.txt"
    assert path.read_bytes() == b"hello world\n"


def test_relative_mirror_is_found_from_another_working_directory(tmp_path, cache, monkeypatch):
    # CI sets COURSE_DATA_MIRROR=../shared/datasets; kernels that nbgrader or papermill start run elsewhere
    root = tmp_path / "checkout" / "repo"
    (root.parent / "mirror" / "toy").mkdir(parents=True)
    (root.parent / "mirror" / "toy" / "toy.txt").write_bytes(b"relative")
    root.mkdir()
    (tmp_path / "elsewhere").mkdir()
    _register(monkeypatch, b"relative", (DEAD,))
    monkeypatch.setattr(data.paths, "ROOT", root)
    monkeypatch.setenv("COURSE_DATA_MIRROR", "../mirror")
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert data.fetch("toy").read_bytes() == b"relative"


def test_concurrent_fetches_of_one_file_all_succeed(tmp_path, cache, monkeypatch):
    # graded notebooks start together and fetch the same file: no download may clobber another's
    from concurrent.futures import ThreadPoolExecutor

    content = os.urandom(1 << 20)
    (tmp_path / "mirror" / "toy").mkdir(parents=True)
    (tmp_path / "mirror" / "toy" / "toy.txt").write_bytes(content)
    _register(monkeypatch, content, (DEAD,))
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(tmp_path / "mirror"))
    with ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(lambda _: data.fetch("toy"), range(8)))
    assert all(p.read_bytes() == content for p in paths)
    assert sorted(x.name for x in (cache / "toy").iterdir()) == ["toy.txt"]     # no partial files left behind


def test_concurrent_fetches_over_a_stale_cached_file_all_succeed(tmp_path, cache, monkeypatch):
    """Several processes find the same stale file and replace it at once: none may fail (on the old code 7 of
    32 processes died with FileNotFoundError, deleting the file under each other's feet)."""
    import subprocess
    import sys
    content = os.urandom(1 << 20)
    (tmp_path / "mirror" / "toy").mkdir(parents=True)
    (tmp_path / "mirror" / "toy" / "toy.txt").write_bytes(content)
    rf = _register(monkeypatch, content, (DEAD,))
    code = ("import sys; from course_lib.core import data; "
            f"data.REGISTRY['toy'] = data.Dataset('toy', (data.RemoteFile('toy.txt', {rf.sha256!r}, {rf.size}, "
            f"({DEAD!r},)),), license='t', source='t'); print(len(data.fetch('toy').read_bytes()))")
    env = {**os.environ, "COURSE_DATA_DIR": str(cache), "COURSE_DATA_MIRROR": str(tmp_path / "mirror")}
    for round_ in range(3):
        (cache / "toy").mkdir(parents=True, exist_ok=True)
        (cache / "toy" / "toy.txt").write_bytes(b"stale")                       # a wrong cached copy
        procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(6)]
        results = [p.communicate(timeout=120) for p in procs]
        assert all(p.returncode == 0 for p in procs), [err[-500:] for _, err in results if err]
        assert all(out.strip() == str(len(content)) for out, _ in results)
        assert (cache / "toy" / "toy.txt").read_bytes() == content


def test_cached_files_are_readable_by_others_and_orphans_are_swept(tmp_path, cache, monkeypatch):
    import time
    (tmp_path / "mirror" / "toy").mkdir(parents=True)
    (tmp_path / "mirror" / "toy" / "toy.txt").write_bytes(b"shared")
    _register(monkeypatch, b"shared", (DEAD,))
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(tmp_path / "mirror"))
    (cache / "toy").mkdir(parents=True)
    orphan, fresh = cache / "toy" / "toy.txt.killed.part", cache / "toy" / "toy.txt.running.part"
    orphan.write_bytes(b"half")
    fresh.write_bytes(b"half")
    old = time.time() - 2 * data.ORPHAN_AGE
    os.utime(orphan, (old, old))
    path = data.fetch("toy")
    assert path.stat().st_mode & 0o777 == 0o644
    assert not orphan.exists() and fresh.exists()          # a download still in progress is left alone


def test_mirror_as_file_url(tmp_path, cache, monkeypatch):
    (tmp_path / "m" / "toy").mkdir(parents=True)
    (tmp_path / "m" / "toy" / "toy.txt").write_bytes(b"abc")
    _register(monkeypatch, b"abc", (DEAD,))
    monkeypatch.setenv("COURSE_DATA_MIRROR", (tmp_path / "m").as_uri())
    assert data.fetch("toy").read_bytes() == b"abc"


def test_zip_member_url(tmp_path, cache, monkeypatch):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("inner/data.txt", "zipped text")
    _register(monkeypatch, b"zipped text", (f"{archive.as_uri()}#inner/data.txt",))
    assert data.fetch("toy").read_text() == "zipped text"


def test_corrupt_mirror_file_is_rejected_and_not_kept(tmp_path, cache, monkeypatch):
    (tmp_path / "mirror" / "toy").mkdir(parents=True)
    (tmp_path / "mirror" / "toy" / "toy.txt").write_bytes(b"tampered")
    rf = _register(monkeypatch, b"original", (DEAD,))
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(tmp_path / "mirror"))
    with pytest.raises(data.DataError) as err:
        data.fetch("toy")
    msg = str(err.value)
    assert f"expected sha256 {rf.sha256}" in msg and hashlib.sha256(b"tampered").hexdigest() in msg
    assert not (cache / "toy" / "toy.txt").exists()
    assert list((cache / "toy").iterdir()) == []  # no .part file left behind either


def test_corrupt_cached_file_is_replaced(tmp_path, cache, monkeypatch):
    (tmp_path / "mirror" / "toy").mkdir(parents=True)
    (tmp_path / "mirror" / "toy" / "toy.txt").write_bytes(b"good bytes")
    _register(monkeypatch, b"good bytes", (DEAD,))
    (cache / "toy").mkdir(parents=True)
    (cache / "toy" / "toy.txt").write_bytes(b"bad bytes!")  # same size, wrong content
    monkeypatch.setenv("COURSE_DATA_MIRROR", str(tmp_path / "mirror"))
    assert data.fetch("toy").read_bytes() == b"good bytes"


def test_offline_without_mirror_says_what_to_do(cache, monkeypatch):
    _register(monkeypatch, b"x", (DEAD, "http://127.0.0.1:9/fallback.txt"))
    with pytest.raises(data.DataError) as err:
        data.fetch("toy")
    msg = str(err.value)
    assert "toy/toy.txt" in msg
    assert DEAD in msg and "fallback.txt" in msg          # every URL tried is named
    assert "COURSE_DATA_MIRROR" in msg and "is not set" in msg
    assert not (cache / "toy" / "toy.txt").exists()


def test_unknown_dataset_and_file():
    with pytest.raises(KeyError, match="expected one of"):
        data.fetch("no-such-dataset")
    with pytest.raises(KeyError, match="has no file"):
        data.fetch("sst2", "nope.tsv")


def test_registry_is_complete():
    assert set(data.REGISTRY) == {"tinyshakespeare", "names", "eng-fra", "sst2", "wikitext-2"}
    for ds in data.REGISTRY.values():
        for f in ds.files:
            assert len(f.sha256) == 64 and f.size > 0 and f.urls, (ds.name, f.name)
        assert ds.license


@pytest.mark.skipif(not os.environ.get("COURSE_DATA_MIRROR"), reason="needs COURSE_DATA_MIRROR (CI sets it)")
def test_real_datasets_verify(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    for name in data.REGISTRY:
        for p in data.fetch_all(name):
            assert p.exists()
    names = data.load_names()
    assert len(names) == 20074 - 24 and len({lang for _, lang in names}) == 18
    assert len(data.load_sst2("dev")) == 872 and len(data.load_sst2("test")) == 1821
