"""Checks for chapter 1's exercises: reading UCI's raw files, and asking the data questions."""
from pathlib import Path

from census import data, schema
from census.course.checks.core import call, expect, passed
from census.schema import HIGH, LOW

__all__ = ["check_read_raw", "check_income_rate_by", "check_rows_with_missing"]



def _frame(value, what):
    import pandas as pd
    expect(isinstance(value, pd.DataFrame), f"{what} returned {type(value).__name__}, "
           "not a pandas DataFrame", "return the DataFrame itself (pd.read_csv returns one)")
    return value


def check_read_raw(read_raw, raw_path, clean_path):
    """read_raw(raw_path) must give the same table as the course's cleaning of that file."""
    import pandas as pd
    got = _frame(call(read_raw, raw_path, what="read_raw(path)"), "read_raw(path)")
    want = data.load_frame(clean_path)
    expect(list(got.columns) == list(schema.CSV_COLUMNS),
           f"the columns are {list(got.columns)[:4]}…, not the 15 census columns",
           "the files have no header row: pass names=schema.CSV_COLUMNS (and header=None)")
    first = str(got.iloc[0, 0]) if len(got) else ""
    expect(not first.startswith("|"), f"the first row starts with {first[:20]!r}",
           "the first line of adult.test is a note, not a person: skip it when it starts with '|'")
    expect(len(got) == len(want), f"{len(got):,} rows instead of {len(want):,}",
           "keep every person, and only people: skip the '|1x3 Cross validator' line and empty "
           "lines (the files end with one)")
    labels = set(got[schema.LABEL_COLUMN].astype(str))
    expect(not any(label.startswith(" ") for label in labels) and
           not got["workclass"].astype(str).str.startswith(" ").any(),
           f"the text values start with a space (' Private', ' {LOW}')",
           "fields are separated by ', ': read with skipinitialspace=True, or strip the values")
    expect(labels <= {f"{LOW}", HIGH}, f"the labels are {sorted(labels)}",
           f"in adult.test every label ends with a period ('{LOW}.'): remove it, "
           "e.g. .str.rstrip('.')")
    for column in schema.NUMERIC_COLUMNS:
        expect(pd.api.types.is_numeric_dtype(got[column]), f"{column} holds text, not numbers",
               "after skipping the note line, pandas can read the numeric columns as numbers")
    mismatch = [c for c in schema.CSV_COLUMNS
                if not (got[c].astype(str).to_numpy() == want[c].astype(str).to_numpy()).all()]
    expect(not mismatch, f"the values of {mismatch} differ from the cleaned file's",
           "compare your frame with data.load_frame(files.eval), row by row")
    passed(f"read_raw reads {len(got):,} people from {Path(raw_path).name}, "
           "clean labels, numbers as numbers")


def check_income_rate_by(income_rate_by, frame, column):
    """income_rate_by(frame, column): the share of >50K per value, highest first."""
    import pandas as pd
    got = call(income_rate_by, frame, column, what=f"income_rate_by(train, {column!r})")
    expect(isinstance(got, pd.Series), f"the answer is a {type(got).__name__}, not a Series",
           f"group by the column and take the mean of (label == '{HIGH}'): that is a Series")
    want = (frame[schema.LABEL_COLUMN] == HIGH).groupby(frame[column]).mean()
    want = want.sort_values(ascending=False)
    expect(set(got.index) == set(want.index),
           f"the index holds {list(got.index)[:3]}…, not the values of {column}",
           f"group by frame[{column!r}], so that each value of {column} is one row")
    aligned = got.reindex(want.index).astype(float)
    expect(not ((aligned - (1 - want)).abs() < 1e-9).all(), f"these are the shares of {LOW}",
           f"compare the label with '{HIGH}', not '{LOW}'")
    expect(aligned.max() <= 1, f"values go up to {aligned.max():g}: counts, not shares",
           "divide by the size of each group: .mean() of a True/False column is a share")
    expect(((aligned - want).abs() < 1e-9).all(), "the shares differ from the data's",
           f"the share of a group is (rows with label '{HIGH}') / (rows in the group)")
    expect(list(got.index) == list(want.index), "the values are not sorted, highest first",
           "end with .sort_values(ascending=False)")
    passed(f"income_rate_by(…, {column!r}): {want.index[0]} leads with "
           f"{want.iloc[0]:.0%} earning {HIGH}, {want.index[-1]} trails with {want.iloc[-1]:.0%}")


def check_rows_with_missing(rows_with_missing, frame):
    """rows_with_missing(frame): the people with a '?' in any column."""
    got = _frame(call(rows_with_missing, frame, what="rows_with_missing(train)"),
                 "rows_with_missing(train)")
    mask = (frame == schema.MISSING).any(axis=1)
    per_column = {c: int((frame[c] == schema.MISSING).sum()) for c in frame.columns}
    expect(len(got) not in [n for n in per_column.values() if n] or len(got) == mask.sum(),
           f"{len(got):,} rows: the people with '?' in one column only",
           "a person can miss workclass, occupation or native_country: test every column, "
           "e.g. (frame == '?').any(axis=1)")
    expect(len(got) != len(frame) - mask.sum(), f"{len(got):,} rows: the complete ones",
           "you kept the rows without '?': keep those with one")
    expect(len(got) == mask.sum(), f"{len(got):,} rows instead of {int(mask.sum()):,}",
           "select frame[mask], where mask is True for rows with '?' in any column")
    expect(list(got.columns) == list(frame.columns), "some columns were dropped",
           "return whole rows: every column of the frame")
    expect((got.index == frame.index[mask]).all(), "not the same rows as the data's",
           "select the rows with a boolean mask; do not reset or sort the index")
    passed(f"{len(got):,} of {len(frame):,} people miss at least one value "
           f"({len(got) / len(frame):.1%})")
