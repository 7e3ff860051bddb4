"""Datasets: a registry of real public files, fetched once, verified by sha256, cached under `datasets/`.

Where a file comes from, in order:
  1. the cache (`COURSE_DATA_DIR`, default `<repo>/datasets/<dataset>/<file>`), if its checksum is right;
  2. `COURSE_DATA_MIRROR`: a folder or URL laid out `<dataset>/<file>` (CI and offline machines);
  3. the upstream URL, then the fallback URL (a plain file, or a member of a zip archive: `url#member`).
A download goes to a `.part` file and is renamed only after its checksum matches, so a cut download never
passes for a complete one; a file with the wrong checksum is deleted, never used.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from . import paths
from .checks import real
from .progress import progress_enabled, tqdm

MIRROR_ENV = "COURSE_DATA_MIRROR"


class DataError(RuntimeError):
    """A dataset file could not be obtained (no source worked)."""


class ChecksumError(DataError):
    """A file's sha256 is not the registered one."""


@dataclass(frozen=True)
class RemoteFile:
    name: str                 # file name inside the dataset folder
    sha256: str
    size: int
    urls: tuple[str, ...]     # upstream first, then fallbacks; "archive-url#member" for a zip member


@dataclass(frozen=True)
class Dataset:
    name: str
    files: tuple[RemoteFile, ...]
    license: str
    source: str
    description: str = ""
    extra: dict = field(default_factory=dict)

    def file(self, name: str) -> RemoteFile:
        for f in self.files:
            if f.name == name:
                return f
        raise KeyError(f"dataset {self.name!r} has no file {name!r}: expected one of {[f.name for f in self.files]}")


_GH = "https://raw.githubusercontent.com"
_NAMES_SHA = {
    "Arabic": ("6f424a8dbe51cbbbabab7a57d38b617210125e4e3991f3c657cb79b8f104bafc", 13190),
    "Chinese": ("49263ef55a8cb1740e841d65cad8214b2f9b5b869bc534c811746422496fa91e", 1247),
    "Czech": ("145bbbd6d0816578f03388e92c264d39ef1c60df920b081d371fa5c5cc055a8e", 3919),
    "Dutch": ("924f32b635170eae561f84538632138fc07d4c8bbd70ba3fb980de1ecc4d2af3", 2351),
    "English": ("9cca037066d3d5989e24bc01801416162de506b5e28e15b7c092a47905d29bf2", 27125),
    "French": ("81e65b36c60ed5b89a17422f6edcadbb89546f38ad69e960e64e7ba682012a95", 2178),
    "German": ("7449cd590b97a733e18d613a4155decd77ec35dc5f8aadd7a82204dce4f051db", 5610),
    "Greek": ("3555b5186de7f401e6d991b088e9e644ca3099116477818c25ab5793801389e6", 1981),
    "Irish": ("cf8c7013256252a88d2503127b87282a11f21b2ff6db1bded68834c19a1ec058", 1858),
    "Italian": ("f88414c27d0606a11a678b4859277828c2565d6cc4d9ee932deef6e94f3b35e4", 5657),
    "Japanese": ("e0e717e114fec3e7eade4d9dabe0067c475f43147e36a22b47902ee76ad9e67f", 7622),
    "Korean": ("cd54221ccb362a6cba4c78828838cf3268a0e59744767a37cf6ec4b74036b136", 423),
    "Polish": ("45bab898af2f60ed3a728bbf6980e28821011a7caa53227553b5785903a40826", 1165),
    "Portuguese": ("50a8735f41f4f73757c8ce5b16cb0275cd86b2b214bcbc8c9805f508cb131c53", 554),
    "Russian": ("43b3e64ce351f77f1ac9e0cdf7566012d127f4371875fd25208845b5c9d6f7c3", 85605),
    "Scottish": ("78d0252711d87d948ea86fe34826c51d2d794a8e52d15b5d6f7b6244d45d62dd", 752),
    "Spanish": ("1bcb462ed3316756a85781d68232bddae04498fdddd5d9219c53fd1fbdeba7a7", 2284),
    "Vietnamese": ("f3f9e4164ab47601178a6e45b216464a64122f49d05541f24bf18a757253281d", 339),
}
_NAMES_REPO = f"{_GH}/rihan08/MachineTranslations"

