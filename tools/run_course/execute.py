"""One notebook run top to bottom in a fresh kernel: its time, peak memory, status and headline numbers.

:func:`run_notebook` starts a kernel in the notebook's folder (over local sockets where the system
has them), runs every cell, prints a progress line while a long cell runs, and gives back a
:class:`Run`: its row of the course table and the executed notebook. A failure is a row too.
The headline numbers are the structured outputs that ``brainlab.course.headline`` shows
(:data:`brainlab.course.HEADLINE_MIME`), read as data, never scraped from printed text.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from brainlab.course import HEADLINE_MIME, is_random_start
from tools.run_course.memory import PeakMemory

__all__ = ["Run", "headlines_of", "run_notebook"]


@dataclass
class Run:
    """What running one notebook gave: its row of the table, and the executed notebook.

    ``headlines`` are the numbers of each headline the notebook showed, in order (dicts, as
    ``brainlab.course.headline_numbers`` makes them).
    """

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
        """Whether a headline says the ResNet50 started from random weights: then its results mean nothing."""
        return any(map(is_random_start, self.headlines))


def headlines_of(nb) -> list[dict]:
    """The numbers of every headline the notebook showed, in order: the data of its structured outputs.

    Read from the notebook just executed, each headline's numbers keep the order the cell gave them; a
    notebook file (written with sorted keys) keeps the numbers but not that order.
    """
    return [dict(out["data"][HEADLINE_MIME]) for cell in nb.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if HEADLINE_MIME in out.get("data", {})]


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


def _report_progress(name: str, cells: int, current: dict, start: float, every: float, done: threading.Event):
    """Print which cell runs, every ``every`` seconds until ``done`` is set (a long cell is not a hang)."""
    while not done.wait(every):
        print(f"[course]   {name}: cell {current['index'] + 1} of {cells}, {time.perf_counter() - start:.0f} s",
              flush=True)


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
    threading.Thread(target=_report_progress, args=(path.stem, len(nb.cells), current, start, progress_every, done),
                     daemon=True).start()
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
