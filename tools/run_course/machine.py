"""The machine a course run is kept under (CPU, cores, GPU, versions), and whether it has the ImageNet weights."""
from __future__ import annotations

import datetime as dt
import os
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path

__all__ = ["machine_info", "machine_name", "imagenet_weights_reachable"]


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
