"""Split manifests are checked row by row before any image is read, each refusal naming its line."""
from __future__ import annotations

import pytest

from brainlab import data
from brainlab.cli import main
from brainlab.errors import BrainlabError
from conftest import make_dataset

HEADER = "path,class,split\n"
GOOD = ["Training/glioma_tumor/img0.jpg,glioma_tumor,train", "Training/no_tumor/img0.jpg,no_tumor,val",
        "Testing/meningioma_tumor/img0.jpg,meningioma_tumor,test"]


@pytest.fixture
def root(tmp_path):
    return make_dataset(tmp_path / "data", per_class=1, size=32)


def write(path, *lines, encoding="utf-8", header=HEADER):
    path.write_bytes((header + "".join(f"{line}\n" for line in lines)).encode(encoding))
    return path


@pytest.mark.parametrize("lines, message", [
    (GOOD + [GOOD[0]], "line 5: Training/glioma_tumor/img0.jpg is listed on line 2 already; list each image once"),
    (GOOD + ["Training/glioma_tumor/img0.jpg,glioma_tumor,test"],
     "line 5: Training/glioma_tumor/img0.jpg is listed on line 2 already, in train, and here in test: an image in "
     "two parts leaks"),
    (GOOD + ["Training/./glioma_tumor/img0.jpg,glioma_tumor,train"], "line 5: Training/glioma_tumor/img0.jpg is listed"),
    (GOOD[:2], "no test rows; it needs at least one image in each of train, val, test"),
    (GOOD + ["../outside.jpg,glioma_tumor,train"], "line 5: ../outside.jpg is outside the data folder"),
    (GOOD + ["/etc/passwd,glioma_tumor,train"], "line 5: /etc/passwd is outside the data folder"),
    (GOOD + ["Training/glioma_tumor/gone.jpg,glioma_tumor,train"],
     "line 5: Training/glioma_tumor/gone.jpg is not a file in"),
    (GOOD + ["Training/glioma_tumor/img0.jpg,glioma_tumor"], "line 5: needs a path, a class and a split"),
    (GOOD + ["Training/glioma_tumor/img0.jpg,glioma_tumor,train,extra"], "line 5: needs a path, a class and a split"),
    (GOOD + [",glioma_tumor,train"], "line 5: needs a path, a class and a split"),
    (GOOD + ["Training/glioma_tumor/img0.jpg,tumour,train"], "line 5: 'Training/glioma_tumor/img0.jpg' has class 'tumour'"),
])
def test_each_bad_row_is_named(root, tmp_path, lines, message):
    manifest = write(tmp_path / "m.csv", *lines)
    with pytest.raises(BrainlabError) as caught:
        data.read_manifest(manifest, root, parts=("train", "val", "test"))
    assert str(caught.value).startswith(f"{manifest}, ") and message in str(caught.value)


def test_several_bad_rows_are_listed_together(root, tmp_path):
    manifest = write(tmp_path / "m.csv", *GOOD, *(f"Training/x/{i}.jpg,glioma_tumor,train" for i in range(7)))
    message = str(pytest.raises(BrainlabError, data.read_manifest, manifest, root).value)
    assert "7 rows cannot be used" in message and "line 5:" in message and "... and 2 more" in message


def test_outside_paths_only_when_allowed(root, tmp_path):
    outside = make_dataset(tmp_path / "other", per_class=1, size=32) / "Testing" / "no_tumor" / "img0.jpg"
    manifest = write(tmp_path / "m.csv", *GOOD, f"{outside},no_tumor,test", "../other/Training/no_tumor/img0.jpg,no_tumor,val")
    with pytest.raises(BrainlabError, match="line 5: .* is outside the data folder .*--allow-outside"):
        data.read_manifest(manifest, root)
    rows = data.read_manifest(manifest, root, allow_outside=True)
    assert rows[-1] == ("../other/Training/no_tumor/img0.jpg", "no_tumor", "val")


def test_a_spreadsheets_byte_order_mark_is_fine_latin1_is_named(root, tmp_path):
    rows = data.read_manifest(write(tmp_path / "bom.csv", *GOOD, encoding="utf-8-sig"), root)
    assert [r[0] for r in rows] == [line.split(",")[0] for line in GOOD]
    latin = write(tmp_path / "latin.csv", *GOOD, "Training/glioma_tumor/é.jpg,glioma_tumor,train", encoding="latin-1")
    with pytest.raises(BrainlabError, match=r"latin.csv, line 5: byte 0xe9 is not UTF-8 .*'CSV UTF-8'"):
        data.read_manifest(latin)


def test_train_refuses_a_bad_manifest_before_any_work(root, tmp_path, capsys):
    manifest = write(tmp_path / "m.csv", *GOOD, *[GOOD[0]] * 49)
    out = tmp_path / "run"
    code = main(["train", "--recipe", "small-cnn", "--data", str(root), "--manifest", str(manifest),
                 "--split", "clean", "--image-size", "32", "--epochs", "1", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "rows cannot be used" in err and "line 5: Training/glioma_tumor/img0.jpg is listed" in err
    assert "Traceback" not in err and not (out / "run").exists()


def test_evaluate_refuses_a_repeated_row(root, tmp_path, capsys):
    """One row 50 times and one other once gave 'accuracy 0.980 on 51 images'."""
    run = tmp_path / "run"
    (run / "run").mkdir(parents=True)
    import keras

    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(4, activation="softmax")])
    model.save(run / "run" / "best.keras")
    rows = ["Testing/glioma_tumor/img0.jpg,glioma_tumor,external"] * 50 + ["Testing/no_tumor/img0.jpg,no_tumor,external"]
    manifest = write(tmp_path / "m.csv", *rows)
    code = main(["evaluate", "--run", str(run), "--data", str(root), "--manifest", str(manifest),
                 "--out", str(tmp_path / "ev")])
    err = capsys.readouterr().err
    assert code == 1 and "49 rows cannot be used" in err and "is listed on line 2 already" in err, err
    assert not (tmp_path / "ev" / "evaluation.json").exists()