REGISTRY: dict[str, Dataset] = {
    d.name: d
    for d in [
        Dataset(
            name="tinyshakespeare",
            files=(RemoteFile(
                "input.txt", "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed", 1115394,
                (f"{_GH}/karpathy/char-rnn/6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e/data/tinyshakespeare/input.txt",
                 f"{_GH}/pytorch/examples/77f55b912142e11fcfdf5b530231fb9c52f181e8/distributed/minGPT-ddp/mingpt/data/input.txt"),
            ),),
            license="char-rnn repository MIT; the text is Shakespeare (public domain)",
            source="karpathy/char-rnn data/tinyshakespeare",
            description="1.1 MB of Shakespeare's plays, 65 distinct characters",
        ),
        Dataset(
            name="names",
            files=tuple(
                RemoteFile(f"{lang}.txt", sha, size,
                           (f"{_NAMES_REPO}/cc3bb11b3c306749588eec493238226ee437a59b/data/names/{lang}.txt",
                            f"{_NAMES_REPO}/7f5473c90649891dda80f7c6b7c281538c31df73/data/names/{lang}.txt"))
                for lang, (sha, size) in _NAMES_SHA.items()
            ),
            license="no license stated for the lists; shipped with the PyTorch tutorials (BSD-3-Clause)",
            source="PyTorch 'NLP From Scratch' tutorial data/names",
            description="20,074 surnames in 18 languages",
        ),
        Dataset(
            name="eng-fra",
            files=(RemoteFile(
                "eng-fra.txt", "0bb85dbaa1c896844649094d7eaf2e34bee34e84fe362b26ce7e8f2e12aae104", 11669748,
                ("https://github.com/modelexlab/data/raw/adddaf33ac35572bcfeb421efec29435e7ea9332/fra-eng.zip#fra-eng/fra.txt",
                 "http://d2l-data.s3-accelerate.amazonaws.com/fra-eng.zip#fra-eng/fra.txt"),
            ),),
            license="CC BY 2.0 FR - attribution: tatoeba.org and manythings.org/anki",
            source="manythings.org/anki fra-eng (Tatoeba), release of 2019-04-07",
            description="167,130 English-French sentence pairs",
        ),
        Dataset(
            name="sst2",
            files=(
                RemoteFile("train.tsv", "48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1", 3806081,
                           (f"{_GH}/eyalbd2/Reproducing-AutoPrompt/53e9e221b58e5ed882a56c9d8be838b895351165/glue_data/SST-2/train_full.tsv",
                            "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip#SST-2/train.tsv")),
                RemoteFile("dev.tsv", "54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0", 94931,
                           (f"{_GH}/eyalbd2/Reproducing-AutoPrompt/53e9e221b58e5ed882a56c9d8be838b895351165/glue_data/SST-2/dev.tsv",
                            "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip#SST-2/dev.tsv")),
                RemoteFile("test.tsv", "69a938605609b3e6663b4487918fe1565eb293734e6e520d0366d1d412fd2a13", 197335,
                           (f"{_GH}/eyalbd2/Reproducing-AutoPrompt/53e9e221b58e5ed882a56c9d8be838b895351165/glue_data/SST-2/test.tsv",
                            "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip#SST-2/test.tsv")),
            ),
            license="none stated upstream; cite Socher et al. 2013 (GLUE SST-2)",
            source="GLUE SST-2",
            description="binary sentiment: 67,349 train phrases, 872 dev sentences, 1,821 unlabeled test",
        ),
        Dataset(
            name="wikitext-2",
            files=(
                RemoteFile("valid.txt", "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8", 1121681,
                           (f"{_GH}/pytorch/examples/77f55b912142e11fcfdf5b530231fb9c52f181e8/word_language_model/data/wikitext-2/valid.txt",)),
                RemoteFile("test.txt", "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0", 1256449,
                           (f"{_GH}/pytorch/examples/77f55b912142e11fcfdf5b530231fb9c52f181e8/word_language_model/data/wikitext-2/test.txt",)),
            ),
            license="CC BY-SA 3.0",
            source="WikiText-2 v1 (Merity et al. 2016), tokenized; validation and test splits only",
            description="about 460k tokens of Wikipedia prose",
        ),
    ]
}


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _verified(path: Path, rf: RemoteFile) -> bool:
    """True if `path` holds exactly the registered bytes. A file that vanishes while we look (another process
    replacing it) counts as a cache miss, never as an error."""
    try:
        return path.stat().st_size == rf.size and sha256_of(path) == rf.sha256
    except FileNotFoundError:
        return False


