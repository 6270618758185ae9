"""Checks for chapter 1's exercises: reading UCI's raw files, asking the data a question, and
holding out a validation split."""
from pathlib import Path

from census import data, schema
from census.course.checks.core import call, expect, passed
from census.schema import HIGH, LOW

__all__ = ["check_read_raw", "check_income_rate_by", "check_split_validation"]


def _frame(value, what, hint="return the DataFrame itself (pd.read_csv returns one)"):
    import pandas as pd
    expect(isinstance(value, pd.DataFrame), f"{what} returned {type(value).__name__}, "
           "not a pandas DataFrame", hint)
    return value


def check_read_raw(read_raw, raw_path, clean_path):
    """read_raw(raw_path) must give the same table as the course's cleaning of that file:
    `clean_path`, or a list of the cleaned files its rows went to (adult.data's: the training
    and validation splits), then compared whatever the order of the rows."""
    import pandas as pd
    got = _frame(call(read_raw, raw_path, what="read_raw(path)"), "read_raw(path)")
    parts = clean_path if isinstance(clean_path, (list, tuple)) else [clean_path]
    want = pd.concat([data.load_frame(p) for p in parts], ignore_index=True)
    in_order = len(parts) == 1
    expect(list(got.columns) == list(schema.CSV_COLUMNS),
           f"the columns are {list(got.columns)[:4]}…, not the 15 census columns",
           "the files have no header row: pandas cannot know the column names, you give them "
           "(the schema module lists them in file order)",
           "pass header=None and names=schema.CSV_COLUMNS to pd.read_csv")
    first = str(got.iloc[0, 0]) if len(got) else ""
    expect(not first.startswith("|"), f"the first row starts with {first[:20]!r}",
           "the first line of adult.test is a note, not a person: look at it, then leave it out",
           "read the first line (open(path).readline()); when it starts with '|', pass "
           "skiprows=1 to pd.read_csv")
    expect(len(got) == len(want), f"{len(got):,} rows instead of {len(want):,}",
           "keep every person, and only people: which lines of this file are not a person, "
           "and is the note line in both files?",
           "skip the '|1x3 Cross validator' line only where it is (skiprows=1 if the first "
           "line starts with '|', else 0); pd.read_csv already skips the empty last line")
    labels = set(got[schema.LABEL_COLUMN].astype(str))
    expect(not any(label.startswith(" ") for label in labels) and
           not got["workclass"].astype(str).str.startswith(" ").any(),
           f"the text values start with a space (' Private', ' {LOW}')",
           "fields are separated by ', ' (a comma and a space): pd.read_csv splits at the "
           "comma only; it has an option for the space that follows",
           "read with skipinitialspace=True (or strip every text column)")
    expect(labels <= {f"{LOW}", HIGH}, f"the labels are {sorted(labels)}",
           f"in adult.test every label ends with a period ('{LOW}.'): the two files must "
           "say the same thing the same way",
           "remove the period from the label column: frame[schema.LABEL_COLUMN].str.rstrip('.')")
    for column in schema.NUMERIC_COLUMNS:
        expect(pd.api.types.is_numeric_dtype(got[column]), f"{column} holds text, not numbers",
               "pandas reads a column as text when one of its rows is not a number: which "
               "line of the file is not a person?",
               "skip the note line (skiprows=1 for adult.test): pandas then reads the "
               "numeric columns as numbers")
    def values(frame, column):
        text = frame[column].astype(str).tolist()
        return text if in_order else sorted(text)
    mismatch = [c for c in schema.CSV_COLUMNS if values(got, c) != values(want, c)]
    if not mismatch and not in_order:  # the same values per column: now the same rows?
        rows = sorted(map(tuple, got.astype(str).to_numpy()))
        mismatch = [] if rows == sorted(map(tuple, want.astype(str).to_numpy())) else ["rows"]
    expect(not mismatch, f"the values of {mismatch} differ from the cleaned file's",
           "print a few rows of those columns next to data.load_frame(files.test)'s: "
           "what differs (a space, a '?', 39 against 39.0)?",
           "read with na_filter=False (keep '?' as it is) and let pandas choose the numeric "
           "types; compare your frame with data.load_frame(files.test), row by row")
    passed(f"read_raw reads {len(got):,} people from {Path(raw_path).name}, "
           "clean labels, numbers as numbers")


def check_income_rate_by(income_rate_by, frame, column):
    """income_rate_by(frame, column): the share of >50K per value, highest first."""
    import pandas as pd
    got = call(income_rate_by, frame, column, what=f"income_rate_by(train, {column!r})")
    expect(isinstance(got, pd.Series), f"the answer is a {type(got).__name__}, not a Series",
           f"one number per value of {column}: pandas' groupby gives a Series keyed by "
           "those values",
           f"(frame[schema.LABEL_COLUMN] == '{HIGH}').groupby(frame[column]).mean()")
    want = (frame[schema.LABEL_COLUMN] == HIGH).groupby(frame[column]).mean()
    want = want.sort_values(ascending=False)
    expect(set(got.index) == set(want.index),
           f"the index holds {list(got.index)[:3]}…, not the values of {column}",
           f"each value of {column} should be one row of the answer: what did you group by?",
           f"group by frame[{column!r}] (or frame.groupby(column))")
    aligned = got.reindex(want.index).astype(float)
    expect(not ((aligned - (1 - want)).abs() < 1e-9).all(), f"these are the shares of {LOW}",
           "which label is the one we count here?",
           f"compare the label with '{HIGH}', not '{LOW}'")
    expect(aligned.max() <= 1, f"values go up to {aligned.max():g}: counts, not shares",
           "a share is a count divided by the size of its group",
           "take .mean() of a True/False column: it is the share of True")
    expect(((aligned - want).abs() < 1e-9).all(), "the shares differ from the data's",
           f"the share of a group is (rows with label '{HIGH}') / (rows in the group): "
           "check one group by hand",
           f"(frame[schema.LABEL_COLUMN] == '{HIGH}').groupby(frame[column]).mean()")
    expect(list(got.index) == list(want.index), "the values are not sorted, highest first",
           "the highest share should come first: a Series can be ordered by its values",
           "end with .sort_values(ascending=False)")
    passed(f"income_rate_by(…, {column!r}): {want.index[0]} leads with "
           f"{want.iloc[0]:.0%} earning {HIGH}, {want.index[-1]} trails with {want.iloc[-1]:.0%}")


