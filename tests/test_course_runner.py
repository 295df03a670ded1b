"""tools/run_course (``python3 tasks.py course``): runs notebooks in fresh kernels, times them, keeps a table.

The notebooks here are tiny ones written for the test; each run starts a real kernel (a second or
a few), so the runs are shared between tests where they can be.
"""
from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from brainlab import course
from tools import ROOT
from tools.run_course import cli, execute, machine, record, scrub, shrink, tables
from tools.run_course.check import IMAGENET_TAG, output_problems, source_sha
from tools.run_course.notice import NOTICE, imagenet_notice

REPO = Path(__file__).resolve().parents[1]


def write_notebook(path: Path, *sources: str, tags: dict | None = None, outputs: dict | None = None) -> Path:
    cells = [new_markdown_cell("# A notebook")]
    for i, source in enumerate(sources):
        cell = new_code_cell(source)
        cell.id = f"cell{i}"
        if tags and i in tags:
            cell.metadata["tags"] = tags[i]
        if outputs and i in outputs:
            cell.outputs, cell.execution_count = [nbformat.v4.new_output("stream", name="stdout", text=outputs[i])], 1
        cells.append(cell)
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


GOOD = ("from brainlab import course\n"
        "course.headline(accuracy=0.74321, split='official-test', glioma_recall=0.6)",
        "import os, time\ntime.sleep(float(os.environ.get('NAP', 0.2)))\nprint('quick', os.environ['BRAINLAB_QUICK'], 'cwd', os.getcwd())",
        "print('shown only while running')",
        "block = b'x' * (128 * 2**20)  # 128 MB, written: the peak is plainly above a bare kernel's\nprint(len(block))",
        "# NBVAL_CHECK_OUTPUT\nprint('quick mode:', os.environ['BRAINLAB_QUICK'])")
COMPARED = "quick mode: 0\n"  # as if recorded in another mode: nbval compares it, so --record keeps it
BAD = ("print('first')", "x = 1", "raise KeyError('no such thing')", "print('never reached')")


def tool(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
                   **(env or {})}
    return subprocess.run([sys.executable, "-m", "tools.run_course", *args], capture_output=True, text=True,
                          timeout=300, env=environment, cwd=REPO)


@pytest.fixture(scope="module")
def course_runs(tmp_path_factory):
    """Two notebooks run once (one fails), then the good one again with --record."""
    folder = tmp_path_factory.mktemp("course")
    good = write_notebook(folder / "01_good.ipynb", *GOOD, tags={2: [IMAGENET_TAG]}, outputs={4: COMPARED})
    bad = write_notebook(folder / "02_bad.ipynb", *BAD)
    out = folder / "docs"
    first = tool(str(good), str(bad), "--out-dir", str(out))
    table_after_first = json.loads((out / "course-runs.json").read_text())
    second = tool(str(good), "--record", "--out-dir", str(out), env={"NAP": "1.5"})  # the kernel gets the environment
    return {"folder": folder, "good": good, "bad": bad, "out": out, "first": first, "second": second,
            "table_after_first": table_after_first, "table": json.loads((out / "course-runs.json").read_text())}


def rows_by_notebook(table):
    return {row["notebook"]: row for row in table["rows"]}


def test_headline_prints_one_line_of_names_and_values_outside_a_notebook(capsys):
    assert course.headline(accuracy=0.74321, split="official-test", images=394, weights="imagenet") is None
    assert capsys.readouterr().out == "Headline: accuracy=0.743 split=official-test images=394 weights=imagenet\n"
    # a random start's results mean nothing, numbers or a choice made from them: only the split and weights stay
    course.headline(accuracy=0.74321, chosen="learning_rate_1e-4", split="official-test", images=394,
                    weights="random-start (timing only)")
    assert capsys.readouterr().out == "Headline: split=official-test weights=random-start (timing only)\n"
    with pytest.raises(ValueError, match="at least one"):
        course.headline()
    with pytest.raises(ValueError, match="one line"):
        course.headline(note="two\nlines")
    with pytest.raises(ValueError, match="not a name"):
        course.headline(**{"glioma recall": 0.6})


