"""Run the course's notebooks top to bottom, each in a fresh kernel, and keep a table of how long they took.

    python3 tasks.py course                       # every notebooks/NN_*.ipynb, quick mode
    python3 tasks.py course --full --data DIR 03  # notebook 03 in full mode on the dataset in DIR
    python3 tasks.py course --full --record 06    # ... and keep its outputs in notebooks/06_*.ipynb
    .venv/bin/python tools/run_course.py --stamp  # stamp outputs already in notebooks/, running nothing

Each notebook runs with nbclient in its own folder (``BRAINLAB_QUICK=0`` with ``--full``, else ``1``;
``BRAINLAB_DATA`` from ``--data`` or the environment). One line per notebook says its wall time, the
kernel's peak memory and whether every cell ran; the ``Headline: ...`` lines it printed (from
``brainlab.course.headline``) are its headline numbers. The rows go to ``docs/course-runs.json``,
merged by (notebook, mode, machine) so runs made at different times add up, and
``docs/course-runs.md`` is rendered from it. A row whose headline says the ResNet50 started from
random weights (``weights=random-start ...``) is timing only: its numbers are not shown. In full mode on
a machine where the ImageNet weights are neither cached nor downloadable, the kernels get
``BRAINLAB_WEIGHTS=random`` (see ``brainlab.models.default_weights``), so those notebooks still run, for timing.

``--record`` writes a successful run's outputs back into the notebook, each code cell stamped with
the SHA-256 of its source (``metadata.brainlab.source_sha``) so that tests/test_recorded_outputs.py
notices an output older than its cell. Cells tagged ``needs-imagenet`` show results that depend on the
ResNet50's ImageNet weights: a timing-only run (random start) records no output for them.
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
MAX_NOTEBOOK_BYTES = 3 * 2**20  # a notebook with recorded outputs stays under 3 MB
IMAGENET_TAG = "needs-imagenet"
CHECK_OUTPUT = "# NBVAL_CHECK_OUTPUT"  # cells nbval compares in quick mode
HEADLINE = re.compile(r"^Headline: (.*)$", flags=re.M)
RANDOM_START = re.compile(r"\bweights=random-start\b")  # a headline of cells that ran from random ResNet50 weights
TIMING_ONLY = "timing only: ImageNet weights not available"
GIB = 2**30
# An absolute path of two or more folders, which no recorded output may show.
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~$])/(?:[A-Za-z0-9_.+-]+/){2,}")
# The folders a reader has under another name: each setting's value becomes the setting's name.
PLACEHOLDERS = ("BRAINLAB_DATA", "BRAINLAB_EXTERNAL_DATA", "BRAINLAB_RUNS", "BRAINLAB_CACHE")


# --------------------------------------------------------------------------- stamps and the staleness check
def source_sha(source: str) -> str:
    """The first 12 hex digits of the SHA-256 of a cell's source: what its recorded output was made from."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]


def stamp(cell) -> bool:
    """Stamp a code cell with its source's hash; True when the stamp changed."""
    info = cell.metadata.setdefault("brainlab", {})
    new = source_sha(cell.source)
    changed = info.get("source_sha") != new
    info["source_sha"] = new
    return changed


