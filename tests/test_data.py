"""census.data: sources (local dir, GCS emulator, UCI zip over HTTP), checks, cleaning, cache.

Nothing here touches the internet: the GCS source is fake-gcs-server on 127.0.0.1, the UCI
source is http.server on 127.0.0.1, and "no network" is a 127.0.0.1 port nobody listens on.
"""
import hashlib
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import zipfile
from types import SimpleNamespace

import pandas as pd
import pytest

from census import data, schema, sources
from census.schema import CSV_COLUMNS
from conftest import REPO
from gcs_emulator import fake_gcs_server

TRAIN_LABELS = {"<=50K": 24_720, ">50K": 7_841}
EVAL_LABELS = {"<=50K": 12_435, ">50K": 3_846}


# --- helpers and fixtures --------------------------------------------------------------------

@pytest.fixture
def closed_port():
    """A 127.0.0.1 port that is bound but not listening: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


@pytest.fixture(autouse=True)
def _offline_env(monkeypatch, closed_port):
    """No test reads the user's settings or reaches a real host (GCS goes to a closed port).
    The session's data fixtures, of a wider scope, have found their folders before this."""
    for name in ("CENSUS_DATA_DIR", "CENSUS_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{closed_port}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def expected_train(uci_dir):
    """UCI's training file minus its final empty line."""
    raw = (uci_dir / "adult.data").read_bytes()
    assert raw.endswith(b"K\n\n")
    return raw[:-1]


def adult_data_rows(files):
    """The cleaned adult.data, as the training and validation splits hold it together (sorted
    lines: the split keeps each file's order, not the rows' place between the two)."""
    lines = open(files.train, "rb").read().splitlines(True)
    return sorted(lines + open(files.validation, "rb").read().splitlines(True))


def expected_eval(uci_dir):
    """UCI's test file without its first line, its labels' periods and its final empty line."""
    raw = (uci_dir / "adult.test").read_bytes()
    assert raw.startswith(b"|1x3 Cross validator\n") and raw.endswith(b"K.\n\n")
    return raw.split(b"\n", 1)[1].replace(b"K.\n", b"K\n")[:-1]


def gcs_style(raw: bytes) -> bytes:
    """Derive a copy shaped like the bucket's "slightly cleaned" files (not their real bytes):
    no header line, no trailing periods, "," separators, no empty last line, no final LF."""
    lines = [line for line in raw.decode().split("\n") if line and not line.startswith("|")]
    return "\n".join(line.rstrip(".").replace(", ", ",") for line in lines).encode()


def make_zip(path, files):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in files.items():
            z.writestr(name, content)


@pytest.fixture
def uci_server(tmp_path, uci_dir):
    """http.server on 127.0.0.1 serving adult.zip built from the real files; records requests."""
    www = tmp_path / "www"
    www.mkdir()
    zip_path = www / "adult.zip"
    good = {n: (uci_dir / n).read_bytes() for n in ("adult.data", "adult.test", "adult.names")}
    make_zip(zip_path, good)
    state = SimpleNamespace(requests=[], truncate=False, zip=zip_path, files=good)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            state.requests.append(self.path)
            path = www / self.path.lstrip("/")
            if not path.is_file():
                return self.send_error(404)
            body = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:len(body) // 2] if state.truncate else body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/adult.zip"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def gcs(tmp_path, uci_dir, monkeypatch):
    """fake-gcs-server holding the real UCI files at gs://course-bucket/census/data/, and
    GCS-shaped copies derived from them at gs://derived-bucket/gcs-variant/ and at the public
    bucket's address (sources.GCS_URI)."""
    seed = tmp_path / "seed"
    uci_prefix = seed / "course-bucket/census/data"
    variant_prefix = seed / "derived-bucket/gcs-variant"
    public = seed / sources.GCS_URI.removeprefix("gs://")  # where fetch() looks by default
    for folder in (uci_prefix, variant_prefix, public):
        folder.mkdir(parents=True)
    for uci_name, gcs_name in zip(sources.UCI_NAMES, sources.GCS_NAMES):
        shutil.copyfile(uci_dir / uci_name, uci_prefix / uci_name)  # the server skips symlinks
        for folder in (variant_prefix, public):
            (folder / gcs_name).write_bytes(gcs_style((uci_dir / uci_name).read_bytes()))
    with fake_gcs_server(seed, log_path=tmp_path / "fake-gcs.log") as url:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        yield url


def leftovers(cache):
    """Files in the cache that a later fetch might pick up."""
    return sorted(p.relative_to(cache).as_posix() for p in cache.rglob("*") if p.is_file())


# --- local files --------------------------------------------------------------------------------

def test_local_dir_report_matches_the_readme(uci_dir, tmp_path):
    files = data.fetch(uci_dir, tmp_path / "cache", progress=False)
    train, eval_ = files.report.train, files.report.test
    assert files.source == f"local dir {uci_dir}"
    assert (train.rows, eval_.rows) == (32_561, 16_281)
    assert (train.labels, eval_.labels) == (TRAIN_LABELS, EVAL_LABELS)
    assert (train.rows_with_missing, eval_.rows_with_missing) == (2_399, 1_221)
    assert train.missing == {"workclass": 1_836, "occupation": 1_843, "native_country": 583}
    assert eval_.missing == {"workclass": 963, "occupation": 966, "native_country": 274}
    assert (train.duplicates, eval_.duplicates) == (24, 5)
    assert (train.header_lines, eval_.header_lines) == (0, 1)
    assert (train.trailing_periods, eval_.trailing_periods) == (0, 16_281)
    assert (train.blank_lines, eval_.blank_lines) == (1, 1)
    assert "sha256 ok" in train.check and "sha256 ok" in eval_.check
    # canonical files live in the cache, never in the data dir
    assert (files.train, files.validation, files.test) == tuple(
        str(tmp_path / "cache" / name) for name in ("train.csv", "validation.csv", "test.csv"))
    text = str(files.report)
    assert "32,561" in text and "16,281" in text and "header lines removed" in text
    summary = data.describe(files)
    assert str(uci_dir) in summary and files.train in summary and "24.1% >50K" in summary


def test_the_validation_split_is_a_fixed_stratified_tenth_of_adult_data(uci_dir, tmp_path):
    """Held out of adult.data: 10% of each label, the same rows on every fetch, no row lost
    or added; the training split is the rest; the test split is all of adult.test."""
    files = data.fetch(uci_dir, tmp_path / "a", progress=False)
    again = data.fetch(uci_dir, tmp_path / "b", progress=False)
    assert open(files.validation).read() == open(again.validation).read()
    train, validation = data.load_frame(files.train), data.load_frame(files.validation)
    assert (len(train), len(validation)) == (29_305, 3_256)
    for label, count in TRAIN_LABELS.items():
        held = int((validation["income_bracket"] == label).sum())
        assert held == round(data.VALIDATION_SHARE * count), label
    assert len(data.load_frame(files.test)) == 16_281


def test_fetches_into_one_cache_at_once_never_see_a_missing_or_partial_file(uci_dir, tmp_path):
    """Two notebooks open at once, or a tuner's parallel trials, fetch into the same cache:
    each gets the complete files, whichever finishes first."""
    import concurrent.futures

    expected = data.fetch(uci_dir, tmp_path / "alone", progress=False)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: data.fetch(uci_dir, tmp_path / "shared",
                                                     progress=False), range(8)))
    for name in ("train", "validation", "test"):
        want = open(getattr(expected, name), "rb").read()
        assert {open(getattr(r, name), "rb").read() == want for r in results} == {True}
    assert sorted(p.name for p in (tmp_path / "shared").iterdir()) == \
        ["test.csv", "train.csv", "validation.csv"]  # no work folder or intermediate left