def test_headline_numbers_are_json_values_rounded_as_shown():
    import numpy as np

    numbers = course.headline_numbers(accuracy=np.float32(0.74321), images=np.int64(394), augmented=np.bool_(False),
                                      best=True, loss=float("nan"), chosen="learning_rate_1e-4")
    assert numbers == {"accuracy": 0.743, "images": 394, "augmented": False, "best": True, "loss": "nan",
                       "chosen": "learning_rate_1e-4"}
    assert [type(v) for v in numbers.values()] == [float, int, bool, bool, str, str]
    assert json.loads(json.dumps(numbers)) == numbers
    assert course.headline_text(numbers) == ("accuracy=0.743 images=394 augmented=False best=True loss=nan "
                                             "chosen=learning_rate_1e-4")
    assert course.headline_text({"glioma_recall": 0.21}) == "glioma_recall=0.210"  # 3 decimals, as always shown


def test_a_good_and_a_failing_notebook_make_two_rows_and_a_failing_exit_status(course_runs):
    first = course_runs["first"]
    assert first.returncode == 1, first.stdout + first.stderr
    rows = rows_by_notebook(course_runs["table_after_first"])
    assert set(rows) == {"01_good", "02_bad"}
    good, bad = rows["01_good"], rows["02_bad"]
    assert good["status"] == "ok" and good["mode"] == "quick"
    # the numbers as data, in the notebook's order
    assert good["headlines"] == [{"accuracy": 0.743, "split": "official-test", "glioma_recall": 0.6}]
    assert list(good["headlines"][0]) == ["accuracy", "split", "glioma_recall"]
    assert good["seconds"] > 0.2 and good["peak_gib"] > 0.125, good
    assert bad["status"] == "failed: KeyError in cell 4", bad  # the markdown title is cell 1
    assert bad["headlines"] == [] and bad["seconds"] > 0
    assert "[course] 01_good ... " in first.stdout and ", ok" in first.stdout
    assert "[course]   Headline: accuracy=0.743 split=official-test glioma_recall=0.600" in first.stdout
    assert "[course] 02_bad ... " in first.stdout and "failed: KeyError in cell 4" in first.stdout
    assert "quick 1 cwd" not in first.stdout, "the notebook's own output stays in the notebook"


def test_rerunning_one_notebook_updates_its_row_and_keeps_the_others(course_runs):
    assert course_runs["second"].returncode == 0, course_runs["second"].stdout + course_runs["second"].stderr
    before, after = rows_by_notebook(course_runs["table_after_first"]), rows_by_notebook(course_runs["table"])
    assert set(after) == {"01_good", "02_bad"} and len(course_runs["table"]["rows"]) == 2
    assert after["02_bad"] == before["02_bad"]
    assert after["01_good"]["seconds"] >= 1.5  # the new measurement: this run naps 1.5 s ...
    printed = re.search(r"\[course\] 01_good \.\.\. (\d+) s", course_runs["second"].stdout)
    assert printed and abs(int(printed.group(1)) - after["01_good"]["seconds"]) <= 1  # ... and said so (to the second)
    machine = after["01_good"]["machine"]
    info = course_runs["table"]["machines"][machine]
    assert info["cores"] == os.cpu_count() and info["python"] == ".".join(map(str, sys.version_info[:3]))
    assert info["tensorflow"] and info["keras"] and info["gpu"]


def test_kernels_talk_over_local_sockets_and_leave_nothing_behind(course_runs):
    for run in (course_runs["first"], course_runs["second"]):
        assert "over TCP" not in run.stderr and "Parent appears to have exited" not in run.stderr, run.stderr
    manager = execute._local_kernel_manager()(kernel_name="python3")
    assert manager.transport == "ipc" and Path(manager.ip).is_absolute() and manager.socket_folder.is_dir()
    asyncio.run(manager._async_cleanup_resources())  # what shutting the kernel down ends with
    assert not manager.socket_folder.exists()