def output_problems(path: Path, outputs_allowed: bool = True) -> list[str]:
    """What is wrong with the outputs a notebook carries, one sentence each (an empty list: nothing).

    With ``outputs_allowed`` (notebooks/): every code cell with outputs carries the hash of the
    source that made them, cells tagged ``needs-imagenet`` have none unless the notebook was recorded
    from a run with the ImageNet weights, and the file is under
    3 MB. Without (solutions/, exercises/): no cell has outputs at all.
    """
    nb = nbformat.read(path, as_version=4)
    problems = []
    size = Path(path).stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        problems.append(f"{size / 2**20:.1f} MB, over the 3 MB a notebook with outputs may take: record it again "
                        "(--record shrinks its images) or show fewer figures")
    imagenet_run = nb.metadata.get("brainlab", {}).get("recorded", {}).get("timing_only") is False
    for number, cell in enumerate(nb.cells, start=1):
        if cell.cell_type != "code" or not cell.get("outputs"):
            continue
        recorded = cell.metadata.get("brainlab", {}).get("source_sha")
        if not outputs_allowed:
            problems.append(f"cell {number} has outputs: this folder is committed without any (clear them and save)")
        elif IMAGENET_TAG in cell.metadata.get("tags", []) and not imagenet_run:
            problems.append(f"cell {number} is tagged {IMAGENET_TAG} (its output depends on the ImageNet weights) "
                            "but the notebook was not recorded from a run that had them: clear its outputs")
        elif recorded is None:
            problems.append(f"cell {number} has outputs but no source stamp: record the notebook again "
                            "(python3 tasks.py course --record) or, for outputs you re-ran by hand, stamp them "
                            "(.venv/bin/python tools/run_course.py --stamp)")
        elif recorded != source_sha(cell.source):
            problems.append(f"cell {number} was changed after its outputs were recorded (stamp {recorded}, source "
                            f"now {source_sha(cell.source)}): record the notebook again or clear the cell's outputs")
        if outputs_allowed:
            shown = sorted({m.group(0) for m in ABSOLUTE_PATH.finditer(printed_text(cell.outputs))})
            if shown:
                problems.append(f"cell {number} shows this machine's folders ({', '.join(shown[:3])}): record it "
                                "again (the recorder writes $BRAINLAB_DATA, $BRAINLAB_RUNS, ~ ... instead)")
    return problems


def printed_text(outputs) -> str:
    """All the text a reader sees in a cell's outputs (streams, plain text, HTML, Markdown; not images)."""
    parts = []
    for out in outputs:
        parts.append("".join(out.get("text", "")))
        for mime in ("text/plain", "text/html", "text/markdown"):
            value = out.get("data", {}).get(mime, "")
            parts.append("".join(value) if isinstance(value, list) else value)
    return "\n".join(parts)


# --------------------------------------------------------------------------- the machine
def machine_info() -> dict:
    """The CPU, logical cores, GPU and versions the notebooks run with (the kernels use this Python)."""
    cpu = platform.processor() or platform.machine()
    try:
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), flags=re.M)
        cpu = found.group(1).strip() if found else cpu
    except OSError:
        pass
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
        gpus = [line.split(" (UUID")[0] for line in listed.stdout.splitlines() if line.strip()]
        gpu = "; ".join(gpus) if listed.returncode == 0 and gpus else "none"
    except (OSError, subprocess.SubprocessError):
        gpu = "none"

    def version(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu, "python": platform.python_version(),
            "tensorflow": version("tensorflow"), "keras": version("keras"), "date": dt.date.today().isoformat()}


def machine_name(info: dict) -> str:
    """One line naming a machine: rows are kept per machine."""
    return f"{info['cpu']}, {info['cores']} logical cores, GPU: {info['gpu']}"


# --------------------------------------------------------------------------- running one notebook
@dataclass
class Run:
    """What running one notebook gave: its row of the table, and the executed notebook."""

    notebook: str
    mode: str
    seconds: float = 0.0
    peak_bytes: int = 0
    status: str = "ok"
    headlines: list = field(default_factory=list)
    executed: object = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def timing_only(self) -> bool:
        return any(RANDOM_START.search(line) for line in self.headlines)


class PeakMemory(threading.Thread):
    """Samples the resident memory of a process and its children until stopped; ``peak`` in bytes."""

    def __init__(self, pid: int, every: float = 0.25):
        super().__init__(daemon=True)
        self.pid, self.every, self.peak = pid, every, 0
        self._halt = threading.Event()

    def run(self):
        try:
            import psutil
        except ImportError:  # the kernel's own peak (VmHWM), read at the end, has to do
            return
        while not self._halt.is_set():
            try:
                process = psutil.Process(self.pid)
                tree = [process, *process.children(recursive=True)]
                total = 0
                for p in tree:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, total)
            except psutil.Error:
                return
            self._halt.wait(self.every)

    def stop(self) -> int:
        """Stop sampling; the peak seen, or the process's own high-water mark if larger."""
        self._halt.set()
        self.join(timeout=5)
        try:
            hwm = re.search(r"^VmHWM:\s+(\d+) kB", Path(f"/proc/{self.pid}/status").read_text(), flags=re.M)
            if hwm:
                self.peak = max(self.peak, int(hwm.group(1)) * 1024)
        except OSError:
            pass
        return self.peak


