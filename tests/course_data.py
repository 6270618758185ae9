"""Where the tests (and the rehearsals) get the census data, on any clone.

As CI has it: `CENSUS_DATA_DIR`, else the shared copy of UCI's files beside the clone
(`../shared/data/census/uci`). Else as `make course` leaves it: the data cache
(`CENSUS_CACHE_DIR` or ~/.cache/census), and what is not there yet is downloaded into it
(offline, set CENSUS_DATA_DIR). Two needs, two functions:

- `raw_folder()` for the tests that only need clean rows: the raw pair from anywhere
  `census.data.fetch()` takes it (UCI's files or the bucket's cleaned copies);
- `uci_folder()` for the tests that need UCI's original files (checksums, quirks, UCI's raw
  format given to the trainer, exact row counts, the chapters' smoke run that nbval compares
  with outputs made from them): UCI's own files, from UCI's zip (sha256-checked) if needed.

Each returns (folder, one line saying where the files came from).
"""
import os
from pathlib import Path

import pytest

from census import data, sources

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "census" / "uci"


def local_folder():
    """(`CENSUS_DATA_DIR`, else CI's shared copy beside the clone, if it holds a raw pair;
    how it was found), else (None, None)."""
    for folder, name in ((os.environ.get("CENSUS_DATA_DIR"), "CENSUS_DATA_DIR"),
                         (SHARED, "the shared copy beside the clone")):
        if folder and sources.find_pair(Path(folder)):
            return Path(folder).resolve(), f"{name} ({folder})"
    return None, None


def raw_folder():
    """A folder holding the raw pair, for tests that only need clean rows: the local folder,
    else the data cache's raw/, filled by `census.data.fetch()` as `make course` fills it."""
    folder, how = local_folder()
    if folder:
        return folder, how
    files = data.fetch(progress=False)
    return data.cache_folder() / "raw", f"the data cache, from {files.source}"


def uci_folder():
    """A folder holding UCI's original adult.data and adult.test, byte for byte: the local
    folder if it has them, else the data cache's raw/, where UCI's zip is downloaded
    (sha256-checked) if they are not there yet. Raises DataUnavailable offline."""
    folder, how = local_folder()
    if folder and sources.find_pair(folder)[0].name == sources.UCI_NAMES[0]:
        return folder, how
    raw = data.cache_folder() / "raw"
    pair, source = sources.cached_pair(raw)
    if pair and pair[0].name == sources.UCI_NAMES[0]:
        return raw, f"the data cache, from {source}"
    raw.mkdir(parents=True, exist_ok=True)
    _, source = sources.download(raw, None, sources.UCI_ZIP_URL, progress=False)
    return raw, f"downloaded from {source} into the data cache ({raw})"


def or_fail(find, who):
    """find(), or the test fails with the data's own one-sentence reason (offline, say),
    naming `who` needed it."""
    try:
        return find()
    except sources.DataError as error:
        reason = str(error)
    pytest.fail(f"no census data for {who}: {reason}", pytrace=False)  # outside: no chain
