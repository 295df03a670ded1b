"""Every option of every command and every BRAINLAB_* variable: a bad value is refused before any work,
with exit status 2 and one line that names it, never a traceback. And the registry that declares the
variables (brainlab.settings): what each reads as, its default, the one error type."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from brainlab import config, settings
from brainlab.cli import build_parser, main
from brainlab.errors import SettingError
from conftest import REPO

# {file}: a file, {missing}: nothing, {tmp}: a folder, {run}: a run folder with a model file, {data}: a folder
BAD_OPTIONS = [
    # (command line, what the message must name)
    ("doctor --data {missing}", "--data"),
    ("doctor --data {file}", "--data"),
    ("fetch-data --dataset nosuch", "--dataset"),
    ("fetch-data --to {file}", "--to"),
    ("fetch-data --to {file}/inside", "--to"),
    ("fetch-data --url ftp://mirror/x.zip", "--url"),
    ("fetch-data --source ftp", "--source"),
    ("sample --image-size 0", "--image-size"),
    ("sample --image-size 7", "--image-size"),
    ("sample --image-size 100000", "--image-size"),
    ("sample --image-size big", "--image-size"),
    ("audit --out {file}", "--out"),
    ("audit --out {tmp}/o --data {missing}", "--data"),
    ("audit --out {tmp}/o --seed -1", "--seed"),
    ("audit --out {tmp}/o --against {missing}", "--against"),
    ("audit --out {tmp}/o --against {file}", "--against"),
    ("audit --data {data}", "--out"),
    ("evaluate --run {missing} --data {data} --out {tmp}/o", "--run"),
    ("evaluate --run {file} --data {data} --out {tmp}/o", "--run"),
    ("evaluate --run {run} --data {missing} --out {tmp}/o", "--data"),
    ("evaluate --run {run} --data {data} --out {file}", "--out"),
    ("evaluate --run {run} --data {data} --manifest {missing} --out {tmp}/o", "--manifest"),
    ("evaluate --run {run} --data {data} --manifest {tmp} --out {tmp}/o", "--manifest"),
    ("evaluate --run {run} --data {data} --name official-test --out {tmp}/o", "--name"),
    ("train --recipe improved --out {tmp}/o --epochs 1", "--epochs"),
    ("train --recipe paper --out {tmp}/o --image-size 16", "--image-size"),
    ("train --recipe residual-cnn --out {tmp}/o --image-size 31", "--image-size"),
    ("train --recipe residual-cnn --out {tmp}/o --weights imagenet", "--weights"),
    ("train --recipe nosuch --out {tmp}/o", "--recipe"),
    ("train --recipe paper --out {tmp}/o --augmentation source-shift", "--augmentation"),
    ("train --recipe small-cnn --out {tmp}/o --preprocessing imagenet", "--preprocessing"),
    ("reproduce --out {tmp}/o --image-size 31", "--image-size"),
] + [(f"{command} {rest}", name) for command in ("train --recipe small-cnn", "reproduce") for rest, name in [
    ("--out {tmp}/o --epochs 0", "--epochs"),
    ("--out {tmp}/o --epochs -1", "--epochs"),
    ("--out {tmp}/o --epochs two", "--epochs"),
    ("--out {tmp}/o --image-size 7", "--image-size"),
    ("--out {tmp}/o --image-size 100000", "--image-size"),
    ("--out {tmp}/o --epochs 100000", "--epochs"),
    ("--out {tmp}/o --batch-size 0", "--batch-size"),
    ("--out {tmp}/o --batch-size 740201194115", "--batch-size"),
    ("--out {tmp}/o --seed -1", "--seed"),
    ("--out {tmp}/o --seed 4294967296", "--seed"),
    ("--out {file}", "--out"),
    ("--out {file}/run", "--out"),
    ("--out {tmp}/o --data {missing}", "--data"),
    ("--out {tmp}/o --data {file}", "--data"),
    ("--out {tmp}/o --manifest {missing}", "--manifest"),
    ("--out {tmp}/o --weights {missing}", "--weights"),
    ("--out {tmp}/o --split random", "--split"),
    ("--out {tmp}/o --preprocessing none", "--preprocessing"),
    ("--out {tmp}/o --augmentation heavy", "--augmentation"),
    ("--out {tmp}/o --crop brain", "--crop"),
]] + [
    ("cache --all", "--all"),
]

BAD_VARIABLES = [
    # (variable, value, the command it is given to)
    ("BRAINLAB_QUICK", "maybe", "cache"),
    ("BRAINLAB_VERBOSE", "loud", "cache"),
    ("BRAINLAB_CACHE", "{file}", "cache"),
    ("BRAINLAB_CACHE", "{file}/cache", "doctor"),
    ("BRAINLAB_RUNS", "{file}", "cache"),
    ("BRAINLAB_DATA", "{missing}", "sample"),
    ("BRAINLAB_EXTERNAL_DATA", "{file}", "cache"),
    ("BRAINLAB_CACHE_MAX_MB", "-5", "cache"),
    ("BRAINLAB_CACHE_MAX_MB", "nan", "cache"),
    ("BRAINLAB_WEIGHTS", "resnet", "cache"),
    ("BRAINLAB_PRECISION", "float8", "cache"),
]

# Options that take any text, so no value is bad for them.
FREE_TEXT = {("evaluate", "--name")}
# Maintainer commands whose options their own modules check (exit 1, one line; see test below).
OWN_CHECKS = {"build-exercises", "course-links"}


@pytest.fixture
def places(tmp_path) -> dict[str, str]:
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "data").mkdir()
    (tmp_path / "run" / "run").mkdir(parents=True)
    (tmp_path / "run" / "run" / "best.keras").write_bytes(b"PK")
    return {"file": str(tmp_path / "a-file"), "missing": str(tmp_path / "missing"), "tmp": str(tmp_path),
            "run": str(tmp_path / "run"), "data": str(tmp_path / "data")}


def run_main(argv: list[str], capsys) -> tuple[int, str]:
    """``brainlab ARGV`` in this process: its exit status and what it printed to stderr."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    return code, capsys.readouterr().err