def headlines_of(nb) -> list[str]:
    """Every ``Headline: ...`` line the notebook printed, in order (without the ``Headline: ``)."""
    lines = []
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.get("output_type") == "stream":
                lines += [m.group(1).strip() for m in HEADLINE.finditer(out.get("text", ""))]
    return lines


def _local_kernel_manager():
    """A kernel manager class that talks to the kernel over local sockets (IPC) where the system has them.

    No network ports are opened, and the kernel has no reason to warn about unencrypted TCP.
    """
    from jupyter_client import AsyncKernelManager

    if os.name != "posix":
        return AsyncKernelManager

    class LocalSocketKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            # An absolute path prefix for the socket files: the kernel runs in the notebook's folder.
            self.socket_folder = Path(tempfile.mkdtemp(prefix="brainlab-kernel-"))
            super().__init__(transport="ipc", ip=str(self.socket_folder / "kernel"), **kwargs)

        async def _async_cleanup_resources(self, restart: bool = False) -> None:
            await super()._async_cleanup_resources(restart=restart)
            if not restart:
                shutil.rmtree(self.socket_folder, ignore_errors=True)

    return LocalSocketKernelManager


def run_notebook(path: Path, mode: str, env: dict, timeout: float | None, progress_every: float = 60.0) -> Run:
    """Execute ``path`` in a fresh kernel in its own folder; the row for it (failures are rows too)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    result = Run(path.stem, mode, executed=nb)
    current = {"index": 0}
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=False,
                            kernel_manager_class=_local_kernel_manager(),
                            resources={"metadata": {"path": str(path.parent)}},
                            on_cell_start=lambda cell, cell_index: current.update(index=cell_index))
    start = time.perf_counter()
    done = threading.Event()

    def report_progress():
        while not done.wait(progress_every):
            print(f"[course]   {path.stem}: cell {current['index'] + 1} of {len(nb.cells)}, "
                  f"{time.perf_counter() - start:.0f} s", flush=True)

    threading.Thread(target=report_progress, daemon=True).start()
    sampler = None
    try:
        with client.setup_kernel(env=env):
            sampler = PeakMemory(client.km.provisioner.pid)
            sampler.start()
            info = client.wait_for_reply(client.kc.kernel_info())
            if info and "language_info" in info["content"]:
                nb.metadata["language_info"] = info["content"]["language_info"]
            try:
                for index, cell in enumerate(nb.cells):
                    client.execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
            except CellTimeoutError:
                result.status = f"failed: timeout after {timeout:g} s in cell {current['index'] + 1}"
            except DeadKernelError:
                result.status = f"failed: DeadKernelError in cell {current['index'] + 1} (the kernel died; out of memory?)"
            except CellExecutionError as exc:
                result.status = f"failed: {exc.ename} in cell {current['index'] + 1}"
            finally:
                result.peak_bytes = sampler.stop()
    except Exception as exc:  # the kernel did not start, or died between cells
        result.status = f"failed: {type(exc).__name__} ({exc})".splitlines()[0][:200]
        if sampler is not None:
            result.peak_bytes = sampler.stop()
    finally:
        done.set()
        result.seconds = time.perf_counter() - start
    result.headlines = headlines_of(nb)
    return result


# --------------------------------------------------------------------------- recording outputs
def shrink_images(nb, limit: int = MAX_NOTEBOOK_BYTES) -> int:
    """Re-encode the PNG outputs of ``nb`` smaller (fewer colours, then fewer pixels) until it fits ``limit``.

    Returns the notebook's size in bytes afterwards.
    """
    from PIL import Image

    from brainlab.course import notebook_bytes

    def pngs():
        for cell in nb.cells:
            for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
                if "image/png" in out.get("data", {}):
                    yield out["data"]

    for scale in (1.0, 0.8, 0.65, 0.5):
        size = len(notebook_bytes(nb))
        if size <= limit:
            return size
        for data in pngs():
            image = Image.open(io.BytesIO(base64.b64decode(data["image/png"])))
            if scale < 1:
                image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                                     Image.Resampling.LANCZOS)
            image = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", optimize=True)
            if len(buffer.getvalue()) < len(base64.b64decode(data["image/png"])) or scale < 1:
                data["image/png"] = base64.b64encode(buffer.getvalue()).decode("ascii")
    return len(notebook_bytes(nb))


def _text(outputs) -> str:
    return "".join(out.get("text", "") for out in outputs if out.get("output_type") == "stream")


def portable(outputs, data: str | None = None, env: dict | None = None) -> None:
    """Replace this machine's folders in printed text by what a reader has.

    The dataset becomes ``$BRAINLAB_DATA`` (``data``, or the setting in ``env``), and so do the second
    dataset, the runs and the cache folders (``$BRAINLAB_EXTERNAL_DATA``, ``$BRAINLAB_RUNS``,
    ``$BRAINLAB_CACHE``, the default cache folder too); the course folder becomes ``..`` (the notebooks run
    in notebooks/), the home folder ``~``. Any other absolute path keeps only its last part (``…/file.py``).
    """
    env = dict(env or {})
    if data:
        env["BRAINLAB_DATA"] = data
    places = {}
    for name in PLACEHOLDERS:
        if env.get(name, "").strip():
            places[str(Path(env[name]).expanduser().resolve())] = f"${name}"
    default_cache = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "brainlab"
    places.setdefault(str(default_cache), "$BRAINLAB_CACHE")
    places.update({str(ROOT): "..", str(Path.home()): "~"})
    order = sorted((k for k in places if len(k) > 1), key=len, reverse=True)  # the innermost folder first

    def fix(text):
        joined = "".join(text) if isinstance(text, list) else text
        for folder in order:
            joined = joined.replace(folder, places[folder])
        return ABSOLUTE_PATH.sub("…/", joined)

    for out in outputs:
        if "text" in out:
            out["text"] = fix(out["text"])
        for mime in ("text/plain", "text/html", "text/markdown"):
            if mime in out.get("data", {}):
                out["data"][mime] = fix(out["data"][mime])


TQDM_ENDING = re.compile(r"\[\d+:\d+(?:<[^\],]*)?, [^\]]*\]$")  # "[00:12<00:03, 5.3batch/s]", "[00:00, ?img/s]"


def is_progress_bar(output) -> bool:
    """Whether ``output`` is a progress bar's widget: its plain-text stand-in shows the bar as it started (0%).

    Recorded, it would tell a reader that nothing happened, so ``record`` leaves it out.
    """
    data = output.get("data", {})
    return (output.get("output_type") == "display_data" and set(data) <= {"text/plain", WIDGET_VIEW}
            and bool(TQDM_ENDING.search(str(data.get("text/plain", "")).strip())))


def record(path: Path, run: Run, machine: str, data: str | None = None, env: dict | None = None) -> list[str]:
    """Write ``run``'s outputs into the notebook at ``path``, every code cell stamped; notes for the person."""
    from brainlab.course import notebook_bytes

    nb = nbformat.read(path, as_version=4)
    executed = {cell.get("id") or number: cell for number, cell in enumerate(run.executed.cells, start=1)}
    notes = []
    for number, cell in enumerate(nb.cells, start=1):
        if cell.cell_type != "code":
            continue
        new = executed.get(cell.get("id") or number)  # cells are matched by id (by place in an old notebook)
        if new is None or new.source != cell.source:
            notes.append(f"cell {number} changed while the notebook ran: its output was not recorded")
            cell.outputs, cell.execution_count = [], None
            cell.metadata.get("brainlab", {}).pop("source_sha", None)
            continue
        outputs = [out for out in new.outputs if not is_progress_bar(out)]
        for out in outputs:  # a widget cannot be drawn from a file: keep its plain-text stand-in
            out.get("data", {}).pop(WIDGET_VIEW, None)
        portable(outputs, data, env)
        kept_check = (CHECK_OUTPUT in cell.source and cell.outputs and _text(cell.outputs) != _text(outputs)
                      and cell.metadata.get("brainlab", {}).get("source_sha") in (None, source_sha(cell.source)))
        if IMAGENET_TAG in cell.metadata.get("tags", []) and run.timing_only:  # random-start numbers: not shown
            cell.outputs, cell.execution_count = [], None
        elif kept_check:  # nbval compares this cell in quick mode: keep the output it compares with
            notes.append(f"cell {number} ({CHECK_OUTPUT}) printed something else in {run.mode} mode than the output "
                         "nbval compares with; the committed output is kept")
        else:
            cell.outputs, cell.execution_count = outputs, new.execution_count
        stamp(cell)
    nb.metadata.pop("widgets", None)
    nb.metadata["brainlab"] = {**nb.metadata.get("brainlab", {}),
                               "recorded": {"mode": run.mode, "date": dt.date.today().isoformat(), "machine": machine,
                                            "timing_only": run.timing_only}}
    size = shrink_images(nb)
    if size > MAX_NOTEBOOK_BYTES:
        notes.append(f"{size / 2**20:.1f} MB even with smaller images: over the 3 MB limit (tests will say so)")
    path.write_bytes(notebook_bytes(nb))
    return notes


