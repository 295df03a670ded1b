"""Random damage to datasets, manifests, run folders and options: every command ends in a message, never a
traceback, and changes no file outside its --out.

Seeded (BRAINLAB_FUZZ_SEED picks another seed) and bounded: CASES cases, the same ones on every machine (a
slow machine takes longer rather than running fewer), so a failure seen anywhere comes back with its seed; the
time they took is printed. Data and run damage exits 0 or 1 (a file to fix), option damage 2 (a bad value).
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import time
from pathlib import Path

import keras
import pytest

from brainlab import experiment
from brainlab.cli import main
from conftest import CLASS_NAMES, make_dataset

CASES, TRAININGS = 120, 2


def snapshot(root: Path, out: Path) -> dict[str, str]:
    """Every file under ``root`` but those in ``out``: its content's hash."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink() and out not in p.parents}


def damage_files(rng: random.Random, files: list[Path]) -> None:
    """Truncate, empty, fill with noise, delete, or replace by a dangling link, one to three files."""
    for path in rng.sample(files, min(len(files), rng.randint(1, 3))):
        how = rng.choice(["truncate", "empty", "noise", "delete", "dangling"])
        if how == "truncate":
            path.write_bytes(path.read_bytes()[: rng.randint(0, 200)])
        elif how == "empty":
            path.write_bytes(b"")
        elif how == "noise":
            path.write_bytes(rng.randbytes(rng.randint(1, 500)))
        else:
            path.unlink()
            if how == "dangling":
                path.symlink_to(path.with_name("gone-" + path.name))


def manifest_lines(rng: random.Random, data: Path) -> list[str]:
    rows = [f"{p.relative_to(data).as_posix()},{p.parent.name},{rng.choice(['train', 'val', 'test'])}"
            for p in sorted(data.rglob("*.jpg"))]
    rows[:3] = [rows[0].rsplit(",", 1)[0] + f",{part}" for part in ("train", "val", "test")][: len(rows[:3])]
    damage = rng.choice(["repeat", "two parts", "no test", "absolute", "parent", "missing", "short", "class",
                         "latin-1", "bom", "nul", "no header", "reordered"])
    if damage == "repeat":
        rows += [rng.choice(rows)] * rng.randint(1, 50)
    elif damage == "two parts":
        rows.append(rows[1].rsplit(",", 1)[0] + ",test")
    elif damage == "no test":
        rows = [r.replace(",test", ",val") for r in rows]
    elif damage == "absolute":
        rows.append(f"{data / rows[-1].split(',')[0]},glioma_tumor,train")
    elif damage == "parent":
        rows.append("../outside.jpg,glioma_tumor,train")
    elif damage == "missing":
        rows.append("Training/glioma_tumor/never.jpg,glioma_tumor,train")
    elif damage == "short":
        rows.append(rows[-1].rsplit(",", 1)[0])
    elif damage == "class":
        rows.append(rows[-1].replace(",", ",x", 1))
    elif damage == "nul":
        rows.append("Training/\0.jpg,glioma_tumor,train")
    elif damage == "reordered":
        rng.shuffle(rows)
    header = [] if damage == "no header" else ["\ufeffpath,class,split" if damage == "bom" else "path,class,split"]
    lines = header + rows
    if damage == "latin-1":
        lines.append("Training/glioma_tumor/caf\xe9.jpg,glioma_tumor,train")
    return lines, damage


HIGHEST = {"--epochs": experiment.MAX_EPOCHS, "--batch-size": experiment.MAX_BATCH_SIZE, "--image-size": 1024,
           "--seed": experiment.MAX_SEED}


def bad_value(rng: random.Random, option: str) -> str:
    low = -1 if option == "--seed" else 0
    return rng.choice([str(rng.randint(-10**6, low)), str(rng.randint(HIGHEST[option] + 1, HIGHEST[option] * 1000)),
                       "", "1.5", "nan", "x" * 50, "0x10", "\u00e9"])


