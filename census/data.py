"""Get the Census Income (UCI Adult) files, clean them into one canonical CSV format, and hold
out a validation split (chapter 1).

`fetch()` finds the two raw files (`adult.data` and `adult.test`: a local folder, the cache,
the public bucket or UCI's zip, as `census.sources` says), checks them, and writes the three
canonical CSV files the rest of the course reads:

    train.csv        adult.data, less the validation rows: what the model learns from
    validation.csv   10% of adult.data, the same share of each label (seed 2017): what every
                     choice is made on (evaluation during training, the best export, tuning)
    test.csv         adult.test: scored once, at the end, with the model chosen

The 2017 sample evaluated, exported its best model and tuned on adult.test itself; a test
split that has chosen the model no longer measures it, so the course keeps it for the end.

Both variants of the raw files (GCS's and UCI's) clean to the same canonical format:
one row per line, 15 fields joined by ", " (exactly like UCI's `adult.data`), labels
` <=50K` / ` >50K` without UCI's trailing period, `?` kept as a value, exact duplicate rows kept,
no header, LF line ends, every line (the last one too) ends with a newline, no blank lines.

Cleaning is strict: a row with the wrong number of fields, a non-numeric number or an unknown
label raises `DataError` naming the file and line. A course must never drop rows silently.
"""
from __future__ import annotations

import os
import random
import tempfile
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from census import sources
from census.schema import (
    CLASSES,
    CSV_COLUMNS,
    HIGH,
    LABEL_COLUMN,
    MISSING,
    NUMERIC_COLUMNS,
    UNUSED_COLUMNS,
)
from census.sources import GCS_NAMES, GCS_URI, UCI_NAMES, UCI_PAGE, UCI_ZIP_URL, DataError

_INT_COLUMNS = NUMERIC_COLUMNS + UNUSED_COLUMNS  # fields that must be whole numbers (fnlwgt too)


@dataclass(frozen=True)
class SplitReport:
    """What cleaning one raw file found and changed."""
    file: str
    rows: int
    header_lines: int
    trailing_periods: int
    blank_lines: int
    rows_with_missing: int
    missing: dict  # column -> number of `?` values (only columns that have some)
    duplicates: int  # extra copies of rows seen before (kept)
    labels: dict  # schema.CLASSES -> count
    check: str = "not checked"  # how the raw file was verified
    column_names: int = 0  # of the header lines, rows of column names (the rest: comments)
    byte_order_marks: int = 0
    crlf_line_ends: int = 0


@dataclass(frozen=True)
class CleaningReport:
    """What cleaning both raw files found (`train`: adult.data, before the validation rows
    are held out; `test`: adult.test); `str()` of it is a table, one column per file."""
    train: SplitReport
    test: SplitReport

    def __str__(self):
        t, e = self.train, self.test
        rows = [("", Path(t.file).name, Path(e.file).name)]
        rows += [(title, f"{getattr(t, attr):,}", f"{getattr(e, attr):,}") for title, attr in (
            ("rows", "rows"), ("header lines removed", "header_lines"),
            ("trailing periods removed", "trailing_periods"),
            ("blank lines removed", "blank_lines"), ("rows with ?", "rows_with_missing"))]
        rows += [(f"  ? in {col}", f"{t.missing.get(col, 0):,}", f"{e.missing.get(col, 0):,}")
                 for col in CSV_COLUMNS if col in t.missing or col in e.missing]
        rows.append(("duplicate rows (kept)", f"{t.duplicates:,}", f"{e.duplicates:,}"))
        rows += [(label, f"{t.labels[label]:,}", f"{e.labels[label]:,}") for label in CLASSES]
        width = max(len(r[0]) for r in rows)
        lines = [f"{a:<{width}}  {b:>14}  {c:>14}" for a, b, c in rows]
        lines += [f"check adult.data: {t.check}", f"check adult.test: {e.check}"]
        return "\n".join(lines)


@dataclass(frozen=True)
class CensusFiles:
    """What `fetch` returns: the paths of the canonical CSV files, and how they were made."""
    train: str  # canonical training CSV: adult.data less the validation rows
    validation: str  # canonical validation CSV: VALIDATION_SHARE of adult.data, stratified
    test: str  # canonical test CSV: adult.test
    source: str  # where the raw files came from
    report: CleaningReport = field(repr=False)