def stamp_existing(paths) -> int:
    """Stamp every code cell that already has outputs with its source's hash, running nothing."""
    from brainlab.course import notebook_bytes

    for path in paths:
        nb = nbformat.read(path, as_version=4)
        changed = [number for number, cell in enumerate(nb.cells, start=1)
                   if cell.cell_type == "code" and cell.get("outputs") and stamp(cell)]
        if changed:
            path.write_bytes(notebook_bytes(nb))
        print(f"[course] {path.name}: stamped {len(changed)} cell(s) with outputs"
              + (f" (cells {', '.join(map(str, changed))})" if changed else ""), flush=True)
    return 0


# --------------------------------------------------------------------------- the needs-imagenet notice
NOTICE = "imagenet-notice"  # metadata.brainlab.notice of the markdown cell that explains the empty cells
COURSE_RUNS = ROOT / "docs" / "course-runs.json"


def _sections_of(nb, numbers) -> list[str]:
    """The section (its number, or its heading) each of the cells ``numbers`` stands in, in order, once each."""
    sections, current = [], None
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            headings = re.findall(r"^## (.+)$", cell.source, flags=re.M)
            if headings:
                current = headings[-1].strip()
        if index in numbers and current and current not in sections:
            sections.append(current)
    return [re.match(r"(\d+)\.", s).group(1) if re.match(r"\d+\.", s) else f"'{s}'" for s in sections]


