"""Where the raw Census Income files come from, and how they are checked (chapter 1).

In this order: a local folder (`data_dir`, `CENSUS_DATA_DIR`); the cache of an earlier
download; the public bucket `gs://cloud-samples-data/ai-platform/census/data/` (the 2017
sample's "slightly cleaned" copies `adult.data.csv` / `adult.test.csv`), read anonymously
with google-cloud-storage (which honours `STORAGE_EMULATOR_HOST`); UCI's zip over HTTPS.
Downloads land in `<cache>/raw/` under a temporary name and are renamed only once complete and
verified: UCI's files against their published sha256, the bucket's (which have none) by
their structure, when they are cleaned. A failure is one line saying why, never a traceback.

Why no download library: pooch (1.9) was weighed. It downloads over http(s), ftp, sftp and
doi only (its `choose_downloader` refuses gs://), its `known_hash` checks the file it
downloaded (UCI's zip), not the two files inside whose sha256 UCI publishes, and its failures
are requests' exceptions; `tf_keras.utils.get_file` has no gs:// either, nor a timeout (a
silent server hangs it). Either would leave this module's work to do and fail tests/test_data.py,
so it stays.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import urllib.error
import urllib.request
import uuid
import zipfile
from pathlib import Path

from tqdm import tqdm

GCS_URI = "gs://cloud-samples-data/ai-platform/census/data/"


# A mirror of UCI's zip can be named with CENSUS_UCI_URL (the tests use a local server).
UCI_ZIP_URL = os.environ.get("CENSUS_UCI_URL",
                             "https://archive.ics.uci.edu/static/public/2/adult.zip")


UCI_PAGE = "https://archive.ics.uci.edu/dataset/2/adult"


UCI_NAMES = ("adult.data", "adult.test")  # (train, eval) as UCI publishes them


GCS_NAMES = ("adult.data.csv", "adult.test.csv")  # the bucket's cleaned copies


SHA256 = {  # published checksums of UCI's original files (the bucket's copies have none)
    "adult.data": "5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d",
    "adult.test": "a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05",
}


TIMEOUT = 15  # seconds per network call; there are no retry loops


class DataError(Exception):
    """The data could not be found, or is not what it should be."""


class DataUnavailable(DataError):
    """No local files were given and no remote source could be reached."""


def find_pair(folder: Path):
    """(train, eval) paths in folder under UCI's names or the bucket's names, else None."""
    for names in (UCI_NAMES, GCS_NAMES):
        paths = tuple(folder / name for name in names)
        if all(path.is_file() for path in paths):
            return paths
    return None


def cached_pair(raw: Path):
    """The files an earlier fetch downloaded, if complete and intact (damaged ones are deleted)."""
    pair = find_pair(raw)
    if pair is None:
        return None, None
    try:
        for path in pair:
            verify(path)
    except DataError:
        for path in pair:
            path.unlink(missing_ok=True)
        return None, None
    origin = raw / "SOURCE"
    source = origin.read_text().strip() if origin.is_file() else "unknown source"
    return pair, f"{source} (cached in {raw})"


def verify(path: Path, name: str | None = None) -> str:
    """Check a UCI file's sha256 (DataError on mismatch); say how the file was checked."""
    name = name or path.name
    if name not in SHA256:
        return "structure only (no published checksum for the bucket's copy)"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SHA256[name]:
        raise DataError(
            f"{path}: sha256 mismatch for {name}\n  expected {SHA256[name]}\n  got      {digest}\n"
            f"The file is damaged or is not UCI's original {name}; it was not used. Get a fresh "
            f"copy from {UCI_PAGE}, or remove it so that fetch downloads it again.")
    return "sha256 ok (UCI's published checksum)"


@contextlib.contextmanager
def atomic_write(dest: Path, mode="wb"):
    """Write to a temporary name next to dest; only a complete, verified file gets dest's name."""
    part = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        with open(part, mode, **({"newline": "\n"} if "b" not in mode else {})) as f:
            yield f
        verify(part, dest.name)
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)


class Unreachable(Exception):
    """A remote source failed; the message is one line saying why."""