def test_the_markdown_table_is_rendered_from_the_json(course_runs):
    text = (course_runs["out"] / "course-runs.md").read_text()
    table = course_runs["table"]
    info = next(iter(table["machines"].values()))
    assert f"## {info['cpu']}" in text
    assert f"TensorFlow {info['tensorflow']}, Keras {info['keras']}" in " ".join(text.split())  # a wrapped line
    good = rows_by_notebook(table)["01_good"]
    assert (f"| 01_good | quick | {good['seconds']:.0f} s ({good['seconds'] / 60:.1f} min) | {good['peak_gib']:.1f} GiB "
            "| ok | accuracy=0.743 split=official-test glioma_recall=0.600 |") in text
    assert "| 02_bad | quick |" in text and "| failed: KeyError in cell 4 | none |" in text
    assert text == tables.render(table)


def test_docs_course_runs_md_is_what_its_json_renders_to(tmp_path):
    table = tables.read_table(REPO / "docs" / "course-runs.json")
    assert (REPO / "docs" / "course-runs.md").read_text() == tables.render(table), (
        "docs/course-runs.md is out of step with docs/course-runs.json: run .venv/bin/python -m tools.run_course --tables")
    (tmp_path / "course-runs.json").write_text((REPO / "docs" / "course-runs.json").read_text())
    done = tool("--tables", "--out-dir", str(tmp_path))
    assert done.returncode == 0 and f"({len(table['rows'])} rows)" in done.stdout, done.stdout + done.stderr
    assert (tmp_path / "course-runs.md").read_text() == (REPO / "docs" / "course-runs.md").read_text()
    assert (tmp_path / "course-runs.json").read_text() == (REPO / "docs" / "course-runs.json").read_text()


def test_record_writes_outputs_stamped_with_their_source(course_runs):
    nb = nbformat.read(course_runs["good"], as_version=4)
    assert nb.metadata["brainlab"]["recorded"]["mode"] == "quick"
    assert nb.metadata["brainlab"]["recorded"]["machine"] in course_runs["table"]["machines"]
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert [c.id for c in code] == ["cell0", "cell1", "cell2", "cell3", "cell4"], "cell ids are kept"
    # the headline: one output, the line a reader sees and the numbers as data
    assert [out["output_type"] for out in code[0].outputs] == ["display_data"]
    assert code[0].outputs[0]["data"]["text/plain"] == "Headline: accuracy=0.743 split=official-test glioma_recall=0.600"
    assert code[0].outputs[0]["data"][course.HEADLINE_MIME] == {"accuracy": 0.743, "split": "official-test",
                                                                "glioma_recall": 0.6}
    # quick mode, in its own folder, which the recording names by its last part only (no machine path)
    assert f"quick 1 cwd …/{Path(course_runs['folder']).name}\n" == code[1].outputs[0]["text"]
    assert code[2].outputs[0]["text"] == "shown only while running\n", "not timing only: a needs-imagenet cell keeps it"
    assert code[4].outputs[0]["text"] == COMPARED, "an output nbval compares is not replaced by another mode's"
    assert "cell 6 (# NBVAL_CHECK_OUTPUT) printed something else in quick mode" in course_runs["second"].stdout
    for cell in code:
        assert cell.metadata["brainlab"]["source_sha"] == source_sha(cell.source)
    assert output_problems(course_runs["good"]) == []
    # one cell is tagged needs-imagenet: the recording put the notice about it right after the title
    assert nb.cells[1].metadata["brainlab"]["notice"] == NOTICE
    assert nb.cells[1].source == imagenet_notice(nb, "01_good", course_runs["out"] / "course-runs.json")
    assert nb.cells[1].source.startswith("> **ImageNet weights.** 1 code cell of this notebook")  # not timing only


