import numpy as np

from census import data, schema


def test_columns_and_serving_inputs():
    assert len(schema.CSV_COLUMNS) == 15 and schema.CSV_COLUMNS[-1] == schema.LABEL_COLUMN
    assert len(schema.INPUT_COLUMNS) == 13
    assert "fnlwgt" not in schema.INPUT_COLUMNS and schema.LABEL_COLUMN not in schema.INPUT_COLUMNS
    assert schema.LABELS == (" <=50K", " >50K")


def test_vocabularies_cover_every_value_in_the_data(census_files):
    for path in (census_files.train, census_files.validation, census_files.test):
        frame = data.load_frame(path)
        for column, vocabulary in schema.VOCABULARIES.items():
            assert set(frame[column]) <= set(vocabulary), column


def test_numeric_stats_match_the_training_split(census_files):
    frame = data.load_frame(census_files.train)
    for column, (mean, variance) in schema.NUMERIC_STATS.items():
        values = frame[column].to_numpy(dtype=float)
        if column in schema.LOG_COLUMNS:
            values = np.log1p(values)
        assert np.isclose(values.mean(), mean, atol=1e-3), column
        assert np.isclose(values.var(), variance, rtol=1e-4), column


def test_numeric_ranges_match_the_training_split_and_lie_in_the_valid_ranges(census_files):
    frame = data.load_frame(census_files.train)
    for column, (low, high) in schema.NUMERIC_RANGES.items():
        assert (frame[column].min(), frame[column].max()) == (low, high), column
        valid_low, valid_high = schema.VALID_RANGES[column]
        assert valid_low <= low <= high <= valid_high, column
    assert set(schema.NUMERIC_RANGES) == set(schema.VALID_RANGES) == set(schema.NUMERIC_COLUMNS)