def download(raw: Path, gcs_uri: str | None, uci_url: str, progress: bool):
    """Download into `raw` from the bucket, else from UCI (only from UCI when `gcs_uri` is
    None: its original files, byte for byte); record the source in `raw/SOURCE`. Returns
    ((train, eval) paths, source). Raises DataUnavailable if no source works."""
    failures = []
    candidates = ((gcs_uri, _from_gcs), (uci_url, _from_uci_zip))
    for source, fetch_from in ((s, f) for s, f in candidates if s is not None):
        try:
            pair = fetch_from(source, raw, progress)
        except Unreachable as e:
            failures.append(f"  {source}: {e}")
            continue
        (raw / "SOURCE").write_text(source + "\n")
        return pair, source
    raise DataUnavailable(
        "Could not download the census data:\n" + "\n".join(failures) + "\n"
        f"Download adult.data and adult.test (from {UCI_PAGE}) into a folder DIR on a machine "
        "with internet access, then pass --data-dir DIR or set CENSUS_DATA_DIR=DIR.")


def _from_gcs(uri: str, raw: Path, progress: bool):
    try:
        from google.api_core.exceptions import GoogleAPIError
        from google.auth.exceptions import GoogleAuthError
        from google.cloud import storage
        from requests import RequestException
    except ImportError as e:
        raise Unreachable(f"google-cloud-storage is not installed ({e})") from e
    if not uri.startswith("gs://"):
        raise Unreachable("not a gs:// URI")
    bucket_name, _, prefix = uri[len("gs://"):].partition("/")
    prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    via = f" (emulator {emulator})" if emulator else ""
    try:
        bucket = storage.Client.create_anonymous_client().bucket(bucket_name)
        for names in (GCS_NAMES, UCI_NAMES):
            blobs = [bucket.get_blob(prefix + name, timeout=TIMEOUT, retry=None) for name in names]
            if all(blobs):
                break
        else:
            raise Unreachable(f"no {' + '.join(GCS_NAMES)} or {' + '.join(UCI_NAMES)} there{via}")
        for blob, name in zip(blobs, names):
            with atomic_write(raw / name) as f, tqdm.wrapattr(
                    f, "write", total=blob.size, desc=name, disable=not progress) as out:
                blob.download_to_file(out, timeout=TIMEOUT, retry=None)
    except (GoogleAPIError, GoogleAuthError, RequestException, storage.exceptions.InvalidResponse,
            storage.exceptions.DataCorruption) as e:
        raise Unreachable(_reason(e) + via) from e
    return tuple(raw / name for name in names)


def _from_uci_zip(url: str, raw: Path, progress: bool):
    archive = raw / f".adult.zip.{uuid.uuid4().hex[:8]}.part"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response, open(archive, "wb") as f:
            size = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024,
                      desc=url.rsplit("/", 1)[-1], disable=not progress) as bar:
                while chunk := response.read(1 << 16):
                    bar.update(f.write(chunk))
        if size and archive.stat().st_size != size:  # read(n) returns b"" if the connection drops
            raise Unreachable(f"download interrupted after {archive.stat().st_size:,} of "
                               f"{size:,} bytes")
        with zipfile.ZipFile(archive) as z:
            members = {Path(member).name: member for member in z.namelist()}
            for name in UCI_NAMES:
                if name not in members:
                    raise Unreachable(f"the zip holds no {name}")
                with z.open(members[name]) as src, atomic_write(raw / name) as dst:
                    shutil.copyfileobj(src, dst)
    except (OSError, http.client.HTTPException, zipfile.BadZipFile) as e:  # URLError is an OSError
        raise Unreachable(_reason(e)) from e
    finally:
        archive.unlink(missing_ok=True)
    return tuple(raw / name for name in UCI_NAMES)


_REASONS = (  # substrings of library error messages -> a plain reason
    ("Connection refused", "connection refused"),
    ("Name or service not known", "host name not found (no DNS / no network?)"),
    ("Temporary failure in name resolution", "host name not found (no DNS / no network?)"),
    ("nodename nor servname", "host name not found (no DNS / no network?)"),
    ("Network is unreachable", "network unreachable"),
    ("timed out", "no answer within {timeout} s"),
)


def _reason(error: Exception) -> str:
    """One line saying why a download failed, instead of a library's traceback."""
    text = " ".join(str(error).split())
    for needle, reason in _REASONS:
        if needle.lower() in text.lower():
            return reason.format(timeout=TIMEOUT)
    return f"{type(error).__name__}: {text[:160]}"