def _measured_full_run(notebook: str, table_path: Path = COURSE_RUNS) -> str | None:
    """'5.5 minutes on a 2-core AMD EPYC': the newest full-mode time of ``notebook`` in docs/course-runs.json."""
    table = json.loads(table_path.read_text()) if table_path.is_file() else {"rows": [], "machines": {}}
    rows = [r for r in table["rows"] if r["notebook"] == notebook and r["mode"] == "full" and r["status"] == "ok"]
    if not rows:
        return None
    row = max(rows, key=lambda r: r["date"])
    machine = table["machines"].get(row["machine"], {})
    cpu = re.sub(r"\s*\((?:R|TM)\)", "", machine.get("cpu", ""))  # "Intel(R) Xeon(R) Processor" -> "Intel Xeon Processor"
    where = f"a {machine['cores']}-core {cpu}" if cpu else row["machine"]
    return f"{row['seconds'] / 60:.1f} minutes on {where} ({row['date']})"


def imagenet_notice(nb, notebook: str, table_path: Path = COURSE_RUNS) -> str | None:
    """The notice a notebook with ``needs-imagenet`` cells opens with, made from its tags; None without any.

    It says how many cells are empty and why, what the paper reported, and what to do (a GPU runtime, or
    the measured CPU time). tests/test_recorded_outputs.py keeps each notebook's notice equal to this.
    """
    from brainlab import paper

    tagged = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and IMAGENET_TAG in cell.metadata.get("tags", [])]
    if not tagged:
        return None
    sections = _sections_of(nb, set(tagged))
    where = (f" (section{'s' if len(sections) > 1 else ''} {', '.join(sections[:-1]) + ' and ' if len(sections) > 1 else ''}"
             f"{sections[-1]})") if sections else ""
    count = f"{len(tagged)} code cell{'s' if len(tagged) > 1 else ''}"
    if nb.metadata.get("brainlab", {}).get("recorded", {}).get("timing_only") is False:
        return (f"> **ImageNet weights.** {count} of this notebook{where} show results that depend on the ResNet50's "
                "ImageNet weights; the run recorded here had them.")
    measured = _measured_full_run(notebook, table_path)
    timing = (f" On a CPU the whole notebook took {measured} in full mode, timed from random weights: the "
              "ImageNet weights change the numbers, not the arithmetic." if measured else "")
    return (f"> **Why {count} below show no output.** Their results{where} depend on the ResNet50's ImageNet "
            "weights, which could not be downloaded where this copy was recorded. That run started from random "
            "weights instead, for timing only: its accuracies, curves and maps would mean nothing, so they were "
            "left out. Every other output on this page is real: it does not depend on those weights. For its "
            f"model on the official `Testing` split, the paper reports {paper.TEST_ACCURACY:.2f} accuracy (section "
            "IV.C, figure 10). **To see them**, run the notebook where Keras can download the weights (94 MB, once): "
            "on Colab, *Runtime > Change runtime type > GPU*, then *Run all*." + timing)