ORPHAN_AGE = 3600    # seconds: a partial download untouched this long was left by a killed process


def _sweep_orphans(folder: Path) -> None:
    """Delete `*.part` files that no live download has touched for an hour (a SIGKILL leaves them behind)."""
    now = time.time()
    for part in folder.glob("*.part"):
        try:
            if now - part.stat().st_mtime > ORPHAN_AGE:
                part.unlink()
        except FileNotFoundError:
            pass


def _dataset(name: str) -> Dataset:
    if name not in REGISTRY:
        raise KeyError(f"unknown dataset {name!r}: expected one of {sorted(REGISTRY)}")
    return REGISTRY[name]


def _download(url: str, dest: Path, desc: str) -> None:
    """Stream `url` into `dest` with a progress bar. `file://` URLs and plain paths work too."""
    if "://" not in url:
        shutil.copyfile(url, dest)
        return
    req = urllib.request.Request(url, headers={"User-Agent": "course_lib"})
    with urllib.request.urlopen(req, timeout=60) as resp, open(dest, "wb") as out:
        total = int(resp.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not progress_enabled(), leave=False) as bar:
            for chunk in iter(lambda: resp.read(1 << 16), b""):
                out.write(chunk)
                bar.update(len(chunk))


def _fetch_one(url: str, part: Path, desc: str) -> None:
    """Put the bytes that `url` names into `part` (extracting a zip member for `archive#member`)."""
    if "#" not in url:
        _download(url, part, desc)
        return
    archive_url, member = url.split("#", 1)
    with tempfile.TemporaryDirectory(dir=part.parent) as tmp:
        archive = Path(tmp) / "archive.zip"
        _download(archive_url, archive, desc)
        with zipfile.ZipFile(archive) as zf, zf.open(member) as src, open(part, "wb") as out:
            shutil.copyfileobj(src, out)


def _mirror_urls(mirror: str, dataset: str, file: str) -> list[str]:
    """Where a mirror keeps a file. A relative folder (`../shared/datasets`) is tried against the current
    directory and against the repository root: kernels started by papermill or nbgrader run elsewhere."""
    if "://" in mirror:
        return [f"{mirror.rstrip('/')}/{dataset}/{file}"]
    folder = Path(mirror).expanduser()
    bases = [folder.resolve()] if folder.is_absolute() else [folder.resolve(), (paths.ROOT / folder).resolve()]
    return list(dict.fromkeys(str(base / dataset / file) for base in bases))


def fetch(dataset: str, file: str | None = None) -> Path:
    """Return the local path of a verified dataset file (the dataset's only file if `file` is None)."""
    ds = _dataset(dataset)
    if file is None:
        if len(ds.files) != 1:
            raise ValueError(f"dataset {dataset!r} has {len(ds.files)} files; name one of {[f.name for f in ds.files]}")
        file = ds.files[0].name
    rf = ds.file(file)
    dest = paths.data_dir() / dataset / rf.name
    if _verified(dest, rf):
        return dest
    # A stale or corrupt copy is never used. It is not deleted either: another process may be replacing it at
    # this moment; the atomic rename below puts the good copy in its place.

    candidates: list[str] = []
    mirror = os.environ.get(MIRROR_ENV)
    if mirror:
        candidates.extend(_mirror_urls(mirror, dataset, rf.name))
    candidates.extend(rf.urls)

    dest.parent.mkdir(parents=True, exist_ok=True)
    _sweep_orphans(dest.parent)
    # A private partial file: kernels that start together (nbgrader grades submissions in parallel) may fetch
    # the same file at once, and must not write into or delete each other's download.
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    os.close(fd)
    part = Path(tmp_name)
    tried: list[str] = []
    for url in candidates:
        try:
            _fetch_one(url, part, desc=f"{dataset}/{rf.name}")
            got = sha256_of(part)
            if got != rf.sha256:
                raise ChecksumError(f"checksum mismatch for {dataset}/{rf.name} from {url}: "
                                    f"expected sha256 {rf.sha256}, got {got}; the file was deleted")
            os.chmod(part, 0o644)             # mkstemp makes 0600; a shared cache must be readable by others
            os.replace(part, dest)
            return dest
        except (OSError, urllib.error.URLError, zipfile.BadZipFile, KeyError, ChecksumError) as e:
            tried.append(f"  - {url}: {e}")
        finally:
            part.unlink(missing_ok=True)
    hint = (f"Set {MIRROR_ENV} to a folder or URL laid out <dataset>/<file> "
            f"(e.g. {MIRROR_ENV}=../shared/datasets), or connect to the network.")
    if not mirror:
        hint = f"{MIRROR_ENV} is not set. " + hint
    raise DataError(f"could not obtain {dataset}/{rf.name} (sha256 {rf.sha256[:12]}...). Tried:\n"
                    + "\n".join(tried) + f"\n{hint}")


