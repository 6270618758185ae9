"""The Census Income data in one place: columns, types, defaults, vocabularies, labels.

Every other module reads its facts about the data from here.
"""
# The 15 fields of a row, in file order (UCI's names, spelled as Python identifiers;
# `sex` is called `gender`, as in the 2017 sample).
CSV_COLUMNS = (
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status",
    "occupation", "relationship", "race", "gender", "capital_gain", "capital_loss",
    "hours_per_week", "native_country", "income_bracket",
)
LABEL_COLUMN = "income_bracket"
LABELS = (" <=50K", " >50K")  # class 0, class 1: the label strings of the files
CLASSES = tuple(label.strip() for label in LABELS)  # as cleaned frames hold them
LOW, HIGH = CLASSES  # "<=50K", ">50K": the one place the course writes them
MISSING = "?"  # UCI's marker for an unknown workclass, occupation or native country

NUMERIC_COLUMNS = ("age", "education_num", "capital_gain", "capital_loss", "hours_per_week")
UNUSED_COLUMNS = ("fnlwgt",)  # a sampling weight, not a property of the person

# Values documented in UCI's adult.names, plus "?" where the data uses it.
VOCABULARIES = {
    "workclass": ("Private", "Self-emp-not-inc", "Self-emp-inc", "Federal-gov", "Local-gov",
                  "State-gov", "Without-pay", "Never-worked", MISSING),
    "education": ("Bachelors", "Some-college", "11th", "HS-grad", "Prof-school", "Assoc-acdm",
                  "Assoc-voc", "9th", "7th-8th", "12th", "Masters", "1st-4th", "10th",
                  "Doctorate", "5th-6th", "Preschool"),
    "marital_status": ("Married-civ-spouse", "Divorced", "Never-married", "Separated", "Widowed",
                       "Married-spouse-absent", "Married-AF-spouse"),
    "occupation": ("Tech-support", "Craft-repair", "Other-service", "Sales", "Exec-managerial",
                   "Prof-specialty", "Handlers-cleaners", "Machine-op-inspct", "Adm-clerical",
                   "Farming-fishing", "Transport-moving", "Priv-house-serv", "Protective-serv",
                   "Armed-Forces", MISSING),
    "relationship": ("Wife", "Own-child", "Husband", "Not-in-family", "Other-relative",
                     "Unmarried"),
    "race": ("White", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other", "Black"),
    "gender": ("Female", "Male"),
    "native_country": ("United-States", "Cambodia", "England", "Puerto-Rico", "Canada", "Germany",
                       "Outlying-US(Guam-USVI-etc)", "India", "Japan", "Greece", "South", "China",
                       "Cuba", "Iran", "Honduras", "Philippines", "Italy", "Poland", "Jamaica",
                       "Vietnam", "Mexico", "Portugal", "Ireland", "France", "Dominican-Republic",
                       "Laos", "Ecuador", "Taiwan", "Haiti", "Columbia", "Hungary", "Guatemala",
                       "Nicaragua", "Scotland", "Thailand", "Yugoslavia", "El-Salvador",
                       "Trinadad&Tobago", "Peru", "Hong", "Holand-Netherlands", MISSING),
}

# What a served model takes: every column but the sampling weight and the label.
INPUT_COLUMNS = tuple(c for c in CSV_COLUMNS
                      if c not in UNUSED_COLUMNS and c != LABEL_COLUMN)
INPUT_DTYPES = {c: "float32" if c in NUMERIC_COLUMNS else "string" for c in INPUT_COLUMNS}

# decode_csv defaults, one per field: a number for numeric fields, a string otherwise.
CSV_DEFAULTS = [[0.0] if c in NUMERIC_COLUMNS + UNUSED_COLUMNS else [""] for c in CSV_COLUMNS]

AGE_BOUNDARIES = (18, 25, 30, 35, 40, 45, 50, 55, 60, 65)

# The range of each number in the training split (tests/test_schema.py recomputes it). The
# model clips its numeric inputs to these before anything else (and reads NaN as the mean), so
# that no float a client sends, however odd, can make it answer NaN or infinity.
NUMERIC_RANGES = {
    "age": (17.0, 90.0),
    "education_num": (1.0, 16.0),
    "capital_gain": (0.0, 99999.0),
    "capital_loss": (0.0, 4356.0),
    "hours_per_week": (1.0, 99.0),
}

# What a census answer can be at all: prediction refuses anything else (a negative age, more
# hours than a week has, an education code outside UCI's 1-16) instead of guessing.
VALID_RANGES = {
    "age": (0.0, 150.0),
    "education_num": (1.0, 16.0),
    "capital_gain": (0.0, float("inf")),
    "capital_loss": (0.0, float("inf")),
    "hours_per_week": (0.0, 168.0),
}

# Money columns are heavy-tailed: the model reads log(1 + x) of them.
LOG_COLUMNS = ("capital_gain", "capital_loss")
# Mean and variance of each numeric input over the training split, after the log above
# (tests/test_schema.py recomputes them from the data). The model normalises with these.
NUMERIC_STATS = {
    "age": (38.5283, 185.3462),
    "education_num": (10.0891, 6.6017),
    "capital_gain": (0.7319, 6.0061),
    "capital_loss": (0.3527, 2.5265),
    "hours_per_week": (40.4437, 152.5915),
}

# Numbers cut into ranges ("buckets"), so the model can learn thresholds that one weight per
# number cannot (the 2017 model bucketed age at these boundaries; the others are added here).
BUCKET_BOUNDARIES = {
    "age": AGE_BOUNDARIES,
    "capital_gain": (1, 3000, 4000, 5000, 6000, 7000, 7500, 10000, 15000, 30000),
    "capital_loss": (1, 1500, 1800, 1900, 2000, 2200, 2500),
    "hours_per_week": (20, 30, 35, 40, 41, 45, 50, 60),
    "education_num": tuple(range(2, 17)),
}