def cache_folder(cache_dir=None) -> Path:
    """The data cache: `cache_dir`, else `$CENSUS_CACHE_DIR`, else ~/.cache/census. Downloads
    land in its `raw/`, the canonical CSV files beside it."""
    return Path(cache_dir or os.environ.get("CENSUS_CACHE_DIR") or "~/.cache/census").expanduser()


def fetch(data_dir=None, cache_dir=None, *, gcs_uri=GCS_URI, uci_url=UCI_ZIP_URL,
          progress=True) -> CensusFiles:
    """Find, verify and clean the census files (chapter 1); return a CensusFiles with the
    paths of the canonical CSVs, in `cache_dir` (default `$CENSUS_CACHE_DIR` or
    ~/.cache/census). `data_dir` (default `$CENSUS_DATA_DIR`): a folder holding UCI's files;
    without one they are downloaded (`census.sources`), with a progress bar unless
    `progress=False`. Raises DataError for bad or missing files, DataUnavailable when no
    source can be reached, each naming what to do.
    """
    data_dir = data_dir or os.environ.get("CENSUS_DATA_DIR") or None
    cache = cache_folder(cache_dir)
    raw = cache / "raw"
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # e.g. an account whose home folder it may not write
        raise DataError(f"cannot create the data cache {cache} ({e.strerror}): name a folder "
                        "you can write with --cache-dir or CENSUS_CACHE_DIR") from None

    if data_dir:
        pair, source = sources.find_pair(Path(data_dir)), f"local dir {data_dir}"
        if pair is None:
            raise DataError(f"{data_dir} holds neither {' + '.join(UCI_NAMES)} nor "
                            f"{' + '.join(GCS_NAMES)}. Download them from {UCI_PAGE}.")
    else:
        pair, source = sources.cached_pair(raw)
        if pair is None:
            raw.mkdir(exist_ok=True)
            pair, source = sources.download(raw, gcs_uri, uci_url, progress)

    names = ("train.csv", "validation.csv", "test.csv")
    canonical = tuple(cache / name for name in names)
    try:
        checks = [sources.verify(path) for path in pair]
        # Written in a folder of this call's own, then moved into place file by file: another
        # process fetching into the same cache (two notebooks, parallel trials) never reads
        # a half-written file, nor loses one to this call's clean-up.
        with tempfile.TemporaryDirectory(dir=cache, prefix=".fetch-") as work:
            work = Path(work)
            data, test = clean(pair[0], work / "adult.data.csv"), clean(pair[1], work / names[2])
            split_validation(work / "adult.data.csv", work / names[0], work / names[1])
            for name, path in zip(names, canonical):
                os.replace(work / name, path)
    except DataError:
        for path in canonical + tuple(p for p in pair if p.parent == raw):
            path.unlink(missing_ok=True)  # leave nothing that a later fetch would trust
        raise
    report = CleaningReport(replace(data, check=checks[0]), replace(test, check=checks[1]))
    return CensusFiles(*map(str, canonical), source, report)


VALIDATION_SHARE = 0.1  # of adult.data, held out to choose on
SPLIT_SEED = 2017


def split_validation(src, train_dst, validation_dst, share=VALIDATION_SHARE, seed=SPLIT_SEED):
    """Hold out `share` of the rows of a canonical CSV file, the same share of each label,
    drawn with `random.Random(seed)` (the same rows on every machine), into `validation_dst`;
    the rest go to `train_dst`. Both keep the file's order. Returns (train rows, validation
    rows)."""
    lines = Path(src).read_text().splitlines(keepends=True)
    by_label = {}
    for number, line in enumerate(lines):
        by_label.setdefault(line.rstrip().rsplit(",", 1)[-1].strip(), []).append(number)
    rng, held_out = random.Random(seed), set()
    for label in sorted(by_label):
        numbers = by_label[label]
        held_out.update(rng.sample(numbers, round(share * len(numbers))))
    with sources.atomic_write(Path(train_dst), "w") as train, \
            sources.atomic_write(Path(validation_dst), "w") as validation:
        for number, line in enumerate(lines):
            (validation if number in held_out else train).write(line)
    return len(lines) - len(held_out), len(held_out)