def test_images_are_re_encoded_smaller_until_the_notebook_fits(tmp_path):
    import base64
    import io

    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    cell = new_code_cell("plot()")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": base64.b64encode(buffer.getvalue()).decode(),
                                                                 "text/plain": "<Figure>"})]
    nb = new_notebook(cells=[cell])
    before = len(course.notebook_bytes(nb))
    after = shrink.shrink_images(nb, limit=before // 3)
    assert after <= before // 3 and after == len(course.notebook_bytes(nb)), (before, after)
    image = Image.open(io.BytesIO(base64.b64decode(nb.cells[0].outputs[0]["data"]["image/png"])))
    assert image.size[0] >= 200 and image.size[1] >= 150, "still a readable figure"


def test_staleness_check_notices_a_changed_cell_and_misplaced_outputs(course_runs, tmp_path):
    nb = nbformat.read(course_runs["good"], as_version=4)
    number = {cell.get("id"): n for n, cell in enumerate(nb.cells, start=1)}  # the recording added the notice cell
    cell = {cell.get("id"): cell for cell in nb.cells}
    cell["cell1"].source += "\nprint('changed after the run')"
    cell["cell2"].outputs = [nbformat.v4.new_output("stream", name="stdout", text="an old output\n")]  # tagged cell
    nb.metadata["brainlab"]["recorded"]["timing_only"] = True  # ... of a notebook recorded with a random start
    cell["cell3"].metadata.pop("brainlab")  # an output without a stamp
    changed = tmp_path / "changed.ipynb"
    nbformat.write(nb, changed)
    problems = output_problems(changed)
    assert len(problems) == 3, problems
    assert problems[0].startswith(f"cell {number['cell1']} was changed after its outputs were recorded")
    assert problems[1].startswith(f"cell {number['cell2']} is tagged {IMAGENET_TAG} (its output depends on")
    assert problems[2].startswith(f"cell {number['cell3']} has outputs but no source stamp")
    assert output_problems(course_runs["good"], outputs_allowed=False)[0].startswith(
        f"cell {number['cell0']} has outputs")
    # --stamp stamps what is there (the tagged cell's output stays a problem)
    assert tool(str(changed), "--stamp").returncode == 0
    assert output_problems(changed) == [problems[1]]


def test_a_failed_notebook_is_not_recorded(tmp_path):
    bad = write_notebook(tmp_path / "02_bad.ipynb", *BAD)
    before = bad.read_bytes()
    done = tool(str(bad), "--record", "--out-dir", str(tmp_path / "docs"))
    assert done.returncode == 1 and "its outputs were not recorded" in done.stdout
    assert bad.read_bytes() == before


def test_random_start_rows_show_their_time_not_their_numbers(tmp_path):
    table = {"machines": {}, "rows": []}
    (tmp_path / "course-runs.json").write_text(json.dumps(table))
    runs = [execute.Run("05_transfer_learning", "full", 600.0, 3 * 2**30, "ok",
                        [{"val_accuracy": 0.412, "split": "official-val", "weights": "random-start (timing only)"}]),
            execute.Run("03_first_cnn", "full", 412.0, 2**30, "ok", [{"accuracy": 0.743, "split": "official-test"}])]
    info = {"cpu": "Some CPU", "cores": 2, "gpu": "none", "python": "3.11", "tensorflow": "2.21", "keras": "3.15",
            "date": "2026-01-01"}
    table = tables.merge(tmp_path / "course-runs.json", runs, info)
    assert [row["timing_only"] for row in table["rows"]] == [False, True]  # sorted by notebook
    text = tables.render(table)
    row = next(line for line in text.splitlines() if line.startswith("| 05_transfer_learning"))
    assert tables.TIMING_ONLY in row and "0.412" not in text and "| 600 s (10.0 min) | 3.0 GiB |" in row
    assert "accuracy=0.743" in text
    # a notebook with both: the from-scratch model's numbers are shown, the ImageNet cells' are not
    both = {"headlines": [{"accuracy": 0.85, "split": "clean-test", "model": "residual-cnn"},
                          {"split": "clean-test", "weights": "random-start (timing only)"}], "timing_only": True}
    assert tables.shown_numbers(both) == f"accuracy=0.850 split=clean-test model=residual-cnn; {tables.TIMING_ONLY}"
    # what is left out is decided by the numbers' weights, not by text that looks like it
    look_alike = {"headlines": [{"accuracy": 0.9, "note": "weights=random-start"}, {"split": "clean-test"}],
                  "timing_only": False}
    assert tables.shown_numbers(look_alike) == "accuracy=0.900 note=weights=random-start; split=clean-test"


def test_the_table_keeps_headlines_as_numbers_and_refuses_text(tmp_path):
    table = tables.read_table(REPO / "docs" / "course-runs.json")
    kept = [numbers for row in table["rows"] for numbers in row["headlines"]]
    assert kept and all(isinstance(numbers, dict) for numbers in kept)
    assert {"accuracy": 0.683, "split": "official-test", "glioma_recall": 0.21, "augmented": False} in kept
    assert all(isinstance(n["accuracy"], float) for n in kept if "accuracy" in n)
    old = {"machines": {}, "rows": [{"notebook": "03_first_cnn", "mode": "full", "machine": "m",
                                     "headlines": ["accuracy=0.673 split=official-test"]}]}
    (tmp_path / "course-runs.json").write_text(json.dumps(old))
    with pytest.raises(ValueError, match=r"course-runs.json: the headlines of 03_first_cnn \(full, m\) are not numbers"):
        tables.read_table(tmp_path / "course-runs.json")


def test_full_mode_needs_the_dataset_and_names_are_checked(tmp_path):
    done = tool("--full", "--out-dir", str(tmp_path), env={"BRAINLAB_DATA": ""})
    assert done.returncode == 2 and "pass --data DIR" in done.stderr
    done = tool("--full", "--data", str(tmp_path), "--out-dir", str(tmp_path))
    assert done.returncode == 2 and "no Training/ folder" in done.stderr
    done = tool(str(REPO / "solutions" / "03_first_cnn.ipynb"), "--record", "--out-dir", str(tmp_path))
    assert done.returncode == 2 and "notebooks/ only" in done.stderr
    done = tool("99", "--out-dir", str(tmp_path))
    assert done.returncode != 0 and "'99' names no notebook" in done.stderr
    assert cli.select(["03"])[0].name.startswith("03_") and len(cli.select([])) >= 10
    assert not (tmp_path / "course-runs.json").exists()


def test_recorded_text_names_no_folder_of_this_machine(tmp_path):
    data = tmp_path / "dataset"
    outputs = [nbformat.v4.new_output("stream", name="stdout",
                                      text=f"{data}/Training/glioma_tumor/1.jpg\n{ROOT}/runs/03 holds it\n"),
               nbformat.v4.new_output("execute_result", data={"text/plain": f"PosixPath('{Path.home()}/.cache/x')"})]
    scrub.portable(outputs, str(data))
    assert outputs[0]["text"] == "$BRAINLAB_DATA/Training/glioma_tumor/1.jpg\n../runs/03 holds it\n"
    assert outputs[1]["data"]["text/plain"] == "PosixPath('~/.cache/x')"
    # every setting's folder by its name, the default cache too; any other machine path loses its folders
    env = {"BRAINLAB_RUNS": str(tmp_path / "course_runs" / "runs"), "BRAINLAB_EXTERNAL_DATA": str(tmp_path / "ext"),
           "BRAINLAB_CACHE": str(tmp_path / "cache")}
    text = (f"{tmp_path}/course_runs/runs/06_reproduce/report.md, {tmp_path}/ext/Testing/glioma/a.jpg, "
            f"{tmp_path}/cache/decoded, {Path.home()}/.cache/brainlab/datasets, "
            "/usr/lib/python3.11/site-packages/keras/src/trainer.py:12: UserWarning")
    outputs = [nbformat.v4.new_output("stream", name="stderr", text=text)]
    scrub.portable(outputs, None, env)
    assert outputs[0]["text"] == ("$BRAINLAB_RUNS/06_reproduce/report.md, $BRAINLAB_EXTERNAL_DATA/Testing/glioma/a.jpg, "
                                  "$BRAINLAB_CACHE/decoded, $BRAINLAB_CACHE/datasets, …/trainer.py:12: UserWarning")
    assert not scrub.ABSOLUTE_PATH.search(outputs[0]["text"])


def test_tasks_course_runs_the_tool_in_the_environment_with_its_arguments(monkeypatch):
    spec = importlib.util.spec_from_file_location("tasks", REPO / "tasks.py")
    tasks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tasks)
    calls = []
    monkeypatch.setattr(tasks, "ensure_env", lambda extras: calls.append(("ensure_env", extras)))
    monkeypatch.setattr(tasks, "run", lambda cmd: calls.append(("run", cmd)) or 7)
    assert tasks.JOBS["course"](["--full", "--data", "d", "03"]) == 7
    assert calls == [("ensure_env", "test"),
                     ("run", [str(tasks.PY), "-m", "tools.run_course", "--full", "--data", "d", "03"])]
    assert "python3 tasks.py course [--full] [--data DIR] [--timeout S]" in tasks.__doc__


