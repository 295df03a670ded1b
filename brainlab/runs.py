"""The run folder: its layout (:class:`RunFolder`), writes that a kill cannot leave half-done, one writer at a time.

A :class:`RunFolder` knows where every file of a run lies, whatever made it::

    fit's run_dir/           config.json, history.csv, best.keras, last.keras, metrics.json (the training
                             record), backup/ (only while unfinished), brainlab.lock (while in use)
    two stages (improved):   run_dir/1_head/ and run_dir/2_fine_tune/, each a fit run_dir
    brainlab train's out/    run/ (the training, one or two stages), evaluation.json, predictions.csv,
                             report.md, the figures, audit/ (the clean split); external/ when
                             `brainlab evaluate --out out/external` scored it on another dataset
    brainlab evaluate's out/ evaluation.json, predictions.csv, report.md, the figures

>>> folder = runs.RunFolder("runs/paper")
>>> folder.evaluation()["accuracy"]           # evaluation.json
>>> folder.training.history()                 # run/history.csv, one dict per epoch
>>> folder.best_model_path()                  # run/best.keras, or run/2_fine_tune/best.keras

Every file of a run folder is written under a temporary name beside it (``.partial-<pid>-<name>``)
and renamed into place (``os.replace``, atomic on one file system): a Ctrl-C or a killed kernel
leaves either the old file or the new one, never a broken one. The temporary names a killed
writer leaves are removed by the next process that takes the folder over.

>>> with runs.lock(folder.path, "training"):   # refused while another process works there
...     runs.write_json(folder.record_path, metrics)
...     runs.save_model(model, folder.best_path, epoch=3, monitor="val_loss", score=0.41)

A folder is taken with a lock file (``brainlab.lock``, the owner's pid, host and command). A lock
whose process is gone (killed, a restarted kernel) is stale: it is taken over, not obeyed.
"""
from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import shutil
import socket
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from brainlab.errors import BrainlabError

__all__ = ["AUDIT_DIR", "BACKUP_DIR", "BEST", "CONFIG", "EVALUATION", "EXTERNAL_DIR", "FINE_TUNE_DIR", "HEAD_DIR",
           "HISTORY", "LAST", "LOCK", "METRICS", "NAMES", "PARTIAL", "PREDICTIONS", "REPORT", "RunFolder",
           "RunFolderError", "TRAINING_DIR", "check_evaluation_out", "check_same_settings", "commit", "is_run_folder",
           "latest_backup", "lock", "partial_path", "read_history", "read_json", "read_stamp", "remove_backups",
           "save_backup", "save_model", "stamp_model", "write_history", "write_json", "write_text", "writing"]

# A training (train.fit): its settings, one row per epoch, the kept and the last model, and its record.
CONFIG, HISTORY, BEST, LAST, METRICS = "config.json", "history.csv", "best.keras", "last.keras", "metrics.json"
# An evaluation (brainlab train, reproduce, evaluate): its numbers, one row per image, the report.
EVALUATION, PREDICTIONS, REPORT = "evaluation.json", "predictions.csv", "report.md"
BACKUP_DIR = "backup"  # only while a training is unfinished: what a rerun resumes from
LOCK = "brainlab.lock"
HEAD_DIR, FINE_TUNE_DIR = "1_head", "2_fine_tune"  # the two stages of train.fine_tune_two_stage
TRAINING_DIR = "run"  # an experiment's training, inside its out/ folder
EXTERNAL_DIR = "external"  # an experiment's model scored on another dataset (brainlab evaluate --out OUT/external)
AUDIT_DIR = "audit"  # the audit an experiment on the clean split made its split from
# The names above that only a run folder uses: spelled here and nowhere else (tests/test_run_folder.py checks it).
NAMES = (CONFIG, HISTORY, BEST, LAST, METRICS, EVALUATION, PREDICTIONS, REPORT, BACKUP_DIR, LOCK, HEAD_DIR,
         FINE_TUNE_DIR)
PARTIAL = ".partial-"  # the prefix of a file still being written
_STAMP = "brainlab.json"  # an entry added to a saved .keras file: the epoch it is from and its score