def assert_refused(code: int, err: str, name: str, tmp: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert name in err, err
    assert not Path(tmp, "o").exists()  # refused before any work


@pytest.mark.parametrize("line, name", BAD_OPTIONS, ids=[line for line, _ in BAD_OPTIONS])
def test_a_bad_option_value_is_one_line_and_exit_status_2(line, name, places, capsys):
    code, err = run_main(line.format(**places).split(), capsys)
    assert_refused(code, err, name, places["tmp"])


@pytest.mark.parametrize("variable, value, command", BAD_VARIABLES,
                         ids=[f"{v}={value}" for v, value, _ in BAD_VARIABLES])
def test_a_bad_variable_is_one_line_and_exit_status_2(variable, value, command, places, capsys, monkeypatch):
    monkeypatch.setenv(variable, value.format(**places))
    code, err = run_main([command], capsys)
    assert_refused(code, err, variable, places["tmp"])


def test_an_unwritable_out_folder_is_refused_before_any_work(places, capsys, monkeypatch):
    """A read-only folder (as a non-root user meets it: root writes anywhere, so os.access says so here)."""
    locked = Path(places["tmp"], "locked")
    locked.mkdir()
    real = config.os.access
    monkeypatch.setattr(config.os, "access", lambda p, mode: False if Path(p) == locked else real(p, mode))
    for line in (f"evaluate --run {places['run']} --data {places['data']} --out {locked}",
                 f"train --recipe small-cnn --out {locked}/run", f"fetch-data --to {locked}/data"):
        code, err = run_main(line.split(), capsys)
        assert code == 2 and "not writable" in err and len(err.strip().splitlines()) == 1, err
    monkeypatch.setenv("BRAINLAB_CACHE", str(locked))
    code, err = run_main(["cache"], capsys)
    assert code == 2 and err.startswith(f"brainlab cache: BRAINLAB_CACHE {locked}: the folder is not writable"), err


def test_the_tables_cover_every_option_and_every_variable():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    options = {(command, action.option_strings[-1]) for command, p in sub.choices.items() if command not in OWN_CHECKS
               for action in p._actions if action.option_strings and action.nargs != 0}
    tested = {(line.split()[0], name) for line, name in BAD_OPTIONS}
    assert options - tested - FREE_TEXT == set()
    used = set(re.findall(r"BRAINLAB_[A-Z_]+", "".join(p.read_text() for p in (REPO / "brainlab").rglob("*.py"))))
    assert used <= set(settings.SETTINGS), "a BRAINLAB_* variable the registry does not declare"
    read_by_brainlab = {s.name for s in settings.SETTINGS.values() if s.read_by == settings.PACKAGE}
    assert read_by_brainlab == {v for v, _, _ in BAD_VARIABLES}


def test_maintainer_commands_refuse_bad_folders_in_one_line(tmp_path, capsys):
    for line in (f"build-exercises --solutions {tmp_path}/missing --out {tmp_path}/x",
                 f"course-links --root {tmp_path}/missing --check"):
        code, err = run_main(line.split(), capsys)
        assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_good_values_at_the_edges_pass_the_checks():
    args = build_parser().parse_args("train --recipe small-cnn --out o --epochs 1 --image-size 8 --batch-size 1 "
                                     "--seed 0".split())
    assert (args.epochs, args.image_size, args.batch_size, args.seed) == (1, 8, 1, 0)
    from brainlab import experiment

    assert experiment.default_settings("paper", image_size=32, seed=2**32 - 1).image_size == 32
    assert experiment.default_settings("improved", epochs=2).epochs == 2


# --------------------------------------------------------------------------- the registry
def test_each_kind_reads_its_values_and_unset_gives_the_default(monkeypatch, tmp_path):
    for name in settings.SETTINGS:
        monkeypatch.delenv(name, raising=False)
    assert {name: settings.get(name) for name in settings.SETTINGS} == {
        "BRAINLAB_DATA": None, "BRAINLAB_CACHE": None, "BRAINLAB_QUICK": False, "BRAINLAB_RUNS": None,
        "BRAINLAB_PRECISION": None, "BRAINLAB_VERBOSE": False, "BRAINLAB_EXTERNAL_DATA": None,
        "BRAINLAB_CACHE_MAX_MB": 4096, "BRAINLAB_WEIGHTS": None, "BRAINLAB_VENV": None}
    for text, on in [("1", True), (" Yes ", True), ("ON", True), ("true", True), ("0", False), ("off", False),
                     ("No", False), ("", False), ("  ", False)]:
        monkeypatch.setenv("BRAINLAB_QUICK", text)
        assert settings.get("BRAINLAB_QUICK") is on and config.quick_mode() is on, text
    monkeypatch.setenv("BRAINLAB_WEIGHTS", " Random")
    monkeypatch.setenv("BRAINLAB_PRECISION", "mixed_bfloat16")
    monkeypatch.setenv("BRAINLAB_CACHE_MAX_MB", "0.5")
    monkeypatch.setenv("BRAINLAB_RUNS", "~/runs-here")
    assert settings.get("BRAINLAB_WEIGHTS") == "random" and settings.get("BRAINLAB_PRECISION") == "mixed_bfloat16"
    assert settings.get("BRAINLAB_CACHE_MAX_MB") == 0.5
    assert settings.get("BRAINLAB_RUNS") == Path.home() / "runs-here" == config.runs_dir()
    with pytest.raises(KeyError, match="BRAINLAB_NOSUCH is not a brainlab setting"):
        settings.get("BRAINLAB_NOSUCH")


@pytest.mark.parametrize("name, text, message", [
    ("BRAINLAB_QUICK", "maybe", "BRAINLAB_QUICK='maybe' is neither on nor off: set it to 1 or 0, or unset it."),
    ("BRAINLAB_WEIGHTS", "resnet", "BRAINLAB_WEIGHTS='resnet': use imagenet, random, or leave it unset."),
    ("BRAINLAB_PRECISION", "float8",
     "BRAINLAB_PRECISION='float8' is not a precision brainlab knows: set it to one of float32, mixed_float16, "
     "mixed_bfloat16, or unset it to let brainlab choose for this machine."),
    # A dtype policy is named exactly as Keras spells it: the case matters (BRAINLAB_WEIGHTS=Random is read).
    ("BRAINLAB_PRECISION", "FLOAT32",
     "BRAINLAB_PRECISION='FLOAT32' is not a precision brainlab knows: set it to one of float32, mixed_float16, "
     "mixed_bfloat16, or unset it to let brainlab choose for this machine."),
    ("BRAINLAB_PRECISION", "Mixed_Float16",
     "BRAINLAB_PRECISION='Mixed_Float16' is not a precision brainlab knows: set it to one of float32, "
     "mixed_float16, mixed_bfloat16, or unset it to let brainlab choose for this machine."),
    ("BRAINLAB_CACHE_MAX_MB", "inf", "BRAINLAB_CACHE_MAX_MB='inf' is not a number of megabytes; set it to e.g. 4096, "
                                     "or unset it for the default"),
])
def test_a_value_a_setting_cannot_take_is_one_setting_error(name, text, message, monkeypatch):
    monkeypatch.setenv(name, text)
    with pytest.raises(SettingError) as info:
        settings.get(name)
    assert str(info.value) == message
    assert settings.get(name, strict=False) == settings.SETTINGS[name].default  # the lenient read, for import time


def test_a_folder_is_read_as_given_and_checked_on_disk_only_by_check(monkeypatch, tmp_path):
    (tmp_path / "a-file").write_text("x")
    monkeypatch.setenv("BRAINLAB_DATA", str(tmp_path / "missing"))
    assert settings.get("BRAINLAB_DATA") == config.data_env() == tmp_path / "missing"  # find_data says what to do
    with pytest.raises(SettingError, match=r"BRAINLAB_DATA .*missing does not exist: give an existing folder"):
        settings.check("BRAINLAB_DATA")
    with pytest.raises(SettingError, match="BRAINLAB_DATA"):
        config.check_environment()
    config.check_environment(skip=("BRAINLAB_DATA",))  # as doctor does, which reports a missing dataset itself
    monkeypatch.setenv("BRAINLAB_RUNS", str(tmp_path / "a-file" / "runs"))
    with pytest.raises(SettingError, match=r"BRAINLAB_RUNS .*cannot be created: .*a-file is a file, not a folder"):
        config.check_environment(skip=("BRAINLAB_DATA",))
    monkeypatch.setenv("BRAINLAB_RUNS", str(tmp_path / "new" / "runs"))  # may be created: it is written in
    assert settings.check("BRAINLAB_RUNS") == tmp_path / "new" / "runs" and not (tmp_path / "new").exists()


def test_a_variable_of_tasks_py_is_declared_and_left_to_tasks_py(monkeypatch, tmp_path):
    (tmp_path / "a-file").write_text("x")
    monkeypatch.setenv("BRAINLAB_VENV", str(tmp_path / "a-file"))  # tasks.py's business, not brainlab's
    assert settings.SETTINGS["BRAINLAB_VENV"].read_by == "tasks.py"
    config.check_environment()
    with pytest.raises(SettingError, match="BRAINLAB_VENV"):
        settings.check("BRAINLAB_VENV")


def test_the_precisions_the_setting_takes_are_keras_dtype_policies():
    import keras

    assert settings.SETTINGS["BRAINLAB_PRECISION"].kind.choices == settings.PRECISIONS
    assert [keras.DTypePolicy(name).name for name in settings.PRECISIONS] == list(settings.PRECISIONS)
    assert settings.SETTINGS["BRAINLAB_PRECISION"].kind.describe() == (
        "one of `float32`, `mixed_float16`, `mixed_bfloat16` (case matters)")
    assert settings.SETTINGS["BRAINLAB_WEIGHTS"].kind.describe() == "one of `imagenet`, `random`"


def test_check_folder_says_what_is_wrong(tmp_path):
    (tmp_path / "f").write_text("x")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    assert settings.check_folder(tmp_path, "--data") == tmp_path
    assert settings.check_folder(tmp_path / "new" / "deeper", "--out", write=True, exists=False) == tmp_path / "new" / "deeper"
    for path, kwargs, message in [(tmp_path / "f", {}, "is a file, not a folder"),
                                  (tmp_path / "nope", {}, "does not exist"),
                                  (tmp_path / "f" / "sub", {"exists": False}, "cannot be created: .*f is a file"),
                                  (tmp_path / "loop", {}, "is a link to nothing")]:
        with pytest.raises(SettingError, match=f"--x {path}.* {message}" if "cannot" not in message else message):
            settings.check_folder(path, "--x", **kwargs)