def test_the_three_splits_from_whatever_source_fetch_finds(census_files):
    """Clean rows only, from UCI's files or the bucket's copies (whose row counts may differ):
    every cleaned row of adult.data is in the training or the validation split, which holds
    the same share of each label; every row of adult.test is in the test split."""
    train, validation, test = (data.load_frame(getattr(census_files, name))
                               for name in ("train", "validation", "test"))
    report = census_files.report
    assert len(train) + len(validation) == report.train.rows and len(test) == report.test.rows
    held = validation["income_bracket"].value_counts().to_dict()
    assert held == {label: round(data.VALIDATION_SHARE * count)
                    for label, count in report.train.labels.items()}
    assert set(test["income_bracket"]) == set(schema.CLASSES)


def test_canonical_files_are_uci_minus_its_quirks(uci_dir, tmp_path):
    files = data.fetch(uci_dir, tmp_path, progress=False)
    assert adult_data_rows(files) == sorted(expected_train(uci_dir).splitlines(True))
    assert open(files.test, "rb").read() == expected_eval(uci_dir)


def test_gcs_variant_cleans_to_the_same_bytes(uci_dir, tmp_path):
    variant = tmp_path / "variant.csv"
    variant.write_bytes(gcs_style((uci_dir / "adult.test").read_bytes()))
    report = data.clean(variant, tmp_path / "from_variant.csv")
    data.clean(uci_dir / "adult.test", tmp_path / "from_uci.csv")
    assert (tmp_path / "from_variant.csv").read_bytes() == (tmp_path / "from_uci.csv").read_bytes()
    assert (tmp_path / "from_variant.csv").read_bytes() == expected_eval(uci_dir)
    assert (report.rows, report.header_lines, report.trailing_periods, report.blank_lines) == \
        (16_281, 0, 0, 0)
    assert report.labels == EVAL_LABELS