class RunFolderError(BrainlabError):
    """A run folder is busy, holds another run, or holds files that do not fit together."""


# --------------------------------------------------------------------------- the layout
@dataclass(frozen=True)
class RunFolder:
    """A run folder: where each of its files lies (properties), and what it holds (methods that read).

    The same type serves every layout of the module docstring: ``RunFolder(out).training`` is the
    training inside an experiment, ``.head`` and ``.fine_tune`` the two stages of a training. The
    reads give None (or []) for a file that is not there yet, and a :class:`RunFolderError` naming
    the file for one that is damaged.
    """

    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    def __str__(self) -> str:
        return str(self.path)

    def __fspath__(self) -> str:  # open(), Path() and os functions take a RunFolder as its path
        return str(self.path)

    # ---- a training's files (train.fit)
    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def history_path(self) -> Path:
        return self.path / HISTORY

    @property
    def best_path(self) -> Path:
        return self.path / BEST

    @property
    def last_path(self) -> Path:
        return self.path / LAST

    @property
    def record_path(self) -> Path:
        """metrics.json, the training record: written last, so a training is finished once it is there."""
        return self.path / METRICS

    @property
    def backup_path(self) -> Path:
        return self.path / BACKUP_DIR

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK

    # ---- the other layouts: two stages, an experiment
    @property
    def head(self) -> RunFolder:
        return RunFolder(self.path / HEAD_DIR)

    @property
    def fine_tune(self) -> RunFolder:
        return RunFolder(self.path / FINE_TUNE_DIR)


    @property
    def training(self) -> RunFolder:
        """The training inside an experiment's folder (``run/``)."""
        return RunFolder(self.path / TRAINING_DIR)

    @property
    def external(self) -> RunFolder:
        """Where an experiment's model scored on another dataset is kept (``external/``)."""
        return RunFolder(self.path / EXTERNAL_DIR)

    @property
    def audit_path(self) -> Path:
        return self.path / AUDIT_DIR

    @property
    def evaluation_path(self) -> Path:
        """evaluation.json, where an evaluation's numbers are written."""
        return self.path / EVALUATION

    @property
    def predictions_path(self) -> Path:
        return self.path / PREDICTIONS

    @property
    def report_path(self) -> Path:
        return self.path / REPORT

    # ---- what it holds
    def is_two_stage(self) -> bool:
        """Whether the training here is in two stages (``1_head/``, ``2_fine_tune/``) rather than one."""
        return self.head.path.is_dir() or self.fine_tune.path.is_dir()

    def last_stage(self) -> RunFolder:
        """The training whose model is the result: ``2_fine_tune/`` of a two-stage training, else this folder."""
        return self.fine_tune if self.is_two_stage() else self

    def evaluation_file(self) -> Path | None:
        """The evaluation record on disk: evaluation.json, or else, in a folder written before the evaluation had
        a name of its own (both records were called metrics.json then), its metrics.json: a folder without
        config.json holds no training, so a metrics.json there is an evaluation. None when there is neither.
        The old name is only read, never written."""
        if self.evaluation_path.is_file():
            return self.evaluation_path
        legacy = self.path / METRICS
        return legacy if legacy.is_file() and not self.config_path.is_file() else None

    def config(self) -> dict | None:
        """config.json: the settings a training was started with."""
        return read_json(self.config_path)

    def history(self) -> list[dict]:
        """history.csv: one dict per finished epoch (:func:`read_history`)."""
        return read_history(self.history_path)

    def training_record(self) -> dict | None:
        """metrics.json of a training: best and last epoch, timings, how the run went."""
        return read_json(self.record_path)

    def evaluation(self) -> dict | None:
        """The evaluation's numbers (accuracy, split, per class...), from :meth:`evaluation_file`."""
        found = self.evaluation_file()
        return None if found is None else read_json(found)

    def predictions(self):
        """predictions.csv as a pandas DataFrame (one row per image: path, true, predicted, p(class)...); None if
        there is none."""
        import pandas as pd

        if not self.predictions_path.is_file():
            return None
        try:
            return pd.read_csv(self.predictions_path)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RunFolderError(f"{self.predictions_path} is damaged ({exc}): run the command that wrote it "
                                 "again (`brainlab train` with the same settings reuses the training and evaluates "
                                 "it again).") from None

    def best_model_path(self) -> Path | None:
        """The kept model (best.keras) of the run here: an experiment's training's or this training's, of its last
        stage when it has two; None when there is none yet."""
        for folder in (self.training, self):
            found = folder.last_stage().best_path
            if found.is_file():
                return found
        return None

    def finished(self) -> bool:
        """Whether the run here ran to its end, its last file written: an experiment's (or an evaluation's) record,
        else the training record of the training's last stage."""
        if self.evaluation_file() is not None:
            return True
        if self.training.path.is_dir():  # an experiment trained (or training) but not evaluated yet
            return False
        return self.last_stage().record_path.is_file()


