"""`census course` (run the chapters, write their outputs, sync badges and setup cells, the
course map, JupyterLab) and `census exercises` (make exercises/ from solutions/, check, grade,
write the solutions' outputs).
"""
import json
import os
import sys
from pathlib import Path

from census import flags
from census.course.chapters import ALL_NAMES, NAMES
from census.course.environment import root, user_path

NBGRADER_SERVER_EXTENSIONS = ("nbgrader.server_extensions.formgrader",
                              "nbgrader.server_extensions.validate_assignment",
                              "nbgrader.server_extensions.assignment_list",
                              "nbgrader.server_extensions.course_list")
NBGRADER_LAB_EXTENSION = "@jupyter/nbgrader"  # Formgrader, Validate, the nbgrader menus
# JupyterLab 4 asks "Would you like to get notified about official Jupyter news?" while this
# setting is "none" (its default); "false" is its "Never" (the Notifications settings).
NEWS_SETTING = ("@jupyterlab/apputils-extension:notification", "fetchNews", "false")
IN_COURSE = "in the course's folder; a path you give is taken from the current folder"


def lab_command(port=8888, extra=()):
    """`jupyter lab` on the repository, loopback only, opening chapter 1; its kernels talk over
    Unix sockets (no TCP port per kernel). `extra`: Jupyter options, which win over these
    defaults (`--port 9999` or `--ServerApp.port=9999` replaces the port, rather than
    Jupyter refusing two values for it)."""
    given = {option.split("=", 1)[0].replace("--ServerApp.", "--")
             for option in extra if option.startswith("--")}
    defaults = {"--ip": "127.0.0.1", "--port": port, "--root_dir": root(),
                "--default_url": f"/lab/tree/notebooks/{NAMES[0]}.ipynb"}
    return [sys.executable, "-m", "jupyter", "lab",
            *(f"--ServerApp.{name[2:]}={value}" for name, value in defaults.items()
              if name not in given),
            *(["--KernelManager.transport=ipc"] if os.name == "posix" else []),
            *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []), *extra]


def learner_config():
    """build/lab/learner/: Jupyter config that turns nbgrader's server and JupyterLab
    extensions off and the Jupyter news prompt with them (`NEWS_SETTING`, a default in
    labconfig/default_setting_overrides.json: a learner's own setting still wins); rewritten
    each time. Returns its Path. Raises OSError if unwritable."""
    folder = root() / "build" / "lab" / "learner"
    (folder / "labconfig").mkdir(parents=True, exist_ok=True)
    server = {"ServerApp": {"jpserver_extensions": dict.fromkeys(NBGRADER_SERVER_EXTENSIONS,
                                                                 False)}}
    (folder / "jupyter_server_config.json").write_text(json.dumps(server, indent=1) + "\n")
    page = {"disabledExtensions": {NBGRADER_LAB_EXTENSION: True}}
    (folder / "labconfig" / "page_config.json").write_text(json.dumps(page, indent=1) + "\n")
    plugin, name, value = NEWS_SETTING
    defaults = {plugin: {name: value}}
    (folder / "labconfig" / "default_setting_overrides.json").write_text(
        json.dumps(defaults, indent=1) + "\n")
    return folder


def lab_environment(instructor=False, env=None):
    """The environment for `jupyter lab` (a copy of `env`, default os.environ): for learners,
    `learner_config()` first on JUPYTER_CONFIG_PATH, the highest-priority config (no file of
    the user's is changed); for instructors, unchanged (nbgrader as installed). Both find the
    2017 code's kernel where `make museum` made it (`census.course.museum`)."""
    from census.course import museum
    env = dict(os.environ if env is None else env)
    if museum.is_ready():
        env = museum.jupyter_path(env)
    if not instructor:
        paths = [str(learner_config()), env.get("JUPYTER_CONFIG_PATH", "")]
        env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(p for p in paths if p)
    return env


