"""Checks for chapter 10's exercises: reading a batch job's errors files, and a job on CSV rows.

Both run the real local batch job (`census.batch.local`) on a few rows of the test split: the
first on JSON lines with mistakes put in, written so that its errors fill several files; the
second on the learner's own CSV rows, through a CSV export."""
import collections
import json
import os
import tempfile

from census.course.checks.core import CheckFailed, call, expect, passed

__all__ = ["check_refusals", "check_predict_csv_rows"]

ERROR_SHARD_ROWS = 2  # lines per file in the check's jobs: their errors fill several files


def _reason(message):
    """An errors file's message without the file and line it starts with."""
    return message.split(": ", 1)[-1]


def _mistakes(lines):
    """JSON lines of instances with mistakes put in: (lines, how many refused, the reason met
    most often). Three negative ages, two misspelled fields, one line cut short."""
    people = [json.loads(line) for line in lines]
    mixed = list(lines)
    for i in (1, 4, 7):
        mixed[i] = json.dumps(dict(people[i], age=-1))
    for i in (2, 9):
        typo = dict(people[i])
        typo["hours_per_weak"] = typo.pop("hours_per_week")
        mixed[i] = json.dumps(typo)
    mixed[5] = lines[5][:30]
    return mixed, 6, "field 'age' must be from 0 to 150, got -1"


def check_refusals(refusals, model_dir, csv_path):
    """refusals(folder) → (instances refused, the reason met most often, or None): read from
    every errors file of a batch job's folder. Runs two real jobs on the first rows of
    `csv_path` (a labelled CSV file of the test split): one with six mistakes put in (their
    errors in three files), one without."""
    from census.batch import layout, local
    with tempfile.TemporaryDirectory(prefix="check-refusals-") as scratch:
        clean = os.path.join(scratch, "clean.jsonl")
        local.write_instances(_head(csv_path, 14, scratch), clean, "json")
        with open(clean) as f:
            lines = f.read().splitlines()
        mixed, refused, reason = _mistakes(lines)
        path = os.path.join(scratch, "mixed.jsonl")
        with open(path, "w") as f:
            f.write("\n".join(mixed) + "\n")
        job = local.run(model_dir, [path], os.path.join(scratch, "out"),
                        shard_rows=ERROR_SHARD_ROWS)
        counted = collections.Counter(_reason(line["error"]["message"])
                                      for line in layout.read(job.folder, layout.ERRORS))
        if (job.errors, counted.most_common(1)[0][0]) != (refused, reason):  # the check's own
            raise RuntimeError(f"the check's job did not refuse what it should: {counted}")
        what = "refusals(folder)  # a job with 6 instances refused, in 3 errors files"
        got = call(refusals, job.folder, what=what)
        expect(isinstance(got, tuple) and len(got) == 2, f"it returned {_short(got)}",
               "the caller wants two things: how many, and the reason met most often",
               "return a pair: (count, reason)")
        count, most = got
        errors_files = len(layout.files(job.folder, layout.ERRORS))
        expect(count != job.predicted, f"the count is {count}: the instances predicted",
               "the refused instances are in the errors files, not the results files",
               f"read the files named {layout.ERRORS}-…, not {layout.RESULTS}-…")
        expect(count != ERROR_SHARD_ROWS, f"the count is {count}, of the first errors file "
               f"only; the job wrote {errors_files}",
               "a job writes as many errors files as it needs: look at all of them",
               f"read every file whose name starts with '{layout.ERRORS}-' "
               "(layout.files(folder, layout.ERRORS) lists them, in order)")
        expect(count == refused, f"the count is {count!r}; the job refused {refused}",
               "each line of an errors file is one refused instance",
               "count the lines of every errors file (blank lines aside)")
        expect(not (isinstance(most, str) and " line " in most.split(": ", 1)[0]),
               f"the reason is {_short(most)!r}",
               "each message starts with the file and line; the same reason on other lines "
               "makes other messages",
               "keep what follows the first ': ' of each message, then count those")
        expect(isinstance(most, str) and most.strip() == reason,
               f"the reason is {_short(most)!r}, not the one met most often",
               "count the reasons (collections.Counter), then take the most common",
               f"each line's reason is line['error']['message'] after its first ': '; "
               f"here {reason!r} comes 3 times")
        clean_job = local.run(model_dir, [clean], os.path.join(scratch, "out"))
        got = call(refusals, clean_job.folder,
                   what="refusals(folder)  # a job that refused nothing",
                   hint=("a job that refused nothing still writes one errors file, empty",
                         "with no errors, return (0, None): Counter().most_common(1) is []"))
        expect(got == (0, None), f"for a job that refused nothing it returned {_short(got)}",
               "nothing refused: no count, and no reason",
               "return (0, None) when the errors files are empty")
    passed(f"{refused} instances refused, read from {errors_files} errors files; most often: "
           f"{reason}")