# --------------------------------------------------------------------------- atomic writes
def partial_path(path) -> Path:
    """The temporary name ``path`` is written under: same folder, same ending (Keras and matplotlib read the format
    from it), and this process's id."""
    path = Path(path)
    return path.with_name(f"{PARTIAL}{os.getpid()}-{path.name}")


def commit(partial, path) -> None:
    """Give a completely written temporary file its real name, in one step (``os.replace``)."""
    with open(partial, "rb") as f:  # on disk before it takes the real name
        os.fsync(f.fileno())
    os.replace(partial, path)


@contextlib.contextmanager
def writing(path):
    """Yield a temporary name beside ``path``; once the block has written it, rename it to ``path``.

    If the block fails or is interrupted, the temporary file is removed and ``path`` is left as it was.
    """
    partial = partial_path(path)
    try:
        yield partial
        commit(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def write_text(path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`writing`)."""
    with writing(path) as partial:
        partial.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path, data) -> Path:
    return write_text(path, json.dumps(data, indent=2) + "\n")


def read_json(path) -> dict | None:
    """A JSON file of a run folder; None if there is none; a :class:`RunFolderError` if it is not JSON."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise RunFolderError(f"{path} is damaged ({exc}): delete {path.parent} (rm -r '{path.parent}') "
                             "to start that run over.") from None


def _remove_partials(folder) -> list[Path]:
    """Delete what killed writers left in ``folder`` and its backup/ (call it only while holding the lock)."""
    folder = Path(folder)
    left = [p for where in (folder, RunFolder(folder).backup_path) for p in where.glob(f"{PARTIAL}*")]
    for path in left:
        path.unlink(missing_ok=True)
    return left


# --------------------------------------------------------------------------- models and backups
def save_model(model, path, **stamp) -> Path:
    """``model.save`` to ``path`` atomically; ``stamp`` (epoch, monitor, score...) goes inside the file."""
    with writing(path) as partial:
        model.save(partial)
        stamp_model(partial, **stamp)
    return Path(path)


def stamp_model(path, **stamp) -> None:
    """Add ``stamp`` to a .keras file (one more entry of its zip, which Keras ignores when loading)."""
    if stamp:
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr(_STAMP, json.dumps(stamp))


def read_stamp(path) -> dict | None:
    """What :func:`save_model` stamped into a .keras file; None if the file is missing, not a zip or unstamped."""
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read(_STAMP))
    except (OSError, zipfile.BadZipFile, KeyError, ValueError):
        return None


def _backup_epoch(path: Path) -> int | None:
    """The epoch of ``backup/epoch-<N>.weights.h5``; None for any other name."""
    number = path.name.removeprefix("epoch-").removesuffix(".weights.h5")
    return int(number) if number.isdigit() and path.name.startswith("epoch-") else None


def save_backup(model, run_dir, epoch: int) -> Path:
    """Keep ``model``'s weights and optimizer state after ``epoch`` in ``backup/epoch-<epoch>.weights.h5``.

    The new file is complete before the older one goes: a kill leaves at least one whole backup.
    """
    folder = RunFolder(run_dir).backup_path
    folder.mkdir(exist_ok=True)
    path = folder / f"epoch-{epoch}.weights.h5"
    with writing(path) as partial:
        model.save_weights(partial)
    for older in folder.glob("epoch-*.weights.h5"):
        if older != path:
            older.unlink(missing_ok=True)
    return path