def add_commands(subparsers):
    """Add `census course` and `census exercises` to the `census` command's subparsers."""
    course = subparsers.add_parser("course", allow_abbrev=False,
                                   help="run the chapters, their outputs, JupyterLab")
    sub = course.add_subparsers(dest="action", required=True, metavar="ACTION")
    r = sub.add_parser("run", allow_abbrev=False,
                       help="execute the chapters with papermill into a build folder")
    r.add_argument("--smoke", action="store_true", help="the quick settings of each chapter")
    r.add_argument("--chapters", nargs="+", choices=ALL_NAMES, default=list(ALL_NAMES))
    r.add_argument("--build-dir", help=f"default: build/course {IN_COURSE}")
    r.add_argument("--job-root", help=f"the chapters' job dirs; default: jobs {IN_COURSE}")
    r.add_argument("--log-output", action="store_true", help="stream cell outputs")
    o = sub.add_parser("outputs", allow_abbrev=False,
                       help="full run, scrubbed outputs written into notebooks/")
    o.add_argument("--job-root", help=f"the chapters' job dirs; default: jobs {IN_COURSE}")
    o.add_argument("--chapters", nargs="+", choices=ALL_NAMES, default=list(ALL_NAMES))
    m = sub.add_parser("museum", allow_abbrev=False, help="make the 2017 code's environment "
                       "(.venv-2017: Python 3.11, TensorFlow 2.15, its Jupyter kernel)")
    m.add_argument("--python", help="the Python 3.11 to make it with (default: python3.11 on "
                   "PATH, or pyenv's)")
    sub.add_parser("sync", help="rewrite the badge and setup cell of every chapter and solution")
    sub.add_parser("map", help="print the README's course map")
    c = sub.add_parser("check", help="exit 1 if a committed chapter is not as `make outputs` "
                       "writes it (run metadata, order, errors, machine paths, sizes)")
    c.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                   help="default: every chapter in notebooks/")
    lab = sub.add_parser("lab", allow_abbrev=False, usage="census course lab [--port P] "
                         "[--instructor] [-- JUPYTER OPTIONS]",
                         help="JupyterLab on the course, on 127.0.0.1")
    lab.add_argument("--port", type=flags.PORT, default=8888)
    lab.add_argument("--instructor", action="store_true",
                     help="with nbgrader's Formgrader, Validate button and menus (hidden "
                          "from learners)")
    lab.add_argument("jupyter_options", nargs="*", metavar="-- JUPYTER OPTIONS",
                     help="options for `jupyter lab`, after `--`")
    course.set_defaults(run=run_course)

    exercises = subparsers.add_parser("exercises", allow_abbrev=False,
                                      help="make, check and grade the classroom exercises")
    sub = exercises.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub.add_parser("make", help="write exercises/ from solutions/")
    sub.add_parser("check", help="exit 1 if exercises/ differs from what `make` writes")
    g = sub.add_parser("grade", allow_abbrev=False,
                       help="run the checks of every submitted notebook")
    g.add_argument("folders", nargs="+", help="submissions: FOLDER/<student>/NN_name.ipynb")
    g.add_argument("--smoke", action="store_true", help="the notebooks' quick settings")
    g.add_argument("--jobs", type=flags.whole(1), default=1, help="notebooks run at a time")
    g.add_argument("--out-dir", help=f"executed copies and grades.csv; default: build/grading "
                   f"{IN_COURSE}")
    g.add_argument("--job-root", help=f"the submissions' job dirs; default: jobs/grading "
                   f"{IN_COURSE}")
    o = sub.add_parser("outputs", allow_abbrev=False,
                       help="run solutions/ and write them back with their outputs")
    o.add_argument("--chapters", nargs="+", choices=NAMES, default=list(NAMES))
    o.add_argument("--smoke", action="store_true",
                   help="the quick settings (default: full, the outputs learners read)")
    o.add_argument("--job-root", help=f"the solutions' job dirs; default: jobs/exercises "
                   f"{IN_COURSE}, as a learner's")
    exercises.set_defaults(run=run_exercises)


def run_course(args):
    """`census course ACTION`: run the chapters, write their outputs, check them, sync, print the
    map, or start JupyterLab."""
    from census.course import chapters, runner, sync
    if args.action == "check":  # before moving: the paths are the caller's
        sys.exit(runner.check(args.notebooks or [root() / "notebooks" / f"{name}.ipynb"
                                                 for name in ALL_NAMES]))
    job_root = user_path(getattr(args, "job_root", None), "jobs")  # before moving: the
    build_dir = user_path(getattr(args, "build_dir", None), "build/course")  # caller's paths
    os.chdir(root())
    if args.action == "run":
        seconds = runner.run(args.smoke, build_dir, job_root, args.chapters, args.log_output)
        print(runner.summary(seconds, build_dir, job_root))
    elif args.action == "outputs":
        seconds = runner.write_outputs(job_root, chapters=args.chapters)
        print(runner.summary(seconds, "build/outputs", job_root))
    elif args.action == "museum":
        from census.course import museum
        try:
            print(f"{museum.setup(python=args.python).name}: ready (kernel {museum.KERNEL!r})")
        except museum.MuseumError as error:
            sys.exit(f"census course museum: {error}")
    elif args.action == "sync":  # then `make exercises` carries the solutions' changes over
        sync.sync()
        sync.sync(folder="solutions")
    elif args.action == "map":
        print(chapters.course_map())
    elif args.action == "lab":
        os.execve(sys.executable, lab_command(args.port, args.jupyter_options),
                  lab_environment(args.instructor))


def run_exercises(args):
    """`census exercises ACTION`: make, check, grade or write the solutions' outputs; exit 1
    with one sentence if it cannot."""
    from census.course import exercises
    prog = f"census exercises {args.action}"
    try:
        if args.action == "make":
            changed = exercises.make()
            print(f"exercises/: {len(changed)} notebook(s) written" +
                  (f" ({', '.join(changed)})" if changed else ", all up to date"))
        elif args.action == "check":
            if changed := exercises.stale():
                sys.exit(f"exercises/ is out of date for {', '.join(changed)}: "
                         "run `make exercises`")
            print("exercises/ matches solutions/")
        elif args.action == "outputs":
            seconds = exercises.write_outputs(args.chapters, args.smoke,
                                              user_path(args.job_root, "jobs/exercises"))
            print(f"solutions/: {len(seconds)} notebook(s) written with their outputs in "
                  f"{sum(seconds.values()):.0f} s; run `make exercises` if a source changed")
        else:
            folders = [Path(f).resolve() for f in args.folders]
            out_dir = user_path(args.out_dir, "build/grading")
            results = exercises.grade(folders, args.smoke, user_path(args.job_root,
                                                                     "jobs/grading"),
                                      out_dir, args.jobs)
            print(exercises.report(results))
            print(f"\ngrades: {out_dir}/grades.csv; executed notebooks: {out_dir}/")
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        sys.exit(f"{prog}: {error}")
    except ImportError as error:  # nbgrader and papermill come with the `course` extra
        sys.exit(f"{prog}: needs {error.name}, which is not installed "
                 "(`pip install -e '.[course]'` in your checkout)")