def test_local_dir_with_bucket_names_is_checked_for_structure_only(uci_dir, tmp_path):
    folder = tmp_path / "bucket-copy"
    folder.mkdir()
    for uci_name, gcs_name in zip(sources.UCI_NAMES, sources.GCS_NAMES):
        (folder / gcs_name).write_bytes(gcs_style((uci_dir / uci_name).read_bytes()))
    files = data.fetch(folder, tmp_path / "cache", progress=False)
    assert "structure only" in files.report.train.check
    assert adult_data_rows(files) == sorted(expected_train(uci_dir).splitlines(True))
    assert open(files.test, "rb").read() == expected_eval(uci_dir)


@pytest.mark.parametrize("source, line, change, words", [
    ("adult.data", 3, lambda row: row.rsplit(",", 1)[0], ["14 fields instead of 15"]),
    ("adult.data", 4, lambda row: "abc" + row[2:], ["age", "'abc'", "not a whole number"]),
    ("adult.data", 2, lambda row: row.replace("<=50K", "<=60K"), ["label", "'<=60K'"]),
    ("adult.test", 5, lambda row: row.replace(", 40, ", ", forty, ", 1), ["hours_per_week"]),
])
def test_malformed_row_names_file_and_line(uci_dir, tmp_path, source, line, change, words):
    lines = (uci_dir / source).read_text().split("\n")[:8]  # adult.test: line 1 is its header
    lines[line - 1] = change(lines[line - 1])
    bad = tmp_path / source
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(data.DataError) as error:
        data.clean(bad, tmp_path / "out.csv")
    message = str(error.value)
    assert f"{bad}, line {line}:" in message
    for word in words:
        assert word in message
    assert leftovers(tmp_path) == [source]  # no output, no temporary file


HEADER = ",".join(CSV_COLUMNS)  # a row of column names, as pandas' to_csv writes one


