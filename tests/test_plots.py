"""brainlab.plots: every figure has its title, labelled axes and class names, and shows the
numbers it was given."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from brainlab import evaluate, plots, runs
from brainlab.catalogue import CLASS_NAMES
from brainlab.evaluate import Predictions

Y_TRUE = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 3])
Y_PRED = np.array([0, 0, 1, 2, 1, 1, 0, 2, 3, 3])
HISTORY = {"accuracy": [0.4, 0.6, 0.7, 0.8], "val_accuracy": [0.3, 0.5, 0.45, 0.4],
           "loss": [1.3, 1.0, 0.8, 0.6], "val_loss": [1.4, 1.2, 1.25, 1.3]}


@pytest.fixture
def preds() -> Predictions:
    """Probabilities that predict Y_PRED with different confidences (0.40 .. 0.85)."""
    confidence = np.linspace(0.4, 0.85, len(Y_TRUE))
    probabilities = np.full((len(Y_TRUE), 4), 0.0)
    probabilities[:] = ((1 - confidence) / 3)[:, None]
    probabilities[np.arange(len(Y_TRUE)), Y_PRED] = confidence
    return Predictions(probabilities, Y_TRUE, [f"scan{i}.jpg" for i in range(10)], CLASS_NAMES, "official-test")


@pytest.fixture
def images() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (10, 16, 16, 3), dtype=np.uint8)


def tick_texts(labels) -> list[str]:
    return [label.get_text() for label in labels]


def assert_fits_a_notebook(fig):
    """Drawn as a notebook saves it (``bbox_inches="tight"``): at most 10 inches wide, every text
    readable (at least 7 pt) and no two texts that are drawn overlapping (labels, ticks, titles, legends)."""
    from unittest import mock

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    canvas = FigureCanvasAgg(fig)  # the PNG backend a notebook uses
    drawn = []
    original = Text.draw

    def record(text, renderer):
        original(text, renderer)
        if text.get_visible() and text.get_text().strip():
            drawn.append((text, text.get_window_extent(renderer)))

    with mock.patch.object(Text, "draw", record):
        canvas.draw()
    tight = fig.get_tightbbox(canvas.get_renderer())  # in inches: what savefig(bbox_inches="tight") keeps
    assert tight.width <= 10.0 and tight.height <= 12.5, f"{tight.width:.2f} x {tight.height:.2f} inches"
    assert drawn, "the figure shows no text"
    for text, _ in drawn:
        assert text.get_fontsize() >= 7, f"{text.get_text()!r} is {text.get_fontsize()} pt"
    for i, (a, box_a) in enumerate(drawn):
        for b, box_b in drawn[:i]:
            assert not _overlap(a, box_a, b, box_b), f"{a.get_text()!r} overlaps {b.get_text()!r}"


def _overlap(a, box_a, b, box_b) -> bool:
    """Whether two drawn texts overlap by more than a touch (10% of their size).

    Texts turned by the same angle (rotated tick labels) are compared in their own frame: their
    upright boxes would overlap even where the letters do not."""
    angle = np.deg2rad(a.get_rotation())
    c, s = abs(np.cos(angle)), abs(np.sin(angle))
    if a.get_rotation() != b.get_rotation() or abs(c - s) < 0.1:
        return box_a.shrunk(0.9, 0.9).overlaps(box_b.shrunk(0.9, 0.9))
    sizes = []
    for box in (box_a, box_b):  # the unturned width and height from the upright box's
        sizes.append(((box.width * c - box.height * s) / (c * c - s * s),
                      (box.height * c - box.width * s) / (c * c - s * s)))
    dx, dy = np.subtract(box_a.p0 + (box_a.width / 2, box_a.height / 2),
                         box_b.p0 + (box_b.width / 2, box_b.height / 2))
    along, across = dx * np.cos(angle) + dy * np.sin(angle), -dx * np.sin(angle) + dy * np.cos(angle)
    (wa, ha), (wb, hb) = sizes
    return abs(along) < 0.45 * (wa + wb) and abs(across) < 0.45 * (ha + hb)


# --------------------------------------------------------------------------- training


@pytest.mark.parametrize("source", ["dict", "history", "csv", "frame"])
def test_training_curves_from_every_kind_of_history(source, tmp_path):
    if source == "dict":
        history = HISTORY
    elif source == "history":
        history = type("History", (), {"history": HISTORY})()  # what model.fit returns
    elif source == "frame":
        history = pd.DataFrame(HISTORY)
    else:  # a run folder's history.csv, as train.fit writes it: a 0-based epoch column
        history = tmp_path / "history.csv"
        runs.write_history(history, [{"epoch": epoch, **{name: values[epoch] for name, values in HISTORY.items()}}
                                     for epoch in range(4)])
    fig = plots.training_curves(history, title="Small CNN")
    assert fig.get_suptitle() == "Small CNN"
    accuracy_ax, loss_ax = fig.axes
    assert (accuracy_ax.get_title(), loss_ax.get_title()) == ("Accuracy", "Loss")
    assert accuracy_ax.get_xlabel() == loss_ax.get_xlabel() == "epoch"
    assert (accuracy_ax.get_ylabel(), loss_ax.get_ylabel()) == ("accuracy", "loss")
    train, val, best = accuracy_ax.get_lines()
    assert train.get_xdata().tolist() == [1, 2, 3, 4]
    assert train.get_ydata().tolist() == HISTORY["accuracy"]
    assert val.get_ydata().tolist() == HISTORY["val_accuracy"]
    assert best.get_xdata()[0] == 2  # lowest validation loss, 1.2, at epoch 2
    assert tick_texts(accuracy_ax.get_legend().get_texts()) == [
        "training", "validation", "kept: lowest val_loss (epoch 2)"]
    assert_fits_a_notebook(fig)


def test_training_curves_mark_the_epoch_whose_model_is_kept_not_the_best_accuracy(tmp_path):
    # Validation accuracy peaks at epoch 2, validation loss is lowest at epoch 3: fit keeps epoch 3.
    history = {"accuracy": [0.4, 0.6, 0.7], "val_accuracy": [0.3, 0.6, 0.5],
               "loss": [1.3, 1.0, 0.8], "val_loss": [1.4, 1.2, 1.1]}
    for ax in plots.training_curves(history).axes:
        assert ax.get_lines()[-1].get_xdata()[0] == 3
    assert tick_texts(ax.get_legend().get_texts())[-1] == "kept: lowest val_loss (epoch 3)"
    # A run that watched validation accuracy (fit(monitor="val_accuracy")) kept epoch 2: its metrics.json says so.
    pd.DataFrame({"epoch": range(3), **history}).to_csv(tmp_path / "history.csv", index=False)
    (tmp_path / "metrics.json").write_text('{"monitor": "val_accuracy", "best_epoch": 1}')
    fig = plots.training_curves(tmp_path / "history.csv")
    assert fig.axes[0].get_lines()[-1].get_xdata()[0] == 2
    assert tick_texts(fig.axes[0].get_legend().get_texts())[-1] == "kept: highest val_accuracy (epoch 2)"
    # Without validation data fit keeps the lowest training loss: a run's metrics say "loss".
    run = type("FitResult", (), {"history": {"loss": [1.0, 0.7, 0.9], "accuracy": [0.5, 0.6, 0.6]},
                                 "metrics": {"monitor": "loss"}})()
    assert plots.training_curves(run).axes[1].get_lines()[-1].get_xdata()[0] == 2


def test_training_curves_without_validation_and_bad_inputs(tmp_path):
    fig = plots.training_curves({"accuracy": [0.5, 0.7], "loss": [1.0, 0.7]})
    assert len(fig.axes[0].get_lines()) == 1
    with pytest.raises(FileNotFoundError, match="nothere.csv"):
        plots.training_curves(tmp_path / "nothere.csv")
    (tmp_path / "history.csv").write_text("epoch,loss\n0,1.0\n1,ten\n")  # read as train.fit's runs are
    with pytest.raises(runs.RunFolderError, match=r"history.csv is damaged .*rm -r"):
        plots.training_curves(tmp_path / "history.csv")
    with pytest.raises(ValueError, match="neither accuracy nor loss"):
        plots.training_curves({"lr": [0.1, 0.01]})


# --------------------------------------------------------------------------- evaluation


def test_confusion_heatmap_shows_counts_and_row_shares(preds):
    fig = plots.confusion_heatmap(preds)
    assert fig.get_suptitle() == "Confusion matrix (official-test, 10 images)"
    counts_ax, rows_ax = fig.axes
    assert counts_ax.get_title() == "number of images"
    assert rows_ax.get_title() == "share of each true class (row-normalised)"
    for ax in (counts_ax, rows_ax):
        assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
        assert tick_texts(ax.get_xticklabels()) == list(CLASS_NAMES)
        assert tick_texts(ax.get_yticklabels()) == list(CLASS_NAMES)
    # Annotations, row by row: the hand-checked matrix of test_evaluate.
    assert [int(t.get_text()) for t in counts_ax.texts] == [2, 1, 1, 0, 1, 2, 0, 0, 0, 0, 1, 1, 0, 0, 0, 1]
    assert [t.get_text() for t in rows_ax.texts][:4] == ["0.50", "0.25", "0.25", "0.00"]
    assert_fits_a_notebook(fig)
    only_counts = plots.confusion_heatmap(preds, kind="counts")
    assert len(only_counts.axes) == 1
    with pytest.raises(ValueError, match="kind must be"):
        plots.confusion_heatmap(preds, kind="percent")


def test_roc_curves_have_one_line_per_class_and_auc_in_legend(preds):
    fig = plots.roc_curves(preds)
    ax = fig.axes[0]
    auc = evaluate.roc_auc(preds)
    assert fig.get_suptitle() == "ROC curves, one class against the rest (official-test)"
    assert ax.get_title() == f"macro AUC {auc['macro avg']:.3f}"
    assert ax.get_xlabel() == "false positive rate (1 - specificity)"
    assert ax.get_ylabel() == "true positive rate (recall)"
    legend = tick_texts(ax.get_legend().get_texts())
    assert legend == [f"{name} (AUC {auc[name]:.2f})" for name in CLASS_NAMES] + ["chance (AUC 0.50)"]
    glioma = evaluate.roc_curves(preds)["glioma_tumor"]
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), glioma["fpr"])
    assert_fits_a_notebook(fig)


def test_per_class_metric_bars_have_the_report_values(preds):
    fig = plots.per_class_metrics(preds)
    ax = fig.axes[0]
    assert fig.get_suptitle() == "Precision, recall and F1 per class (official-test)"
    assert ax.get_title() == "accuracy 0.600 on 10 images"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("class", "score")
    assert tick_texts(ax.get_xticklabels()) == list(CLASS_NAMES)
    precision_bars, recall_bars, f1_bars = ax.containers
    np.testing.assert_allclose([b.get_height() for b in precision_bars], [2 / 3, 2 / 3, 1 / 2, 1 / 2])
    np.testing.assert_allclose([b.get_height() for b in recall_bars], [1 / 2, 2 / 3, 1 / 2, 1])
    np.testing.assert_allclose([b.get_height() for b in f1_bars], [4 / 7, 2 / 3, 1 / 2, 2 / 3])
    assert_fits_a_notebook(fig)


def test_per_class_metrics_beside_the_paper_mark_missing_values(preds, monkeypatch):
    from brainlab import paper

    monkeypatch.setitem(paper.PER_CLASS["no_tumor"], "recall", None)
    fig = plots.per_class_metrics(preds, compare_with_paper=True)
    assert fig.get_suptitle() == "Per-class metrics: ours (official-test) beside the paper's"
    assert [ax.get_title() for ax in fig.axes] == ["precision", "recall", "f1-score"]
    assert all(ax.get_xlabel() == "score" for ax in fig.axes)
    assert fig.axes[0].get_ylabel() == "class"
    assert tick_texts(fig.axes[0].get_yticklabels()) == list(CLASS_NAMES)
    recall_ax = fig.axes[1]
    ours, theirs = recall_ax.containers
    np.testing.assert_allclose([b.get_width() for b in ours], [1 / 2, 2 / 3, 1 / 2, 1])
    paper_labels = [t.get_text() for t in recall_ax.texts][4:]
    assert paper_labels == ["0.19", "0.52", "paper: n/a", "0.54"]
    assert theirs[0].get_width() == pytest.approx(0.19)
    legend = tick_texts(fig.legends[0].get_texts())
    assert legend == ["ours (official-test)", "paper (official test)"]
    assert_fits_a_notebook(fig)


# --------------------------------------------------------------------------- images


def test_sample_grid_titles_are_class_names_taken_in_turn(images):
    fig = plots.sample_grid(images, Y_TRUE, class_names=CLASS_NAMES, n=8, title="Some scans")
    assert fig.get_suptitle() == "Some scans"
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    # Classes in turn while each still has images left: 4 + 3 + 2 + 1 images.
    assert titles == [*CLASS_NAMES, *CLASS_NAMES[:3], "glioma_tumor"]
    assert_fits_a_notebook(fig)


def test_sample_grid_from_an_image_set_with_predictions(images, preds):
    from brainlab.data import ImageSet

    image_set = ImageSet("official-test", images, Y_TRUE.astype(np.int32), preds.paths)
    fig = plots.sample_grid(image_set, predictions=preds, n=10)
    assert fig.get_suptitle() == "Predictions on sample images (official-test)"
    shown = [ax for ax in fig.axes if ax.get_title()]
    expected = {f"true: {CLASS_NAMES[t]}\npred: {CLASS_NAMES[p]} ({c:.2f})":
                plots.CORRECT_COLOR if t == p else plots.WRONG_COLOR
                for t, p, c in zip(Y_TRUE, Y_PRED, preds.confidence)}
    assert "true: glioma_tumor\npred: no_tumor (0.55)" in expected  # image 3, wrong
    assert {ax.get_title(): ax.title.get_color() for ax in shown} == expected
    for ax in shown:  # each tile shows the image its title describes
        i = next(i for i in range(10) if preds.confidence[i] == pytest.approx(float(ax.get_title()[-5:-1])))
        np.testing.assert_array_equal(ax.images[0].get_array(), images[i])


def test_grayscale_images_are_shown_in_gray():
    gray = np.random.default_rng(1).integers(0, 256, (4, 8, 8, 1), dtype=np.uint8)
    fig = plots.sample_grid(gray, [0, 1, 2, 3], n=4)
    shown = fig.axes[0].images[0]
    assert shown.get_array().shape == (8, 8) and shown.get_cmap().name == "gray"


def test_confident_mistakes_come_surest_first(images, preds):
    fig = plots.confident_mistakes(preds, images, n=3)
    assert fig.get_suptitle() == "The 3 most confident mistakes (official-test)"
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    # Mistakes: images 2 (0.50), 3 (0.55), 6 (0.70), 8 (0.80): the surest three first.
    assert titles == ["true: no_tumor\npred: pituitary_tumor (0.80)",
                      "true: meningioma_tumor\npred: glioma_tumor (0.70)",
                      "true: glioma_tumor\npred: no_tumor (0.55)"]
    assert [ax.get_xlabel() for ax in fig.axes[:3]] == ["scan8.jpg", "scan6.jpg", "scan3.jpg"]
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), images[8])


def test_confident_mistakes_read_images_from_files_or_say_what_to_pass(tmp_path, preds):
    from PIL import Image

    for i, path in enumerate(preds.paths):
        Image.new("RGB", (20, 20), (10 * i, 0, 0)).save(tmp_path / path)
    preds.root = tmp_path
    fig = plots.confident_mistakes(preds, n=2)
    assert int(fig.axes[0].images[0].get_array()[0, 0, 0]) == pytest.approx(80, abs=3)  # scan8: red 80
    preds.root = tmp_path / "elsewhere"
    with pytest.raises(FileNotFoundError, match="images="):
        plots.confident_mistakes(preds, n=2)


def test_no_mistakes_gives_a_figure_that_says_so(images):
    perfect = Predictions.from_labels(Y_TRUE, Y_TRUE, CLASS_NAMES, split="train")
    fig = plots.confident_mistakes(perfect, images)
    assert fig.get_suptitle() == "Most confident mistakes (train)"
    assert fig.axes[0].texts[0].get_text() == "No mistakes on this split."


def test_class_balance_counts_every_split(images):
    from brainlab.data import ImageSet

    train = ImageSet("official-train", images, Y_TRUE.astype(np.int32), [str(i) for i in range(10)])
    test = ImageSet("official-test", images[:4], np.array([3, 3, 2, 0], dtype=np.int32), list("abcd"))
    for sets in ([train, test], {"official-train": Y_TRUE, "official-test": [3, 3, 2, 0]},
                 {"official-train": dict(zip(CLASS_NAMES, [4, 3, 2, 1])),
                  "official-test": {"glioma_tumor": 1, "no_tumor": 1, "pituitary_tumor": 2}}):
        fig = plots.class_balance(sets)
        ax = fig.axes[0]
        assert fig.get_suptitle() == "Images per class"
        assert ax.get_title() == "official-train: 10 images, official-test: 4 images"
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("class", "images")
        assert tick_texts(ax.get_xticklabels()) == list(CLASS_NAMES)
        train_bars, test_bars = ax.containers
        assert [b.get_height() for b in train_bars] == [4, 3, 2, 1]
        assert [b.get_height() for b in test_bars] == [1, 0, 1, 2]
        assert tick_texts(ax.get_legend().get_texts()) == ["official-train", "official-test"]
        assert_fits_a_notebook(fig)


# --------------------------------------------------------------------------- one prediction, explained


def test_overlay_blends_the_coloured_map_over_the_image():
    image = np.full((8, 8, 3), 100.0, dtype=np.float32)
    heatmap = np.zeros((8, 8))
    heatmap[:4] = 1.0
    blended = plots.overlay(image, heatmap, alpha=0.5)
    assert blended.shape == (8, 8, 3) and blended.dtype == np.uint8
    hot = np.array(matplotlib.colormaps["jet"](1.0)[:3]) * 255
    cold = np.array(matplotlib.colormaps["jet"](0.0)[:3]) * 255
    np.testing.assert_allclose(blended[0, 0], np.floor(0.5 * 100 + 0.5 * hot), atol=1)
    np.testing.assert_allclose(blended[7, 7], np.floor(0.5 * 100 + 0.5 * cold), atol=1)
    gray = plots.overlay(image[..., :1], heatmap)  # one channel: shown as RGB
    assert gray.shape == (8, 8, 3)


def test_explained_prediction_shows_image_overlay_and_probabilities(images):
    heatmap = np.zeros((16, 16))
    heatmap[:8, :8] = 1.0  # evidence top-left
    probabilities = [0.1, 0.6, 0.2, 0.1]
    fig = plots.explained_prediction(images[0], probabilities, heatmap, CLASS_NAMES, true_label=0)
    assert fig._suptitle.get_text() == "true: glioma_tumor | predicted: meningioma_tumor, p = 0.60 (wrong)"
    picture, overlay, bars = fig.axes
    assert picture.get_title() == "image"
    assert overlay.get_title() == "Grad-CAM for meningioma_tumor"
    assert tick_texts(bars.get_yticklabels()) == list(CLASS_NAMES)
    assert bars.get_xlabel() == "predicted probability" and bars.get_ylabel() == "class"
    widths = [patch.get_width() for patch in bars.patches]
    np.testing.assert_allclose(widths, probabilities)
    green = matplotlib.colors.to_rgba(plots.CORRECT_COLOR)
    assert [patch.get_facecolor() == green for patch in bars.patches] == [True, False, False, False]
    shown = overlay.images[0].get_array()
    assert shown[:8, :8].mean() != shown[8:, 8:].mean()  # the heat is blended in where it lies
    assert_fits_a_notebook(fig)


def test_explained_prediction_for_another_class_and_without_a_label(images):
    fig = plots.explained_prediction(images[1], [0.7, 0.1, 0.1, 0.1], np.ones((16, 16)), CLASS_NAMES,
                                     explained=2)
    assert fig._suptitle.get_text() == "predicted: glioma_tumor, p = 0.70"
    assert fig.axes[1].get_title() == "Grad-CAM for no_tumor"


# --------------------------------------------------------------------------- many runs


def test_run_spread_draws_every_run_and_each_groups_mean_and_std():
    from matplotlib.collections import PathCollection

    results = pd.DataFrame({"variant": ["paper"] * 3 + ["pooling"] * 3 + ["single"],
                            "seed": [1, 2, 3, 1, 2, 3, 1],
                            "test accuracy": [0.4, 0.5, 0.6, 0.7, 0.8, 0.75, 0.3]})
    fig = plots.run_spread(results, reference=0.51)
    ax = fig.axes[0]
    assert tick_texts(ax.get_yticklabels()) == ["paper", "pooling", "single"]
    assert ax.get_xlabel() == "test accuracy" and ax.get_ylabel() == "variant"
    assert fig._suptitle.get_text() == "Test accuracy, 1-3 runs per variant"
    assert plots.run_spread(results[:3])._suptitle.get_text() == "Test accuracy, 3 runs per variant"
    dots = np.concatenate([c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)])
    assert sorted(dots[:, 0]) == sorted(results["test accuracy"])  # one dot per run, where it belongs
    for row, variant in enumerate(["paper", "pooling", "single"]):
        at_row = dots[np.abs(dots[:, 1] - row) < 0.2, 0]
        assert sorted(at_row) == sorted(results.loc[results.variant == variant, "test accuracy"])
    means = [line.get_xdata()[0] for line in ax.lines if line.get_marker() == "o"]
    np.testing.assert_allclose(means, [0.5, 0.75, 0.3])
    assert any(line.get_linestyle() == "--" and line.get_xdata()[0] == 0.51 for line in ax.lines)
    bars = [c for c in ax.collections if not isinstance(c, PathCollection)]  # the error bars
    widths = sorted(float(np.ptp(segment[:, 0])) for bar in bars for segment in bar.get_segments())
    np.testing.assert_allclose(widths, sorted([2 * 0.1, 2 * results["test accuracy"][3:6].std()]))
    labels = ax.get_legend_handles_labels()[1]
    assert "the paper (0.51)" in labels and "mean ± std over runs" in labels
    assert_fits_a_notebook(fig)


def test_run_spread_says_which_column_is_missing():
    with pytest.raises(ValueError, match="no column 'val accuracy'"):
        plots.run_spread(pd.DataFrame({"variant": ["a"], "test accuracy": [0.5]}), value="val accuracy")


def test_the_notebook_check_catches_crowded_and_tiny_text():
    from matplotlib.figure import Figure

    crowded = Figure(figsize=(3, 2))
    ax = crowded.add_subplot()
    ax.bar(range(4), [1, 2, 3, 4], tick_label=list(CLASS_NAMES))  # four long names under 3 inches
    with pytest.raises(AssertionError, match="overlaps"):
        assert_fits_a_notebook(crowded)
    ax.tick_params(axis="x", labelrotation=30, labelsize=5)
    with pytest.raises(AssertionError, match="is 5.0 pt"):
        assert_fits_a_notebook(crowded)
    ax.tick_params(axis="x", labelsize=8)
    crowded.set_layout_engine("constrained")
    assert_fits_a_notebook(crowded)  # turned, the names no longer touch
    wide = Figure(figsize=(14, 3))  # its axes and labels are 11.3 inches wide, past what a notebook shows
    wide.add_subplot().set_title("wide")
    with pytest.raises(AssertionError, match="11.28 x 2.76 inches"):
        assert_fits_a_notebook(wide)