def sample_rows(src, dst, rows, seed=0):
    """Write `rows` rows of a canonical CSV file, drawn at random with `random.Random(seed)`
    (the same rows on every machine) and kept in the file's order, to `dst`: a small training
    set, for the chapters that show a model memorising it (4 and 5). Returns `dst` as text.
    Raises ValueError if the file has fewer than `rows` rows."""
    lines = Path(src).read_text().splitlines(keepends=True)
    if not 0 < rows <= len(lines):
        raise ValueError(f"{src} has {len(lines):,} rows: cannot draw {rows:,} of them")
    chosen = sorted(random.Random(seed).sample(range(len(lines)), rows))
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    with sources.atomic_write(Path(dst), "w") as out:
        out.writelines(lines[i] for i in chosen)
    return str(dst)


def clean(src, dst, line_numbers=None) -> SplitReport:
    """Rewrite one raw file (UCI or bucket variant) as a canonical CSV file; report what changed.

    Removed and counted: a first line starting with `|` (UCI's `|1x3 Cross validator`) or
    naming the columns, blank lines, the trailing `.` of test labels, a byte order mark, CRLF
    line ends. Everything else is kept, duplicates included. `line_numbers`, a list if given,
    gets the line of `src` each row written came from.
    Raises DataError (file, line, problem) for a row with the wrong number of fields, a field
    that should be a whole number and is not, an empty field or an unknown label.
    """
    dst = Path(dst)
    rows = header = names = marks = crlf = periods = blanks = with_missing = 0
    missing, labels, seen = Counter(), Counter(), set()
    try:
        lines = _open_bytes(src)
    except OSError as e:
        raise DataError(f"{src}: cannot be read ({e.strerror or e})") from None
    with lines, sources.atomic_write(dst, "w") as out:
        for number, line in enumerate(_decoded(lines, src), start=1):
            marks += line.startswith("\ufeff")  # a byte order mark, from some editors
            crlf += line.endswith("\r\n")
            line = line.removeprefix("\ufeff").strip()
            if not line:
                blanks += 1
                continue
            fields = [value.strip() for value in line.split(",")]
            if number == 1 and (line.startswith("|") or _is_header(fields)):
                header += 1  # UCI's C4.5 comment line, or a row of column names
                names += not line.startswith("|")
                continue
            where = f"{src}, line {number}"
            if len(fields) != len(CSV_COLUMNS):
                raise DataError(f"{where}: {len(fields)} fields instead of {len(CSV_COLUMNS)}: "
                                f"{line[:80]!r}")
            if fields[-1].endswith("."):
                fields[-1] = fields[-1][:-1]
                periods += 1
            for column, value in zip(CSV_COLUMNS, fields):
                if not value:
                    raise DataError(f"{where}: {column} is empty")
                if column in _INT_COLUMNS and not (value.isascii() and value.isdigit()):
                    raise DataError(f"{where}: {column} is {value!r}, not a whole number")
            if fields[-1] not in CLASSES:
                raise DataError(f"{where}: label {fields[-1]!r} is neither of {CLASSES}")
            row = ", ".join(fields)
            out.write(row + "\n")
            if line_numbers is not None:
                line_numbers.append(number)
            rows += 1
            labels[fields[-1]] += 1
            missing.update(c for c, v in zip(CSV_COLUMNS, fields) if v == MISSING)
            with_missing += MISSING in fields
            seen.add(row)
    if rows == 0:
        dst.unlink()
        raise DataError(f"{src}: no data rows")
    return SplitReport(str(src), rows, header, periods, blanks, with_missing, dict(missing),
                       rows - len(seen), {label: labels[label] for label in CLASSES},
                       column_names=names, byte_order_marks=marks, crlf_line_ends=crlf)


def _is_header(fields):
    """A first row of column names: no whole number where the age is, no label at the end."""
    return not fields[0].isdigit() and fields[-1].rstrip(".") not in CLASSES


def _open_bytes(path):
    """A file, local or remote (`gs://…`, through TensorFlow's file systems), read as bytes."""
    if "://" in str(path):
        import tensorflow as tf
        if not tf.io.gfile.exists(str(path)):
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return tf.io.gfile.GFile(str(path), "rb")
    return open(path, "rb")


def _decoded(lines, src):
    """Each line as text, or a DataError naming the first line that is not UTF-8."""
    for number, line in enumerate(lines, start=1):
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(f"{src}, line {number}: not UTF-8 text ({e.reason})") from None


def check_training_files(paths, out_dir):
    """Every file the trainer will read, checked before its first step: with `clean`'s
    rules (`clean_training_files`), then with the op that reads it in training,
    `tf.io.decode_csv` (`census.inputs.check_rows`), row by row. Raises DataError naming the
    file and line of the first row either check refuses. Returns (paths to read, one note
    per cleaned file)."""
    usable, notes, origins = clean_training_files(paths, out_dir)
    for readable, (path, line_numbers) in zip(usable, origins):
        check_decodes(path, readable, line_numbers)
    return usable, notes