def training_file(uci_dir, tmp_path, start=b"", end=b"\n", line=None, text=None, rows=30):
    """The first `rows` rows of adult.data as a training file: after `start` (a byte order
    mark, a header row), each line ending in `end`; line number `line` replaced by `text`."""
    lines = (uci_dir / "adult.data").read_text().splitlines()[:rows]
    if line:
        lines[line - 1] = text
    path = tmp_path / "train.csv"
    path.write_bytes(start + b"".join(row.encode() + end for row in lines))
    return path, lines


@pytest.mark.parametrize("start, end, found", [
    (b"\xef\xbb\xbf", b"\n", "1 byte order mark"),
    (b"", b"\r\n", "30 CRLF line ends"),
    (HEADER.encode() + b"\n", b"\n", "1 header row of column names"),
    (b"\xef\xbb\xbf" + HEADER.encode() + b"\r\n", b"\r\n",
     "1 header row of column names, 1 byte order mark, 31 CRLF line ends"),
], ids=["bom", "crlf", "header", "all"])
def test_the_trainer_reads_a_cleaned_copy_of_a_file_the_cleaner_changed(uci_dir, tmp_path,
                                                                        start, end, found):
    """Issue 19: a byte order mark passed the check and failed inside model.fit (`not a valid
    float: \\ufeff39`); a header row was called a comment line."""
    from census import inputs
    path, lines = training_file(uci_dir, tmp_path, start, end)
    (read,), notes = data.check_training_files([path], tmp_path / "cleaned")
    assert read != str(path) and notes == [
        f"{path} has {found}: reading a copy cleaned as `census data` cleans it"]
    assert open(read).read().splitlines() == lines
    batch = next(iter(inputs.input_fn([read], num_epochs=1, shuffle=False, batch_size=30)))
    assert batch[0]["age"].numpy().tolist()[:2] == [39, 50]


def test_a_file_the_trainer_reads_as_it_is_is_used_as_it_is(uci_dir, tmp_path):
    path, _ = training_file(uci_dir, tmp_path)
    assert data.check_training_files([path], tmp_path / "cleaned") == ([str(path)], [])


@pytest.mark.parametrize("start, line, change, words", [
    (b"", 13, lambda row: row.replace("Private", 'Pri"vate'), "line 13: Unquoted fields"),
    (HEADER.encode() + b"\n", 13, lambda row: row.replace(", White", ', "White'),
     "line 14: Unquoted fields"),
    (b"", 1, lambda row: row.replace(", ", ",").replace(",Male", ',"Male"x'),
     "line 1: Quote inside a string has to be escaped"),
], ids=["quote", "after-header", "quoted-then-text"])
def test_a_row_the_trainers_op_refuses_is_named_by_file_and_line(uci_dir, tmp_path, start, line,
                                                                 change, words):
    """The cleaner's rules pass these rows; tf.io.decode_csv, which reads them in training,
    does not: refused before training, the file and the line (of the file given) named."""
    rows = (uci_dir / "adult.data").read_text().splitlines()
    path, _ = training_file(uci_dir, tmp_path, start, line=line, text=change(rows[line - 1]))
    with pytest.raises(data.DataError) as error:
        data.check_training_files([path], tmp_path / "cleaned")
    message = str(error.value)
    assert message.startswith(f"{path}, {words}") and "\n" not in message, message
    assert "tf.io.decode_csv" in message and "{{" not in message


def test_tampered_file_is_refused_and_nothing_stale_stays_in_cache(uci_dir, tmp_path):
    cache = tmp_path / "cache"
    data.fetch(uci_dir, cache, progress=False)  # a good earlier run fills the cache
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    for name in sources.UCI_NAMES:
        shutil.copyfile(uci_dir / name, tampered / name)
    content = bytearray((tampered / "adult.data").read_bytes())
    content[0:1] = b"4"  # first age 39 -> 49: still a valid row, only the checksum can tell
    (tampered / "adult.data").write_bytes(bytes(content))
    with pytest.raises(data.DataError) as error:
        data.fetch(tampered, cache, progress=False)
    message = str(error.value)
    assert str(tampered / "adult.data") in message and "sha256" in message
    assert sources.SHA256["adult.data"] in message
    assert hashlib.sha256(content).hexdigest() in message
    assert leftovers(cache) == []