def latest_backup(run_dir) -> tuple[int, Path] | None:
    """(epoch, file) of the newest backup in ``run_dir/backup``, or None."""
    found = [(_backup_epoch(p), p) for p in RunFolder(run_dir).backup_path.glob("epoch-*.weights.h5")]
    found = [(epoch, p) for epoch, p in found if epoch is not None]
    return max(found) if found else None


def remove_backups(run_dir) -> None:
    shutil.rmtree(RunFolder(run_dir).backup_path, ignore_errors=True)


# --------------------------------------------------------------------------- history.csv
def _number(text: str):
    """A history.csv value; "NA" (or nothing) where a metric is missing (no validation data)."""
    return float("nan") if text in ("NA", "") else float(text)


def read_history(path) -> list[dict]:
    """The rows of history.csv (``epoch`` an int, the rest floats); [] if there is none."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        with path.open(newline="", encoding="utf-8") as f:
            return [{k: (int(v) if k == "epoch" else _number(v)) for k, v in row.items()} for row in csv.DictReader(f)]
    except (ValueError, TypeError) as exc:
        raise RunFolderError(f"{path} is damaged ({exc}): delete {path.parent} (rm -r '{path.parent}') "
                             "to start that run over.") from None


def write_history(path, rows: list[dict]) -> None:
    """Write history.csv atomically: ``epoch`` first, the other columns sorted, "NA" where a value is missing."""
    columns = ["epoch"] + sorted({key for row in rows for key in row} - {"epoch"})

    def text(value):
        return "NA" if value is None or (isinstance(value, float) and math.isnan(value)) else value

    with writing(path) as partial, partial.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="NA")
        writer.writeheader()
        writer.writerows({key: text(value) for key, value in row.items()} for row in rows)


# --------------------------------------------------------------------------- one writer per folder
_held: dict[Path, int] = {}  # folders this process holds, and how many times


def _process_started(pid: int) -> str | None:
    """When process ``pid`` started (Linux clock ticks since boot), to tell it from a later one with its pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _running(owner: dict) -> bool:
    """Whether the process named in a lock file still runs (on another host: assumed so)."""
    if owner.get("host") != socket.gethostname():
        return True
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would stop it there: assume it runs (the message says what to delete)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it runs, as another user
    started = owner.get("process_started")
    return started is None or _process_started(pid) in (None, started)


@contextlib.contextmanager
def lock(folder, doing: str = "training"):
    """Hold ``folder`` (created if missing) for this process while the block runs; refuse if another holds it.

    ``doing`` says what for, in the message another process gets. Taken again by the same process,
    it is simply held longer. Taking it removes what killed writers left (:func:`_remove_partials`);
    a folder it made is removed again if nothing was written in it.
    """
    folder = Path(folder)
    created = not folder.is_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunFolderError(f"{folder} cannot be made ({exc.strerror}): give a folder you can write to.") from None
    key = folder.resolve()
    if key in _held:
        _held[key] += 1
        try:
            yield RunFolder(folder).lock_path
        finally:
            _held[key] -= 1
        return
    path = RunFolder(folder).lock_path
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "process_started": _process_started(os.getpid()),
             "doing": doing, "since": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            _refuse_if_held(path)
            path.unlink(missing_ok=True)  # stale: its process is gone
    else:
        raise RunFolderError(f"{folder} is busy: other processes keep taking it ({path}). Use another folder.")
    with os.fdopen(fd, "w") as f:
        json.dump(owner, f)
    _held[key] = 1
    try:
        _remove_partials(folder)
        yield path
    finally:
        del _held[key]
        path.unlink(missing_ok=True)
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if still empty: a refused command leaves no empty folder behind