def check_split_validation(split_validation, frame, share=data.VALIDATION_SHARE,
                           seed=data.SPLIT_SEED):
    """split_validation(frame, share, seed) → (train, validation): `share` of the rows of each
    label held out, every row in exactly one part, its index and values kept; the same seed
    gives the same rows, another seed other rows."""
    import pandas as pd
    what = f"split_validation(frame, share={share}, seed={seed})"
    got = call(split_validation, frame.copy(), share, seed, what=what)
    expect(isinstance(got, tuple) and len(got) == 2,
           f"{what} returned {type(got).__name__}, not a pair",
           "return both parts, training part first: return train, validation")
    train, validation = (_frame(part, what, "return two DataFrames: rows of the frame")
                         for part in got)
    expect(list(train.columns) == list(frame.columns) and
           list(validation.columns) == list(frame.columns), "some columns were dropped",
           "hold out whole rows: every column of the frame stays")
    expect(len(validation) <= len(train),
           f"the validation part holds {len(validation):,} rows, the training part "
           f"{len(train):,}", "the pair is (train, validation): the held-out part is the "
           "small one")
    expect(not validation.index.duplicated().any() and not train.index.duplicated().any(),
           "some rows appear twice in one part",
           "sampling with replacement draws some rows twice",
           "sample without replacement (DataFrame.sample's default, replace=False)")
    labels = frame[schema.LABEL_COLUMN]
    def same_rows(part):
        if not part.index.isin(frame.index).all():
            return False
        want = frame.loc[part.index, list(frame.columns)]
        return want.astype(str).equals(part[list(frame.columns)].astype(str))
    expect(same_rows(validation) and same_rows(train),
           "the rows lost their index: a row's index no longer finds that row in the frame",
           "each row keeps its index: it is how you (and this check) tell the rows apart",
           "do not reset_index; DataFrame.sample and DataFrame.drop keep the index")
    expect(not set(train.index) & set(validation.index),
           f"{len(set(train.index) & set(validation.index)):,} rows are in both parts",
           "a held-out row must not be trained on: the training part is what is left",
           "train = frame.drop(validation.index)")
    expect(len(train) + len(validation) == len(frame),
           f"{len(train) + len(validation):,} rows in the two parts, not the frame's "
           f"{len(frame):,}", "every row of the frame goes to exactly one part",
           "train = frame.drop(validation.index) keeps every row that is not held out")
    want = {label: share * n for label, n in labels.value_counts().items()}
    held = validation[schema.LABEL_COLUMN].value_counts()
    expect(abs(len(validation) - share * len(frame)) <= len(want),
           f"{len(validation):,} rows held out, not {share:.0%} of {len(frame):,} "
           f"(about {share * len(frame):,.0f})", f"hold out a share of {share} of the rows",
           "DataFrame.sample(frac=share, …)")
    off = [label for label, n in want.items() if abs(held.get(label, 0) - n) > 1]
    counts = labels.value_counts()
    expect(not off, "the validation part holds " + " and ".join(
           f"{int(held.get(k, 0)):,} of the {counts[k]:,} {k} rows (not {want[k]:,.0f})"
           for k in off) + f": not {share:.0%} of each label",
           "a plain random sample gets each label's share only roughly: draw the held-out "
           "rows from each label separately",
           "frame.groupby(schema.LABEL_COLUMN).sample(frac=share, random_state=seed)")
    firsts = pd.Index([])
    for label in labels.value_counts().index:
        firsts = firsts.append(labels.index[labels == label][:int(held.get(label, 0))])
    expect(set(validation.index) != set(firsts),
           "the validation part holds the first rows of each label",
           "the first rows of a file are not a random draw (files are often sorted by "
           "date or source): sample at random",
           "DataFrame.sample(frac=share, random_state=seed) on each label's rows")
    again = call(split_validation, frame.copy(), share, seed, what=what)
    expect(isinstance(again, tuple) and len(again) == 2 and
           set(again[1].index) == set(validation.index),
           "called twice with the same seed, it holds out different rows",
           "the same seed must give the same rows on every call: what decides which rows "
           "are drawn?", "pass random_state=seed to sample (no random state of its own)")
    other = call(split_validation, frame.copy(), share, seed + 1,
                 what=f"split_validation(frame, share={share}, seed={seed + 1})")
    expect(isinstance(other, tuple) and len(other) == 2 and
           set(other[1].index) != set(validation.index),
           f"seed={seed + 1} holds out the same rows as seed={seed}",
           "another seed should draw other rows: is the seed used at all?",
           "pass random_state=seed to sample")
    rate = (validation[schema.LABEL_COLUMN] == HIGH).mean()
    passed(f"{len(validation):,} of {len(frame):,} rows held out "
           f"({len(validation) / len(frame):.1%}), {rate:.1%} {HIGH} as in the whole frame "
           f"({(labels == HIGH).mean():.1%}); the same seed gives the same rows")
