"""The second dataset through the command line: doctor --data on a Testing-only copy, fetch-data --dataset."""
from __future__ import annotations

import pytest
from conftest import make_dataset
from test_audit_across import make_external

from brainlab.cli import main


def test_doctor_recognises_a_testing_only_copy_and_says_what_it_did_not_check(tmp_path, capsys):
    b = tmp_path / "b"
    make_external(b, make_dataset(tmp_path / "a", per_class=3, size=64))
    assert main(["doctor", "--data", str(b)]) == 0
    out = capsys.readouterr().out
    assert '"Brain Tumor MRI Dataset", M. Nickparvar' in out and "glioma, meningioma, notumor, pituitary" in out
    assert "meningioma_tumor           4" in out and "no_tumor                   3" in out  # 1 planted in meningioma/
    assert "Training/: not in this folder, not checked" in out
    assert "Testing/notumor: expected 405 images, found 3" in out  # the catalogue's counts, for the split present
    assert "The folder is usable for evaluation (Testing only)." in out


def test_fetch_data_names_the_second_dataset_and_asks_kaggle_for_it(tmp_path, monkeypatch, capsys):
    import kagglehub

    asked = []

    def offline(handle):
        asked.append(handle)
        raise ConnectionError("kaggle.com unreachable")

    monkeypatch.setattr(kagglehub, "dataset_download", offline)
    assert main(["fetch-data", "--dataset", "nickparvar", "--to", str(tmp_path / "nick")]) == 1
    err = capsys.readouterr().err
    assert asked == ["masoudnickparvar/brain-tumor-mri-dataset"]
    assert "kaggle: ConnectionError: kaggle.com unreachable" in err and "github" not in err  # it has no archive
    assert "brainlab fetch-data --dataset nickparvar" in err
    assert not (tmp_path / "nick").exists()


def test_fetch_data_refuses_an_unknown_dataset(tmp_path, capsys):
    with pytest.raises(SystemExit) as refused:  # a bad option value: argparse's exit status 2
        main(["fetch-data", "--dataset", "mnist", "--to", str(tmp_path / "x")])
    assert refused.value.code == 2
    assert "no dataset called 'mnist'" in capsys.readouterr().err