def test_a_cell_over_the_timeout_fails_its_notebook_and_long_cells_report_progress(tmp_path):
    slow = write_notebook(tmp_path / "03_slow.ipynb", "x = 1", "import time\ntime.sleep(30)")
    done = tool(str(slow), "--timeout", "3", "--progress-every", "1", "--out-dir", str(tmp_path / "docs"))
    assert done.returncode == 1
    assert "failed: timeout after 3 s in cell 3" in done.stdout, done.stdout
    assert "[course]   03_slow: cell 3 of 3, " in done.stdout, "a line while a long cell runs"
    row = json.loads((tmp_path / "docs" / "course-runs.json").read_text())["rows"][0]
    assert 3 <= row["seconds"] < 25, row


def test_imagenet_weights_are_reachable_when_cached_or_served(tmp_path, monkeypatch):
    import http.server
    import socket
    import threading

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with socket.socket() as free:  # a port nobody listens on
        free.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{free.getsockname()[1]}/weights.h5"
    assert not machine.imagenet_weights_reachable(closed, timeout=2)
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "weights.h5").write_bytes(b"weights")
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path / "served"))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert machine.imagenet_weights_reachable(f"http://127.0.0.1:{server.server_port}/weights.h5", timeout=5)
    finally:
        server.shutdown()
    from brainlab import models

    cached = tmp_path / "keras" / "models" / models.IMAGENET_WEIGHTS_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"\0")
    assert machine.imagenet_weights_reachable(closed, timeout=2)