def test_missing_files_and_environment_variables(uci_dir, tmp_path, monkeypatch):
    with pytest.raises(data.DataError, match=r"adult\.data \+ adult\.test nor adult\.data\.csv"):
        data.fetch(tmp_path, tmp_path / "cache", progress=False)
    monkeypatch.setenv("CENSUS_DATA_DIR", str(uci_dir))
    monkeypatch.setenv("CENSUS_CACHE_DIR", str(tmp_path / "env-cache"))
    files = data.fetch(progress=False)
    assert files.source == f"local dir {uci_dir}"
    assert files.train == str(tmp_path / "env-cache/train.csv")


def test_a_cache_folder_that_cannot_be_made_is_one_sentence(uci_dir, tmp_path):
    """An account whose home folder it may not write (e.g. HOME=/nonexistent)."""
    (tmp_path / "file").write_text("")
    with pytest.raises(data.DataError, match=r"cannot create the data cache .* --cache-dir or "
                                             r"CENSUS_CACHE_DIR"):
        data.fetch(uci_dir, tmp_path / "file" / "cache", progress=False)


def test_sha256_constants_are_those_of_ucis_files(uci_dir):
    assert sources.SHA256 == {name: hashlib.sha256((uci_dir / name).read_bytes()).hexdigest()
                              for name in sources.UCI_NAMES}


