"""census.pipelines: every variant yields the same rows; the shards hold every row once; the
timers count rows. No assertion on speed: timings belong to bench/input_pipeline.py."""
import itertools
from pathlib import Path

import pytest

from census import inputs, pipelines, schema


def rows_of(batches):
    """Every row of an iterable of (features, labels) batches, as tuples of Python values
    (columns in a fixed order, label last)."""
    rows = []
    for features, labels in batches:
        assert sorted(features) == sorted(schema.INPUT_COLUMNS)
        for name, column in features.items():
            assert column.dtype == schema.INPUT_DTYPES[name], name
        columns = [features[name].numpy().tolist() for name in schema.INPUT_COLUMNS]
        rows.extend(zip(*columns, labels.numpy().tolist()))
    return rows


@pytest.fixture(scope="module")
def shards(census_files, tmp_path_factory):
    """The validation split, twice over, in 3 shards (small: 6,512 rows)."""
    return pipelines.write_shards(census_files.validation, tmp_path_factory.mktemp("shards"),
                                  shards=3, copies=2)


@pytest.fixture(scope="module")
def reference(shards):
    """One pass over the shards, in file order, as census.inputs reads them."""
    return rows_of(inputs.input_fn(shards, num_epochs=1, shuffle=False, batch_size=100))


def count_lines(paths):
    return sum(len(Path(path).read_text().splitlines()) for path in paths)


def test_shards_hold_every_row_of_every_copy_once(census_files, shards):
    source = Path(census_files.validation).read_text().splitlines()
    written = [line for path in shards for line in Path(path).read_text().splitlines()]
    assert [p.rsplit("/", 1)[-1] for p in shards] == [
        "part-00000-of-00003.csv", "part-00001-of-00003.csv", "part-00002-of-00003.csv"]
    assert len(written) == 2 * len(source) == 6512
    assert sorted(written) == sorted(source * 2)
    sizes = [count_lines([p]) for p in shards]
    assert max(sizes) - min(sizes) <= 1  # dealt in turn: shards differ by a line at most


def test_rewriting_with_fewer_shards_leaves_no_stale_ones(census_files, tmp_path):
    pipelines.write_shards(census_files.validation, tmp_path, shards=4, copies=1)
    paths = pipelines.write_shards(census_files.validation, tmp_path, shards=2, copies=1)
    assert sorted(str(p) for p in tmp_path.iterdir()) == paths
    assert count_lines(paths) == 3256


def test_write_shards_refuses_nonsense(census_files, tmp_path):
    with pytest.raises(ValueError, match="at least 1"):
        pipelines.write_shards(census_files.validation, tmp_path, shards=0)


@pytest.mark.parametrize("name", [n for n in pipelines.VARIANTS if n != "list_files + interleave"])
def test_every_in_order_variant_yields_the_same_batches(name, shards, reference):
    batches = list(pipelines.VARIANTS[name](shards, 100, epochs=1))
    assert [int(labels.shape[0]) for _, labels in batches] == [100] * 65 + [12]
    assert rows_of(batches) == reference


@pytest.mark.parametrize("deterministic", [True, False])
def test_interleave_reads_every_row_once(shards, reference, deterministic):
    rows = rows_of(pipelines.interleaved(shards, 100, epochs=1, deterministic=deterministic))
    assert sorted(rows) == sorted(reference)


def test_interleave_takes_a_glob_pattern(shards, reference):
    pattern = shards[0].replace("part-00000-of-00003", "part-*")
    assert len(rows_of(pipelines.interleaved(pattern, 100, epochs=1))) == len(reference)


def test_python_feed_parses_like_decode_csv(census_files):
    """The same values and dtypes as census.inputs, on the first rows of the test split."""
    ours = next(pipelines.python_feed(census_files.test, 50))
    theirs = next(iter(inputs.input_fn(census_files.test, shuffle=False, batch_size=50)))
    assert rows_of([ours]) == rows_of([theirs])
    assert ours[0]["workclass"].numpy()[0] == b" Private"  # the file's leading space kept


def test_endless_variants_run_on_across_passes(census_files):
    """Without `epochs`, batches stay full across the end of the file: 3,256 rows, 40 each."""
    for name in ("Python loop", "+ prefetch = census.inputs", "list_files + interleave"):
        stream = pipelines.VARIANTS[name](census_files.validation, 40)
        sizes = [int(labels.shape[0]) for _, labels in itertools.islice(stream, 100)]
        assert sizes == [40] * 100, name


def test_timers_count_rows_and_steps(census_files):
    dataset = pipelines.prefetched(census_files.validation, 64)
    assert pipelines.rows_per_second(dataset, batches=5, warmup=1) > 0
    timeline = pipelines.timeline(dataset, steps=4, step_seconds=0.001)
    assert list(timeline.columns) == ["wait_start", "wait", "step_start", "step"]
    assert len(timeline) == 4 and (timeline["step"] >= 0.001).all()
    assert (timeline["step_start"] >= timeline["wait_start"] + timeline["wait"] - 1e-9).all()


def test_compare_gives_one_row_per_variant_and_the_python_loop_as_1(census_files):
    table = pipelines.compare(census_files.validation,
                              ["+ prefetch = census.inputs", "Python loop"],
                              batch_size=64, batches=3, repeats=1)
    assert list(table["variant"]) == ["+ prefetch = census.inputs", "Python loop"]
    assert table.loc[table["variant"] == "Python loop", "vs_python"].item() == 1.0
    assert (table["rows_per_s"] > 0).all()


def test_compare_trains_a_model(census_files):
    """The cheap model trains on every variant without error (a few steps each)."""
    net = pipelines.linear_model()
    table = pipelines.compare(census_files.validation, ["Python loop", "list_files + interleave"],
                              model=net, batch_size=64, batches=3, repeats=1)
    assert (table["rows_per_s"] > 0).all()
    assert int(net.optimizer.iterations) == 2 * (20 + 3)  # each variant: 20 warm-up + 3 steps