@pytest.mark.parametrize("timing_only", [True, False])
def test_needs_imagenet_cells_are_recorded_only_from_a_run_with_the_weights(tmp_path, timing_only):
    path = write_notebook(tmp_path / "05_x.ipynb", "print('accuracy 0.9')", "print('time 3 s')",
                          tags={0: [IMAGENET_TAG]})
    executed = nbformat.read(path, as_version=4)
    for cell, text in zip(executed.cells[1:], ("accuracy 0.9\n", "time 3 s\n")):
        cell.outputs, cell.execution_count = [nbformat.v4.new_output("stream", name="stdout", text=text)], 1
    weights = "random-start (timing only)" if timing_only else "imagenet"
    run = execute.Run("05_x", "full", 10.0, 2**30, "ok", [{"accuracy": 0.9, "weights": weights}], executed)
    assert run.timing_only is timing_only
    record.record(path, run, "machine")
    nb = nbformat.read(path, as_version=4)
    assert [len(c.outputs) for c in nb.cells[1:]] == [0 if timing_only else 1, 1]
    assert nb.metadata["brainlab"]["recorded"]["timing_only"] is timing_only
    assert output_problems(path) == []
    nb.cells[1].outputs = executed.cells[1].outputs  # a random-start number shown anyway: a problem
    nbformat.write(nb, path)
    assert bool(output_problems(path)) is timing_only


def test_progress_bars_are_left_out_of_recorded_outputs_and_nothing_else():
    def display(text, widget=True):
        data = {"text/plain": text}
        if widget:
            data[record.WIDGET_VIEW] = {"model_id": "abc", "version_major": 2, "version_minor": 0}
        return nbformat.v4.new_output("display_data", data=data)

    bars = [display("  0%|          | 0/15 [00:00<?, ?epoch/s]"), display("0batch [00:00, ?batch/s]"),
            display("decoding official-train:   0%|          | 0/2870 [00:00<?, ?img/s]", widget=False)]
    kept = [display("VBox(children=(Dropdown(options=('glioma_tumor',), value='glioma_tumor'),))"),
            display("   epoch  accuracy\n0      0     0.654", widget=False),
            nbformat.v4.new_output("stream", name="stderr", text="  0%|          | 0/15 [00:00<?, ?epoch/s]"),
            nbformat.v4.new_output("execute_result", data={"text/plain": "3 [00:00, 1.0/s]"}, execution_count=1)]
    assert [record.is_progress_bar(out) for out in bars] == [True, True, True]
    assert [record.is_progress_bar(out) for out in kept] == [False, False, False, False]