def refresh_notice(path: Path, table_path: Path = COURSE_RUNS) -> bool:
    """Put the notebook's needs-imagenet notice right after its title (or remove a stale one); True if it changed."""
    from brainlab.course import notebook_bytes

    nb = nbformat.read(path, as_version=4)
    text = imagenet_notice(nb, path.stem, table_path)
    old = [i for i, cell in enumerate(nb.cells) if cell.metadata.get("brainlab", {}).get("notice") == NOTICE]
    if text is None and not old:
        return False
    if old and text is not None and nb.cells[old[0]].source == text and len(old) == 1:
        return False
    for i in reversed(old):
        del nb.cells[i]
    if text is not None:
        cell = nbformat.v4.new_markdown_cell(text)
        cell.metadata["brainlab"] = {"notice": NOTICE}
        nb.cells.insert(1, cell)
    path.write_bytes(notebook_bytes(nb))
    return True


# --------------------------------------------------------------------------- the table
def merge(table_path: Path, runs: list[Run], machine: dict) -> dict:
    """Add ``runs`` to the JSON table at ``table_path``: a row per (notebook, mode, machine), newest kept."""
    table = json.loads(table_path.read_text()) if table_path.is_file() else {"machines": {}, "rows": []}
    name = machine_name(machine)
    table["machines"][name] = machine
    for run in runs:
        row = {"notebook": run.notebook, "mode": run.mode, "machine": name, "seconds": round(run.seconds, 1),
               "peak_gib": round(run.peak_bytes / GIB, 3), "status": run.status, "headlines": run.headlines,
               "timing_only": run.timing_only, "date": machine["date"]}
        table["rows"] = [r for r in table["rows"] if (r["notebook"], r["mode"], r["machine"]) != (run.notebook, run.mode, name)]
        table["rows"].append(row)
    table["rows"].sort(key=lambda r: (r["machine"], r["notebook"], r["mode"]))
    return table


