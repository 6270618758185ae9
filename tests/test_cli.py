import socket

from conftest import run_census


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_help_lists_the_commands():
    done = run_census("--help")
    assert done.returncode == 0
    assert all(c in done.stderr for c in ("census data", "census train", "census predict"))
    assert run_census("frobnicate").returncode == 2


def test_census_data_describes_the_local_files(uci_dir, tmp_path):
    done = run_census("data", "--data-dir", uci_dir, "--cache-dir", tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "32,561 rows" in done.stdout and "16,281 rows" in done.stdout
    assert (tmp_path / "train.csv").is_file()


def test_census_data_without_network_names_the_local_option(tmp_path):
    port = closed_port()
    env = {"CENSUS_DATA_DIR": "", "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}",
           "CENSUS_CACHE_DIR": str(tmp_path)}
    # Both remote sources point at a closed port on this machine.
    done = run_census("data", env=env | {"CENSUS_UCI_URL": f"http://127.0.0.1:{port}/a.zip"})
    assert done.returncode == 1
    assert "--data-dir" in done.stderr and "CENSUS_DATA_DIR" in done.stderr
    assert "Traceback" not in done.stderr


def test_train_flags_are_the_2017_ones_correctly_spelled():
    done = run_census("train", "--help")
    for flag in ("--train-files", "--eval-files", "--job-dir", "--train-steps", "--eval-steps",
                 "--train-batch-size", "--eval-batch-size", "--num-epochs", "--first-layer-size",
                 "--num-layers", "--scale-factor", "--embedding-size", "--learning-rate",
                 "--export-format", "--verbosity"):
        assert flag in done.stdout, flag
    bad = run_census("train", "--job-dir", "x", "--train-file", "a.csv")
    assert bad.returncode == 2 and "unrecognized arguments: --train-file" in bad.stderr
