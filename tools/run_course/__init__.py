"""Run the course's notebooks top to bottom, each in a fresh kernel, and keep a table of how long they took.

    python3 tasks.py course                       # every notebooks/NN_*.ipynb, quick mode
    python3 tasks.py course --full --data DIR 03  # notebook 03 in full mode on the dataset in DIR
    python3 tasks.py course --full --record 06    # ... and keep its outputs in notebooks/06_*.ipynb
    .venv/bin/python -m tools.run_course --stamp  # stamp outputs already in notebooks/, running nothing

Each notebook runs with nbclient in its own folder (``BRAINLAB_QUICK=0`` with ``--full``, else ``1``;
``BRAINLAB_DATA`` from ``--data`` or the environment). One line per notebook says its wall time, the
kernel's peak memory and whether every cell ran; the headlines it showed (``brainlab.course.headline``,
read from their structured output, :data:`brainlab.course.HEADLINE_MIME`) are its headline numbers.
The rows go to ``docs/course-runs.json``, merged by (notebook, mode, machine) so runs made at different
times add up, and ``docs/course-runs.md`` is rendered from it. A row whose headline says the ResNet50
started from random weights (``weights=random-start ...``) is timing only: its numbers are not shown.
In full mode on a machine where the ImageNet weights are neither cached nor downloadable, the kernels
get ``BRAINLAB_WEIGHTS=random`` (see ``brainlab.models.default_weights``), so those notebooks still
run, for timing.

``--record`` writes a successful run's outputs back into the notebook, each code cell stamped with
the SHA-256 of its source (``metadata.brainlab.source_sha``) so that tests/test_recorded_outputs.py
notices an output older than its cell. Cells tagged ``needs-imagenet`` show results that depend on the
ResNet50's ImageNet weights: a timing-only run (random start) records no output for them.

One module per job:

- :mod:`~tools.run_course.execute`: one notebook in a fresh kernel, its progress lines, its headlines;
- :mod:`~tools.run_course.memory`: the kernel's peak memory, sampled while it runs;
- :mod:`~tools.run_course.machine`: the machine a run is kept under, and whether it has the ImageNet weights;
- :mod:`~tools.run_course.record`: a run's outputs written into its notebook, stamped;
- :mod:`~tools.run_course.shrink`: the PNG outputs re-encoded until a notebook fits its size limit;
- :mod:`~tools.run_course.scrub`: this machine's folders replaced by what a reader has;
- :mod:`~tools.run_course.check`: whether the outputs a notebook carries are current (the tests' reader);
- :mod:`~tools.run_course.notice`: the note atop a notebook whose ImageNet cells are empty;
- :mod:`~tools.run_course.tables`: docs/course-runs.json merged, docs/course-runs.md rendered;
- :mod:`~tools.run_course.cli`: the command line (``python -m tools.run_course``).
"""
from __future__ import annotations

__all__ = ["check", "cli", "execute", "machine", "memory", "notice", "record", "scrub", "shrink", "tables"]
