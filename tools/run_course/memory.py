"""The peak memory of a running kernel: its resident set and its children's, sampled in a thread."""
from __future__ import annotations

import re
import threading
from pathlib import Path

__all__ = ["GIB", "PeakMemory"]

GIB = 2**30


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