def clean_training_files(paths, out_dir):
    """The files the trainer will read, in plain Python (no TensorFlow op: a parameter-server
    worker does it before it starts serving). A file the trainer can read as it is (one row
    per line, 15 fields) is used as it is; one with a comment line (UCI's), a header row,
    blank lines, labels ending in '.', a byte order mark or CRLF line ends is cleaned into
    `out_dir` as `census data` cleans it (the 2017 trainer was given UCI's raw files), and
    that copy is read. A copy gets its name whole (written aside, then renamed): processes
    that clean the same files into the same folder never read half of one. Raises DataError
    naming the file and line of the first row `clean` refuses. Returns (paths to read, one
    note per cleaned file, (path, line numbers of the rows read) per file)."""
    usable, notes, origins = [], [], []
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    for n, path in enumerate(paths):
        cleaned = Path(out_dir) / f"{n}-{os.path.basename(str(path).rstrip('/'))}.csv"
        part = cleaned.with_name(f".{cleaned.name}.{os.getpid()}.part")
        line_numbers = []
        try:
            report = clean(path, part, line_numbers)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
        changes = [(report.header_lines - report.column_names, "comment line", "comment lines"),
                   (report.column_names, "header row of column names", "header rows"),
                   (report.byte_order_marks, "byte order mark", "byte order marks"),
                   (report.crlf_line_ends, "CRLF line end", "CRLF line ends"),
                   (report.blank_lines, "blank line", "blank lines"),
                   (report.trailing_periods, "label ending in '.'", "labels ending in '.'")]
        if any(count for count, _, _ in changes):
            found = ", ".join(f"{count:,} {one if count == 1 else many}"
                              for count, one, many in changes if count)
            notes.append(f"{path} has {found}: reading a copy cleaned as `census data` "
                         "cleans it")
            os.replace(part, cleaned)
            usable.append(str(cleaned))
        else:
            part.unlink()
            usable.append(str(path))
        origins.append((path, line_numbers))
    return usable, notes, origins


def check_decodes(path, readable, line_numbers, batch_rows=65536):
    """A DataError naming `path` and the line of the first row of `readable` (the file the
    trainer reads: `path` itself or its cleaned copy, whose rows came from `line_numbers`)
    that `tf.io.decode_csv` refuses; the rows read as the trainer reads them
    (`tf.data.TextLineDataset`)."""
    import tensorflow as tf

    from census import inputs
    done = 0
    for rows in tf.data.TextLineDataset(readable).batch(batch_rows):
        try:
            inputs.check_rows(rows)
        except inputs.RowError as e:
            raise DataError(f"{path}, line {line_numbers[done + e.index]}: {e} (the trainer's "
                            "tf.io.decode_csv refuses the row)") from None
        done += len(rows)


def load_frame(path):
    """Read a canonical CSV file into a pandas DataFrame for exploration.

    Columns are schema.CSV_COLUMNS; strings lose their leading space (labels are `<=50K` and
    `>50K`, missing values stay `?`); the numeric fields, fnlwgt included, are int64.
    """
    import pandas as pd

    dtypes = {column: "int64" if column in _INT_COLUMNS else str for column in CSV_COLUMNS}
    return pd.read_csv(path, header=None, names=list(CSV_COLUMNS), dtype=dtypes,
                       skipinitialspace=True, na_filter=False)


def describe(files: CensusFiles) -> str:
    """A few lines for humans: where the data came from, each split's size and balance, and
    where its file is."""
    lines = [f"Census Income (UCI Adult) from {files.source}"]
    for name in ("train", "validation", "test"):
        frame = load_frame(getattr(files, name))
        n, high = len(frame), int((frame[LABEL_COLUMN] == HIGH).sum())
        with_missing = int((frame == MISSING).any(axis=1).sum())
        lines.append(f"  {name + ':':<11} {n:>6,} rows, {high / n:.1%} {HIGH}, "
                     f"{with_missing:,} rows with ? ({with_missing / n:.1%})  -> "
                     f"{getattr(files, name)}")
    lines.append(f"  checks: adult.data {files.report.train.check}; adult.test "
                 f"{files.report.test.check}")
    return "\n".join(lines)