def shown_numbers(row: dict) -> str:
    """A row's headline numbers as the table shows them: a random-start headline says only that it was timed."""
    measured = [line for line in row["headlines"] if not RANDOM_START.search(line)]
    if row["timing_only"]:
        return "; ".join([*measured, TIMING_ONLY])
    return "; ".join(measured) or "none"


def render(table: dict) -> str:
    """``docs/course-runs.md``: one section per machine, one row per notebook and mode."""
    intro = ("Each notebook run top to bottom in a fresh kernel by `python3 tasks.py course` (quick mode: the bundled "
             "sample) or `python3 tasks.py course --full --data DIR` (the full dataset). Wall time is the whole "
             "notebook, kernel start included; peak memory is the kernel's largest resident set. Headline numbers "
             "are what the notebook printed with `brainlab.course.headline`; a row whose ResNet50 started from "
             "random weights (no ImageNet weights on that machine) measures time only.")
    lines = ["# How long the course takes", "", textwrap.fill(intro, 110), "",
             "Written by tools/run_course.py from course-runs.json beside this file; edit neither by hand.", ""]
    for name, info in table["machines"].items():
        rows = [r for r in table["rows"] if r["machine"] == name]
        if not rows:
            continue
        lines += [f"## {info['cpu']}",
                  "",
                  textwrap.fill(f"{info['cores']} logical cores, GPU: {info['gpu']}; Python {info['python']}, "
                                f"TensorFlow {info['tensorflow']}, Keras {info['keras']}; last run {info['date']}.", 110),
                  "",
                  "| notebook | mode | wall time | peak memory | status | headline numbers | date |",
                  "|---|---|---:|---:|---|---|---|"]
        for r in rows:
            numbers = shown_numbers(r)
            lines.append(f"| {r['notebook']} | {r['mode']} | {r['seconds']:.0f} s ({r['seconds'] / 60:.1f} min) | "
                         f"{r['peak_gib']:.1f} GiB | {r['status']} | {numbers.replace('|', '/')} | {r['date']} |")
        lines.append("")
    if not table["rows"]:
        lines += ["No runs yet: `python3 tasks.py course` adds them.", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the command
def select(names: list[str], folder: Path = NOTEBOOKS) -> list[Path]:
    """The notebooks named: ``03``, a file name in ``folder``, or a path; all of ``folder``'s by default."""
    course = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return course
    chosen = []
    for name in names:
        path = Path(name)
        matches = ([path] if path.suffix == ".ipynb" and path.is_file() else
                   [p for p in course if p.name == name or p.stem == name or p.name.startswith(f"{name}_")])
        if len(matches) != 1:
            known = ", ".join(p.stem for p in course)
            raise SystemExit(f"[course] {name!r} names no notebook of {folder} (give 03, 03_first_cnn or a path); "
                             f"there are: {known}")
        chosen.append(matches[0].resolve())
    return chosen


def imagenet_weights_reachable(url: str | None = None, timeout: float = 5.0) -> bool:
    """True when the ResNet50 ImageNet weights are cached, or ``url`` (default: theirs) answers within ``timeout`` s."""
    import urllib.request

    from brainlab import startup

    startup.import_tensorflow()  # without TensorFlow's start-up log lines in the runner's output
    from brainlab import models

    if models.imagenet_weights_cached():
        return True
    try:
        with urllib.request.urlopen(urllib.request.Request(url or models.IMAGENET_WEIGHTS_URL, method="HEAD"),
                                    timeout=timeout):
            return True
    except OSError:
        return False


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python3 tasks.py course", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", metavar="NOTEBOOK", help="03, 03_first_cnn or a path (default: all)")
    parser.add_argument("--full", action="store_true", help="full mode (BRAINLAB_QUICK=0): needs the dataset")
    parser.add_argument("--data", metavar="DIR", help="the dataset folder, with Training/ and Testing/ "
                        "(default: BRAINLAB_DATA)")
    parser.add_argument("--timeout", type=float, metavar="S", help="stop a notebook whose cell runs longer than "
                        "S seconds (default: no limit)")
    parser.add_argument("--record", action="store_true", help="write each successful run's outputs into its "
                        "notebook, stamped with each cell's source hash")
    parser.add_argument("--stamp", action="store_true", help="run nothing: stamp the outputs the notebooks already "
                        "carry with their cells' source hash")
    parser.add_argument("--notices", action="store_true", help="run nothing: rewrite each notebook's notice about "
                        "its needs-imagenet cells from its tags and docs/course-runs.json")
    parser.add_argument("--out-dir", metavar="DIR", default=str(ROOT / "docs"),
                        help="where course-runs.md and course-runs.json go (default: docs/)")
    parser.add_argument("--progress-every", type=float, default=60.0, metavar="S", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    paths = select(args.notebooks)
    if args.stamp:
        return stamp_existing(paths)
    if args.notices:
        for path in paths:
            print(f"[course] {path.name}: notice {'rewritten' if refresh_notice(path) else 'up to date'}", flush=True)
        return 0
    if args.record and any(path.parent.name in ("solutions", "exercises") for path in paths):
        print("[course] --record writes outputs into notebooks/ only: solutions/ and exercises/ are committed "
              "without outputs.", file=sys.stderr)
        return 2
    if args.timeout is not None and args.timeout <= 0:
        print(f"[course] --timeout {args.timeout:g}: give a number of seconds above 0.", file=sys.stderr)
        return 2
    data = args.data or os.environ.get("BRAINLAB_DATA", "").strip() or None
    if args.full and not data:
        print("[course] --full runs the course on the full dataset: pass --data DIR (the folder with Training/ and "
              "Testing/), or set BRAINLAB_DATA.", file=sys.stderr)
        return 2
    if data and not (Path(data).expanduser() / "Training").is_dir():
        print(f"[course] {data} has no Training/ folder: pass --data the dataset folder that holds Training/ and "
              "Testing/.", file=sys.stderr)
        return 2
    mode = "full" if args.full else "quick"
    env = {**os.environ, "BRAINLAB_QUICK": "0" if args.full else "1"}
    if data:
        env["BRAINLAB_DATA"] = str(Path(data).expanduser().resolve())
    if args.full and "BRAINLAB_WEIGHTS" not in env and not imagenet_weights_reachable():
        env["BRAINLAB_WEIGHTS"] = "random"  # brainlab.models.default_weights: a random start, said in each headline
        print(f"[course] ImageNet weights are neither cached nor downloadable here: the ResNet50 notebooks start "
              f"from random weights, for timing only ({TIMING_ONLY}).", flush=True)
    machine = machine_info()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for path in paths:
        print(f"[course] {path.stem} ({mode} mode) starts", flush=True)
        run = run_notebook(path, mode, env, args.timeout, args.progress_every)
        runs.append(run)
        print(f"[course] {run.notebook} ... {run.seconds:.0f} s, peak {run.peak_bytes / GIB:.1f} GiB, {run.status}"
              + "".join(f"\n[course]   Headline: {line}" for line in run.headlines), flush=True)
        if args.record:
            if run.ok:
                for note in record(path, run, machine_name(machine), env.get("BRAINLAB_DATA"), env):
                    print(f"[course]   {path.name}: {note}", flush=True)
                print(f"[course]   outputs recorded in {path}", flush=True)
            else:
                print(f"[course]   {path.name} failed: its outputs were not recorded", flush=True)
        table = merge(out / "course-runs.json", runs, machine)  # after every notebook: a long run keeps its rows
        (out / "course-runs.json").write_text(json.dumps(table, indent=1) + "\n")
        (out / "course-runs.md").write_text(render(table))
        if args.record and run.ok and refresh_notice(path, out / "course-runs.json"):
            print(f"[course]   {path.name}: its needs-imagenet notice now says this run's time", flush=True)
    failed = [run.notebook for run in runs if not run.ok]
    print(f"[course] {len(runs) - len(failed)} of {len(runs)} notebooks ran; table in {out / 'course-runs.md'}"
          + (f"; failed: {', '.join(failed)}" if failed else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