def test_load_frame(uci_dir, tmp_path):
    files = data.fetch(uci_dir, tmp_path, progress=False)
    frame = pd.concat([data.load_frame(files.train), data.load_frame(files.validation)])
    assert list(frame.columns) == list(CSV_COLUMNS) and len(frame) == 32_561
    numeric = ["age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
    for column in CSV_COLUMNS:
        kind = pd.api.types.is_integer_dtype if column in numeric else pd.api.types.is_string_dtype
        assert kind(frame[column]), (column, frame[column].dtype)
    assert frame.iloc[0].tolist() == [39, "State-gov", 77516, "Bachelors", 13, "Never-married",
                                      "Adm-clerical", "Not-in-family", "White", "Male", 2174, 0,
                                      40, "United-States", "<=50K"]
    assert frame["income_bracket"].value_counts().to_dict() == TRAIN_LABELS
    assert (frame["workclass"] == "?").sum() == 1_836
    strings = frame.select_dtypes(exclude="number")
    assert not strings.apply(lambda s: s.str.startswith(" ")).any().any()


# --- remote sources, all on 127.0.0.1 -----------------------------------------------------------

def test_gcs_emulator_download_verify_clean_and_cache(uci_dir, tmp_path, gcs, closed_port,
                                                      monkeypatch):
    nowhere = f"http://127.0.0.1:{closed_port}/adult.zip"
    files = data.fetch(cache_dir=tmp_path / "c1", gcs_uri="gs://course-bucket/census/data/",
                       uci_url=nowhere, progress=False)
    assert files.source == "gs://course-bucket/census/data/"
    assert "sha256 ok" in files.report.test.check
    assert adult_data_rows(files) == sorted(expected_train(uci_dir).splitlines(True))
    assert open(files.test, "rb").read() == expected_eval(uci_dir)
    assert leftovers(tmp_path / "c1") == ["raw/SOURCE", "raw/adult.data", "raw/adult.test",
                                         "test.csv", "train.csv", "validation.csv"]

    # The bucket's own names are tried first; such files get a structure check only.
    variant = data.fetch(cache_dir=tmp_path / "c2", gcs_uri="gs://derived-bucket/gcs-variant",
                         uci_url=nowhere, progress=True)
    assert "structure only" in variant.report.train.check
    assert open(variant.test, "rb").read() == expected_eval(uci_dir)
    assert (tmp_path / "c2/raw/adult.test.csv").is_file()

    # An empty prefix is a failed source, not a crash.
    with pytest.raises(sources.DataUnavailable, match="no adult.data.csv"):
        data.fetch(cache_dir=tmp_path / "c3", gcs_uri="gs://course-bucket/elsewhere/",
                   uci_url=nowhere, progress=False)

    # With the emulator gone, the cache still answers.
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{closed_port}")
    again = data.fetch(cache_dir=tmp_path / "c1", gcs_uri="gs://course-bucket/census/data/",
                       uci_url=nowhere, progress=False)
    assert again.source.startswith("gs://course-bucket/census/data/ (cached in ")
    assert again.report == files.report


def test_uci_zip_download_progress_and_cache(uci_dir, tmp_path, uci_server, capsys):
    cache = tmp_path / "cache"
    (cache / "raw").mkdir(parents=True)
    (cache / "raw/.adult.data.0badf00d.part").write_bytes(b"half a download")
    files = data.fetch(cache_dir=cache, uci_url=uci_server.url, progress=True)
    assert files.source == uci_server.url and uci_server.requests == ["/adult.zip"]
    assert adult_data_rows(files) == sorted(expected_train(uci_dir).splitlines(True))
    assert (files.report.train.rows, files.report.test.rows) == (32_561, 16_281)
    assert "adult.zip" in capsys.readouterr().err  # the tqdm bar
    assert [p for p in leftovers(cache) if not p.endswith(".part")] == [
        "raw/SOURCE", "raw/adult.data", "raw/adult.test", "test.csv", "train.csv",
        "validation.csv"]

    again = data.fetch(cache_dir=cache, uci_url=uci_server.url, progress=True)
    assert uci_server.requests == ["/adult.zip"]  # no second download
    assert again.source == f"{uci_server.url} (cached in {cache / 'raw'})"
    assert again.report == files.report and again.train == files.train


def test_bad_or_interrupted_download_is_not_kept(uci_dir, tmp_path, uci_server):
    cache = tmp_path / "cache"
    tampered = dict(uci_server.files, **{"adult.data": b"4" + uci_server.files["adult.data"][1:]})
    make_zip(uci_server.zip, tampered)
    with pytest.raises(data.DataError, match="sha256 mismatch for adult.data") as error:
        data.fetch(cache_dir=cache, uci_url=uci_server.url, progress=False)
    assert not isinstance(error.value, sources.DataUnavailable)
    assert leftovers(cache) == []

    make_zip(uci_server.zip, uci_server.files)
    uci_server.truncate = True  # the connection drops halfway through the zip
    with pytest.raises(sources.DataUnavailable, match="download interrupted after"):
        data.fetch(cache_dir=cache, uci_url=uci_server.url, progress=False)
    assert leftovers(cache) == []

    uci_server.truncate = False
    files = data.fetch(cache_dir=cache, uci_url=uci_server.url, progress=False)
    assert len(uci_server.requests) == 3
    assert open(files.test, "rb").read() == expected_eval(uci_dir)


def test_no_network_fails_fast_with_advice(tmp_path, closed_port):
    nowhere = f"http://127.0.0.1:{closed_port}/adult.zip"
    start = time.monotonic()
    with pytest.raises(sources.DataUnavailable) as error:
        data.fetch(cache_dir=tmp_path, uci_url=nowhere, progress=False)
    assert time.monotonic() - start < 5
    message = str(error.value)
    assert f"{sources.GCS_URI}: connection refused" in message
    assert f"{nowhere}: connection refused" in message
    assert "--data-dir" in message and "CENSUS_DATA_DIR" in message
    assert "Traceback" not in message and len(message.splitlines()) == 4
    assert isinstance(error.value, data.DataError)
    assert leftovers(tmp_path) == []


def test_silent_servers_time_out(tmp_path, monkeypatch):
    """A host that accepts connections but never answers (a black-holing firewall, say)."""
    monkeypatch.setattr(sources, "TIMEOUT", 0.5)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the handshakes; nobody ever reads or writes
        host = f"http://127.0.0.1:{silent.getsockname()[1]}"
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", host)
        start = time.monotonic()
        with pytest.raises(sources.DataUnavailable) as error:
            data.fetch(cache_dir=tmp_path, uci_url=f"{host}/adult.zip", progress=False)
        assert time.monotonic() - start < 5
    assert str(error.value).count("no answer within 0.5 s") == 2


# --- a fresh clone: no shared folder beside it, no CENSUS_DATA_DIR, an empty home ---------------

FRESH_CLONE_TESTS = [  # in the file's order: clean rows first (fetch, as make course), then bytes
    "tests/test_data.py::test_the_three_splits_from_whatever_source_fetch_finds",
    "tests/test_data.py::test_canonical_files_are_uci_minus_its_quirks"]


def run_tests_in_a_fresh_clone(tmp_path, env):
    """Two data tests, one reading UCI's bytes and one clean rows, run by pytest in a copy of the
    repository with nothing beside it, as a contributor's clone has nothing beside it."""
    clone = tmp_path / "elsewhere" / "census-course"
    shutil.copytree(REPO, clone, ignore=shutil.ignore_patterns(
        ".git", ".venv", "jobs", "build", "__pycache__", ".pytest_cache", "*.egg-info"))
    home = tmp_path / "home"
    home.mkdir()
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("CENSUS_", "STORAGE_"))}
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           *FRESH_CLONE_TESTS], cwd=clone, capture_output=True, text=True,
                          timeout=600, env=keep | {"HOME": str(home), "NO_PROXY": "127.0.0.1",
                                                   "no_proxy": "127.0.0.1"} | env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "2 passed" in done.stdout
    return done.stdout, home / ".cache" / "census"