def fetch_all(dataset: str) -> list[Path]:
    return [fetch(dataset, f.name) for f in _dataset(dataset).files]


def read_text(dataset: str, file: str | None = None) -> str:
    return fetch(dataset, file).read_text(encoding="utf-8")


# ---- loaders shared by several lessons -------------------------------------------------------------

def load_shakespeare() -> str:
    """tinyshakespeare as one string."""
    return read_text("tinyshakespeare")


def train_val_split(text: str, val_fraction: float = 0.1) -> tuple[str, str]:
    """The first 90 % for training, the last 10 % for validation (nanoGPT's split, so numbers compare).

    `val_fraction` is a fraction in [0, 1)."""
    if not 0.0 <= real("val_fraction", val_fraction) < 1.0:
        raise ValueError(f"val_fraction={val_fraction}: expected a fraction in [0, 1)")
    cut = int(len(text) * (1 - val_fraction))
    return text[:cut], text[cut:]


def load_names(ascii_only: bool = True) -> list[tuple[str, str]]:
    """(surname, language) pairs from the 18 `names` files, junk lines dropped.

    With `ascii_only`, accents are folded (`Abelló` -> `Abello`) so the alphabet stays small.
    """
    import unicodedata

    pairs = []
    for rf in _dataset("names").files:
        lang = rf.name.removesuffix(".txt")
        for line in fetch("names", rf.name).read_text(encoding="utf-8").splitlines():
            name = line.strip()
            if not name or " ".join(name.split()) == "To The First Page":  # 24 junk lines, one with 2 spaces
                continue
            if ascii_only:
                name = "".join(c for c in unicodedata.normalize("NFD", name) if unicodedata.category(c) != "Mn")
            pairs.append((name, lang))
    return pairs


def load_sst2(split: str) -> list[tuple[str, int]] | list[str]:
    """SST-2 `train`/`dev` as (sentence, label) pairs; `test` as sentences (it has no labels)."""
    if split not in ("train", "dev", "test"):
        raise ValueError(f"unknown SST-2 split {split!r}: expected 'train', 'dev' or 'test'")
    lines = read_text("sst2", f"{split}.tsv").splitlines()[1:]
    if split == "test":
        return [line.split("\t", 1)[1].strip() for line in lines]
    out = []
    for line in lines:
        sentence, label = line.rsplit("\t", 1)
        out.append((sentence.strip(), int(label)))
    return out


def describe_registry() -> str:
    """A Markdown table of every dataset: the data card's summary."""
    rows = ["| dataset | files | bytes | license | source |", "|---|---|---|---|---|"]
    for ds in REGISTRY.values():
        size = sum(f.size for f in ds.files)
        rows.append(f"| {ds.name} | {len(ds.files)} | {size:,} | {ds.license} | {ds.source} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    """`python -m course_lib.core.data [dataset ...]`: fetch and verify datasets (all by default)."""
    import argparse

    parser = argparse.ArgumentParser(description="Fetch and verify the course datasets.")
    parser.add_argument("datasets", nargs="*", default=list(REGISTRY), help=f"any of {sorted(REGISTRY)}")
    args = parser.parse_args(argv)
    for name in args.datasets:
        for p in fetch_all(name):
            print(f"ok  {name}/{p.name}  ({p.stat().st_size:,} bytes, sha256 verified)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