def _refuse_if_held(path: Path) -> None:
    """Raise the "busy" message if the lock file at ``path`` belongs to a process that still runs."""
    try:
        owner = json.loads(path.read_text())
        if not isinstance(owner, dict):
            raise ValueError("not a lock file")
        running = _running(owner)
    except FileNotFoundError:
        return
    except (OSError, ValueError):  # being written this instant, or left empty by a kill right after creating it
        try:
            running, owner = time.time() - path.stat().st_mtime < 10, {}
        except FileNotFoundError:
            return
    if running:
        raise RunFolderError(
            f"{path.parent} is busy: process {owner.get('pid', '?')} on {owner.get('host', '?')} has been "
            f"{owner.get('doing', 'working')} there since {owner.get('since', '?')} "
            f"(`{owner.get('command', '?')}`). Wait for it to end or stop it, or use another folder; "
            f"if no such process runs any more, delete {path}.")


# --------------------------------------------------------------------------- what a folder holds
def _brainlab_config(path: Path) -> bool:
    try:
        return "brainlab" in json.loads(path.read_text()).get("versions", {})
    except (OSError, ValueError, AttributeError, TypeError):
        return False


def is_run_folder(folder) -> bool:
    """Whether ``folder`` holds a training run: a ``fit`` run (config.json) or a ``run/`` of ``brainlab train``."""
    folder = RunFolder(folder)
    return any(_brainlab_config(inner.config_path)
               for inner in (folder, folder.training, folder.training.head, folder.training.fine_tune))


def check_evaluation_out(out, run_dir) -> None:
    """Refuse an evaluation's ``out`` that is ``run_dir``, inside it, or inside any other training run."""
    out, run_dir = Path(out), Path(run_dir)
    resolved, run = out.resolve(), run_dir.resolve()
    for folder in (resolved, *resolved.parents):
        if folder == run or is_run_folder(folder):
            what = "is the run folder" if resolved == folder else f"is inside the run folder {folder}"
            raise RunFolderError(
                f"--out {out} {what}: the evaluation's {EVALUATION}, {PREDICTIONS} and {REPORT} would overwrite "
                f"or mix with that run's own. Give a folder outside it, e.g. --out "
                f"{run.parent / (run.name + '-evaluation')}.")


def _show(value) -> str:
    return f"{value:g}" if isinstance(value, float) else repr(value)


def _differences(saved: dict, requested: dict) -> list[str]:
    """``"key: X there, Y now"`` for every requested setting the saved config does not match (one level deep).

    A nested ``name`` (the optimizer's, numbered by Keras: adam, adam_1 ...) is not a setting.
    """
    missing = object()
    found = []
    for key, wanted in requested.items():
        have = saved.get(key, missing)
        pairs = ([(f"{key}.{k}", have.get(k, missing), v) for k, v in wanted.items() if k != "name"]
                 if isinstance(wanted, dict) and isinstance(have, dict) else [(key, have, wanted)])
        found += [f"{name}: {'not recorded' if old is missing else _show(old)} there, {_show(new)} now"
                  for name, old, new in pairs if old != new]
    return found


def check_same_settings(run_dir, requested: dict) -> None:
    """Refuse to train into ``run_dir`` when the run there (or a stage of it) was started with other settings.

    Only the keys of ``requested`` are compared; the message names every difference and what to do.
    """
    run = RunFolder(run_dir)
    for folder in (run, run.head, run.fine_tune):
        saved = folder.config()
        if saved is None:
            continue
        # A run folder made before "experiment" (the data folder, the recipe...) was recorded has fit's own
        # settings only, and is compared on those.
        found = _differences(saved, {k: v for k, v in requested.items() if k != "experiment" or k in saved})
        if not found:
            continue
        if folder.record_path.is_file():
            what, fix = "a finished run trained", "to train it again"
        else:
            what, fix = ("an unfinished run started", "to start over (or run it again with the settings it was "
                         "started with, to resume it)")
        raise RunFolderError(f"{folder} holds {what} with other settings:\n  " + "\n  ".join(found)
                             + f"\nGoing on would mix two experiments. Use another output folder (--out, or "
                             f"run_dir=), or delete {folder} (rm -r '{folder}') {fix}.")