@pytest.mark.slow
def test_a_fresh_clone_downloads_what_the_tests_need(tmp_path, gcs, uci_server):
    """The clean rows come from the bucket as `make course` gets them; UCI's original files,
    which the bucket does not have, from UCI's zip; both into the data cache of the home."""
    out, cache = run_tests_in_a_fresh_clone(tmp_path, {"STORAGE_EMULATOR_HOST": gcs,
                                                      "CENSUS_UCI_URL": uci_server.url})
    assert f"census data: the data cache, from {sources.GCS_URI}" in out
    assert (f"UCI's original files: downloaded from {uci_server.url} into the data cache "
            f"({cache / 'raw'})") in out
    assert uci_server.requests == ["/adult.zip"]
    assert {p.name for p in (cache / "raw").iterdir()} == set(sources.UCI_NAMES) | set(
        sources.GCS_NAMES) | {"SOURCE"}


@pytest.mark.slow
def test_a_fresh_clone_with_the_data_cached_needs_no_server(tmp_path, uci_dir, closed_port):
    """What `make course` left in the cache (here UCI's own files) is all the tests need."""
    raw = tmp_path / "cache" / "raw"
    raw.mkdir(parents=True)
    for name in sources.UCI_NAMES:
        shutil.copyfile(uci_dir / name, raw / name)
    (raw / "SOURCE").write_text(sources.UCI_ZIP_URL + "\n")
    nowhere = f"http://127.0.0.1:{closed_port}"
    out, _ = run_tests_in_a_fresh_clone(tmp_path, {
        "CENSUS_CACHE_DIR": str(tmp_path / "cache"), "STORAGE_EMULATOR_HOST": nowhere,
        "CENSUS_UCI_URL": f"{nowhere}/adult.zip"})
    assert f"UCI's original files: the data cache, from {sources.UCI_ZIP_URL} (cached in {raw})" \
        in out
    assert f"census data: the data cache, from {sources.UCI_ZIP_URL} (cached in {raw})" in out