@pytest.fixture
def world(tmp_path):
    """A tiny dataset, a run folder with a model that evaluates it, and a manifest of it."""
    data = make_dataset(tmp_path / "base" / "data", per_class=2, size=32)
    run = tmp_path / "base" / "run"
    (run / "run").mkdir(parents=True)
    x = keras.Input((32, 32, 3))
    keras.Model(x, keras.layers.Dense(len(CLASS_NAMES), activation="softmax")(
        keras.layers.GlobalAveragePooling2D()(x))).save(run / "run" / "best.keras")
    (run / "metrics.json").write_text(json.dumps({"split": "unverified-test", "settings": {"recipe": "small-cnn"}}))
    return tmp_path


@pytest.mark.slow  # 120 commands, two trainings among them: 25-45 s on a 2-core CPU
def test_random_damage_never_gives_a_traceback(world, capsys, monkeypatch):
    rng = random.Random(int(os.environ.get("BRAINLAB_FUZZ_SEED", "21")))
    monkeypatch.delenv("BRAINLAB_FUZZ_SEED", raising=False)  # not a brainlab setting
    started, kinds, trainings = time.monotonic(), {}, 0
    for case in range(CASES):
        folder = world / f"case{case}"
        shutil.copytree(world / "base", folder, symlinks=True)
        data, run, out = folder / "data", folder / "run", folder / "out"
        kind = rng.choice(["dataset", "manifest", "run", "option"])
        allowed = (0, 1)
        if kind == "dataset":
            damage_files(rng, sorted(data.rglob("*.jpg")))
            argv = rng.choice([["doctor", "--data", str(data)],
                               ["evaluate", "--run", str(run), "--data", str(data / "Testing"), "--out", str(out)]])
        elif kind == "manifest":
            lines, how = manifest_lines(rng, data)
            (folder / "m.csv").write_bytes("\n".join(lines).encode("latin-1" if how == "latin-1" else "utf-8"))
            kind = f"manifest ({how})"
            train = how in ("bom", "reordered") and trainings < TRAININGS
            trainings += train
            argv = (["train", "--recipe", "small-cnn", "--split", "clean", "--data", str(data), "--manifest",
                     str(folder / "m.csv"), "--epochs", "1", "--image-size", "32", "--out", str(out)] if train else
                    ["evaluate", "--run", str(run), "--data", str(data), "--manifest", str(folder / "m.csv"),
                     "--out", str(out)])
        elif kind == "run":
            damage_files(rng, [run / "run" / "best.keras", run / "metrics.json"])
            argv = ["evaluate", "--run", str(run), "--data", str(data / "Testing"), "--out", str(out)]
        else:
            option, allowed = rng.choice(list(HIGHEST)), (2,)
            argv = ["train", "--recipe", rng.choice(["small-cnn", "paper", "residual-cnn", "improved"]),
                    "--data", str(data), "--out", str(out), option, bad_value(rng, option)]
        kinds[kind.split()[0]] = kinds.get(kind.split()[0], 0) + 1
        before = snapshot(world, out)
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's refusal
            code = exc.code
        printed = capsys.readouterr()
        where = f"case {case}, {kind}: brainlab {' '.join(argv)}\n{printed.err[-2000:]}"
        assert code in allowed, where
        assert code == 0 or printed.err.strip(), where
        assert "Traceback" not in printed.err + printed.out, where
        after = snapshot(world, out)  # new files (the decoded-image cache) are fine; a changed or lost one is not
        assert {f: after.get(f) for f in before} == before, "a file outside --out changed: " + where
    print(f"\nfuzz: {sum(kinds.values())} cases in "
          f"{time.monotonic() - started:.0f} s: {kinds}; {trainings} trainings")
    assert set(kinds) == {"dataset", "manifest", "run", "option"}, kinds  # every kind of damage was tried