def check_predict_csv_rows(predict_csv_rows, model_dir, csv_path):
    """predict_csv_rows(csv_path, model_dir, output_dir) → the BatchResult of a job on the
    rows of `csv_path` (a labelled CSV file of the test split) written as CSV rows for the
    CSV export at `model_dir`: the 14 fields as they are, without the label."""
    from census import instances
    from census.batch import layout, local
    with tempfile.TemporaryDirectory(prefix="check-csv-rows-") as scratch:
        rows = sum(1 for line in open(csv_path) if line.strip())
        output_dir = os.path.join(scratch, "out")
        what = f"predict_csv_rows(csv_path, model_dir, output_dir)  # {rows} rows"
        try:
            got = call(predict_csv_rows, csv_path, model_dir, output_dir, what=what)
        except CheckFailed as failure:
            cause = failure.__cause__
            expect(not (isinstance(cause, instances.PredictError) and "takes" in str(cause)),
                   failure.problem, "the job reads each kind of file its own way: which "
                   "kind are CSV rows?", "pass kind='text' to local.run")
            raise
        expect(isinstance(got, local.BatchResult), f"it returned {_short(got)}",
               "the caller wants what the job did", "return what local.run returns")
        expect(os.path.dirname(got.folder) == output_dir.rstrip("/"),
               f"the job's folder is {got.folder}, not under output_dir",
               "the job writes its folder where you tell it", "give local.run output_dir")
        reasons = [_reason(e["error"]["message"]) for e in layout.read(got.folder, layout.ERRORS)]
        expect(not any(r.startswith("15 fields") for r in reasons),
               f"{got.errors} of {got.rows} rows refused: {_short(reasons[:1])}",
               "a client does not send the answer it asks for",
               "drop the last field, the label: the CSV export takes 14 fields")
        expect(not any(r.startswith("13 fields") for r in reasons),
               f"{got.errors} of {got.rows} rows refused: {_short(reasons[:1])}",
               "the CSV export reads every field of the training files but the label",
               "keep fnlwgt: drop only the label, the last field")
        expect(not any(r.startswith("not valid JSON") for r in reasons),
               f"{got.errors} of {got.rows} rows refused: {_short(reasons[:1])}",
               "the job read your rows as JSON lines: tell it what kind of file it reads",
               "pass kind='text' to local.run: CSV rows, one per line")
        expect(got.rows == rows, f"the job read {got.rows} instances from {rows} rows",
               "one instance per row of the file: no header line, no blank line",
               "write each row as one line, and nothing else")
        expect(got.errors == 0, f"{got.errors} of {got.rows} rows refused: "
               f"{_short(reasons[:1])}", "read the errors file's message",
               "write each row's first 14 fields, as they are, joined by ','")
        labelled = local.write_instances(csv_path, os.path.join(scratch, "want.csv"), "text")
        want = {layout.key(instance) for instance, _ in labelled}
        differ = sum(layout.key(line["instance"]) not in want for line in layout.read(got.folder))
        expect(differ == 0, f"{differ} of {rows} instances differ from the rows of the file",
               "the model's vocabulary holds the values as the file writes them: ' Private', "
               "with its space",
               "keep each field as it is (no strip): the 14 fields joined by ','")
        score = layout.score(layout.read(got.folder), labelled)
    passed(f"{rows} CSV rows through the CSV export: {got.predicted} predicted, accuracy "
           f"{score['accuracy']:.3f}")


def _head(csv_path, rows, folder):
    """A file of the first `rows` lines of `csv_path`, in `folder`."""
    path = os.path.join(folder, "head.csv")
    with open(csv_path) as source, open(path, "w") as out:
        for _, line in zip(range(rows), source):
            out.write(line)
    return path


def _short(value, limit=120):
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[:limit] + "…"
