"""Interactive widgets: what a convolution does, and what a trained model says about each image.

Each widget is a thin shell around pure functions that you (or a test) can call directly:
:func:`feature_map` computes exactly what :func:`kernel_playground` shows, and
:func:`prediction_explorer` draws ``brainlab.plots.explained_prediction`` with a Grad-CAM map
from ``brainlab.explain.grad_cam``.

>>> from brainlab.widgets import kernel_playground, prediction_explorer
>>> kernel_playground(image)                 # edit a kernel, watch the feature map
>>> prediction_explorer(model, splits.test)  # step through test images with Grad-CAM
"""
from __future__ import annotations

import io
import sys

import ipywidgets as widgets
import numpy as np

__all__ = ["CUSTOM", "KernelPlayground", "ORDERS", "PREDICTED", "PRESETS", "PredictionExplorer", "enable_colab_widgets",
           "explore_order", "feature_map", "kernel_playground", "png", "prediction_explorer", "render"]


def enable_colab_widgets() -> bool:
    """On Colab with ipywidgets 8 or newer, switch on the widget manager Colab asks for; elsewhere do nothing.

    Colab's built-in manager renders the ipywidgets 7 that Colab preinstalls. For ipywidgets 8
    widgets Colab asks for ``google.colab.output.enable_custom_widget_manager()``, which makes
    every widget shown afterwards load its code from Colab's widget CDN. Returns True when it
    was called. The two widget functions below call this before they build anything.
    """
    if "google.colab" not in sys.modules or int(widgets.__version__.split(".")[0]) < 8:
        return False
    from google.colab import output

    output.enable_custom_widget_manager()
    return True


# A few classic 3x3 kernels. Each one is a question asked at every pixel:
# "how much does this neighbourhood look like me?"
PRESETS = {
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "box blur": [[1 / 9] * 3] * 3,
    "edges (Laplacian)": [[0, -1, 0], [-1, 4, -1], [0, -1, 0]],
    "vertical edges (Sobel x)": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "horizontal edges (Sobel y)": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
}
CUSTOM = "custom"  # what the preset list shows once you edit a kernel by hand


def _to_gray(image) -> np.ndarray:
    """An image as a 2-D float32 array: (H, W) is kept, (H, W, 1) squeezed, (H, W, 3) averaged."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3 and image.shape[-1] in (1, 3):
        image = image.mean(axis=-1)
    if image.ndim != 2:
        raise ValueError(f"Expected one image of shape (H, W), (H, W, 1) or (H, W, 3); got shape {image.shape}. "
                         "For a batch, pass one image: images[0].")
    return image


def feature_map(image, kernel, relu: bool = False) -> np.ndarray:
    """Slide ``kernel`` over ``image`` and return the feature map, the same size as the image.

    At every pixel the kernel is laid over the neighbourhood, multiplied element by element
    and summed. This is cross-correlation, which is what ``tf.nn.conv2d`` and Keras's
    ``Conv2D`` compute under the name "convolution". The border is padded with zeros
    ("same" padding), so the output has the input's height and width. With ``relu=True``
    negative responses are set to zero, as a ReLU after a convolution layer does.
    """
    gray = _to_gray(image)
    kernel = np.asarray(kernel, dtype=np.float32)
    if kernel.ndim != 2 or kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
        raise ValueError(f"The kernel must be a 2-D array with odd sides (3x3, 5x5, ...) so that it has a "
                         f"centre pixel; got shape {kernel.shape}.")
    pad_h, pad_w = kernel.shape[0] // 2, kernel.shape[1] // 2
    padded = np.pad(gray, ((pad_h, pad_h), (pad_w, pad_w)))
    # windows[i, j] is the kernel-sized neighbourhood around pixel (i, j).
    windows = np.lib.stride_tricks.sliding_window_view(padded, kernel.shape)
    out = np.einsum("ijkl,kl->ij", windows, kernel)
    return np.maximum(out, 0) if relu else out


def png(fig, dpi: int = 80) -> bytes:
    """A matplotlib Figure as PNG bytes (what an ``ipywidgets.Image`` shows)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def render(image, fmap, title: str = "feature map") -> bytes:
    """The image and its feature map side by side, as PNG bytes (what the playground shows)."""
    from matplotlib.figure import Figure  # no pyplot: nothing piles up, nothing is shown twice

    fig = Figure(figsize=(8, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.imshow(_to_gray(image), cmap="gray")
    left.set_title("input image")
    shown = right.imshow(fmap, cmap="magma")
    right.set_title(title)
    for ax in (left, right):
        ax.set_xlabel("x (pixels)")
        ax.set_ylabel("y (pixels)")
    fig.colorbar(shown, ax=right, label="response")
    return png(fig)


class KernelPlayground(widgets.VBox):
    """A 3x3 grid of numbers (the kernel), a preset list, a ReLU switch and the picture.

    Every change recomputes :func:`feature_map` and redraws. ``playground.kernel`` is the
    kernel now shown, ``playground.output`` the feature map now shown.
    """

    def __init__(self, image, kernel="edges (Laplacian)", relu: bool = False):
        self.image = _to_gray(image)
        self._busy = False  # True while several cells change at once: redraw once at the end
        self.preset = widgets.Dropdown(options=[*PRESETS, CUSTOM], description="kernel")
        self.cells = [widgets.FloatText(layout=widgets.Layout(width="70px")) for _ in range(9)]
        self.relu = widgets.Checkbox(value=relu, description="ReLU after the convolution", indent=False)
        self.picture = widgets.Image(format="png")
        grid = widgets.GridBox(self.cells, layout=widgets.Layout(grid_template_columns="repeat(3, 75px)"))
        super().__init__([widgets.HBox([self.preset, self.relu]), grid, self.picture])

        self.set_kernel(kernel)
        self.preset.observe(self._on_preset, names="value")
        self.relu.observe(lambda _: self.update(), names="value")
        for cell in self.cells:
            cell.observe(self._on_cell, names="value")

    @property
    def kernel(self) -> np.ndarray:
        return np.array([cell.value for cell in self.cells], dtype=np.float32).reshape(3, 3)

    def set_kernel(self, kernel) -> None:
        """Show ``kernel``: a preset name or a 3x3 array of numbers."""
        name = kernel if isinstance(kernel, str) else CUSTOM
        if isinstance(kernel, str):
            if kernel not in PRESETS:
                raise ValueError(f"Unknown kernel {kernel!r}; choose one of {', '.join(PRESETS)} "
                                 "or pass a 3x3 array.")
            kernel = PRESETS[kernel]
        values = np.asarray(kernel, dtype=np.float32)
        if values.shape != (3, 3):
            raise ValueError(f"The playground shows 3x3 kernels; got shape {values.shape}.")
        self._busy = True
        for cell, value in zip(self.cells, values.ravel()):
            cell.value = round(float(value), 4)
        self.preset.value = name
        self._busy = False
        self.update()

    def update(self) -> None:
        """Recompute the feature map and redraw the picture."""
        self.output = feature_map(self.image, self.kernel, relu=self.relu.value)
        relu = " + ReLU" if self.relu.value else ""
        self.picture.value = render(self.image, self.output, f"feature map ({self.preset.value}{relu})")

    def _on_preset(self, change) -> None:
        if not self._busy and change["new"] != CUSTOM:
            self.set_kernel(change["new"])

    def _on_cell(self, change) -> None:
        if self._busy:
            return
        self._busy = True
        self.preset.value = CUSTOM  # the grid no longer shows a preset
        self._busy = False
        self.update()


def kernel_playground(image, kernel="edges (Laplacian)", relu: bool = False):
    """A widget to edit a 3x3 kernel and watch the feature map of ``image`` change.

    ``image``: one image, (H, W), (H, W, 1) or (H, W, 3) (colour is averaged to gray).
    ``kernel``: a name from :data:`PRESETS` or a 3x3 array. Put the call last in a cell
    to show the widget. Outside a live notebook the widget is still built (and the
    picture drawn), so the notebook runs the same everywhere.
    """
    enable_colab_widgets()
    return KernelPlayground(image, kernel, relu)


# --------------------------------------------------------------------------- predictions, explained

ORDERS = ("file order", "mistakes first", "least confident first")
PREDICTED = -1  # the Grad-CAM target meaning "whatever class the model predicts"


def explore_order(predictions, order: str = "file order") -> np.ndarray:
    """Positions of the images in the order the explorer steps through them.

    ``"file order"``: the split's order. ``"mistakes first"``: the wrong predictions, the most
    confident first (as ``evaluate.most_confident_mistakes``), then the right ones in file order.
    ``"least confident first"``: every image, the model's least sure answers first.
    """
    n = len(predictions)
    if order == "file order":
        return np.arange(n)
    if order == "mistakes first":
        wrong = np.flatnonzero(predictions.y_pred != predictions.y_true)
        wrong = wrong[np.argsort(-predictions.confidence[wrong], kind="stable")]
        right = np.flatnonzero(predictions.y_pred == predictions.y_true)
        return np.concatenate([wrong, right]).astype(int)
    if order == "least confident first":
        return np.argsort(predictions.confidence, kind="stable")
    raise ValueError(f"Unknown order {order!r}; choose one of {', '.join(ORDERS)}.")


class PredictionExplorer(widgets.VBox):
    """Step through the images of a split: the true class, the model's probabilities, Grad-CAM.

    The slider picks an image, ``order`` the order of the images, ``target`` the class Grad-CAM
    explains (by default the predicted one). After every change ``position`` (the image's
    index in the split), ``probabilities`` (the model's output for it), ``heatmap`` (the
    Grad-CAM map), ``caption.value`` and ``figure`` describe what the widget now shows.
    Heatmaps are computed when first shown and kept.
    """

    def __init__(self, model, images, predictions=None, order: str = "file order",
                 layer_name: str | None = None, alpha: float = 0.4):
        from brainlab import evaluate

        self.model, self.layer_name, self.alpha = model, layer_name, alpha
        self.images = np.asarray(getattr(images, "images", images))
        if self.images.ndim != 4 or not len(self.images):
            raise ValueError(f"Expected a batch of images of shape (N, H, W, C) with N > 0, such as an "
                             f"ImageSet from brainlab.data; got shape {self.images.shape}.")
        if predictions is None:
            if not hasattr(images, "labels"):
                raise ValueError("Pass predictions=evaluate.predict(model, ...) with plain arrays of images, "
                                 "or pass an ImageSet (it carries the labels).")
            predictions = evaluate.predict(model, images)
        if len(predictions) != len(self.images):
            raise ValueError(f"{len(predictions)} predictions for {len(self.images)} images: "
                             "predict on the same images, in the same order.")
        self.predictions = predictions
        self.positions = explore_order(predictions, order)  # checks ``order`` too
        self._heatmaps: dict[tuple[int, int], np.ndarray] = {}

        names = predictions.class_names
        self.order = widgets.Dropdown(options=list(ORDERS), value=order, description="order")
        self.target = widgets.Dropdown(options=[("predicted class", PREDICTED)] + [(n, k) for k, n in enumerate(names)],
                                       value=PREDICTED, description="Grad-CAM for",
                                       style={"description_width": "initial"})  # the label whole, not "Grad-CAM…"
        self.slider = widgets.IntSlider(min=0, max=len(predictions) - 1, value=0, description="image",
                                        continuous_update=False)
        self.caption = widgets.HTML()
        self.picture = widgets.Image(format="png")
        super().__init__([widgets.HBox([self.slider, self.order, self.target]), self.caption, self.picture])

        self.order.observe(self._on_order, names="value")
        self.slider.observe(lambda _: self.update(), names="value")
        self.target.observe(lambda _: self.update(), names="value")
        self.update()

    def heatmap_for(self, position: int, class_index: int) -> np.ndarray:
        """The Grad-CAM map of image ``position`` for ``class_index`` (computed once, then kept)."""
        from brainlab.explain import grad_cam

        key = (int(position), int(class_index))
        if key not in self._heatmaps:
            self._heatmaps[key] = grad_cam(self.model, self.images[position], class_index, self.layer_name)
        return self._heatmaps[key]

    def update(self) -> None:
        """Show the image the slider points at."""
        from brainlab.plots import explained_prediction

        p = self.predictions
        self.position = int(self.positions[self.slider.value])
        self.probabilities = p.probabilities[self.position]
        predicted, true = int(p.y_pred[self.position]), int(p.y_true[self.position])
        explained = predicted if self.target.value == PREDICTED else int(self.target.value)
        self.heatmap = self.heatmap_for(self.position, explained)
        self.figure = explained_prediction(self.images[self.position], self.probabilities, self.heatmap,
                                           p.class_names, true, explained, self.alpha)
        self.picture.value = png(self.figure)
        verdict = "right" if predicted == true else "wrong"
        self.caption.value = (
            f"<b>{self.slider.value + 1} of {len(p)}</b> ({p.split}, {self.order.value}): "
            f"<code>{p.paths[self.position]}</code><br>"
            f"true: <b>{p.class_names[true]}</b> | predicted: <b>{p.class_names[predicted]}</b> "
            f"(p = {self.probabilities[predicted]:.2f}, {verdict}) | Grad-CAM for {p.class_names[explained]}")

    def _on_order(self, change) -> None:
        self.positions = explore_order(self.predictions, change["new"])
        if self.slider.value == 0:
            self.update()
        else:
            self.slider.value = 0  # observing the slider redraws


def prediction_explorer(model, images, predictions=None, order: str = "file order",
                        layer_name: str | None = None, alpha: float = 0.4):
    """A widget to step through ``images`` with the true class, the probabilities and Grad-CAM.

    ``images``: an ImageSet from ``brainlab.data`` (or an array of images with ``predictions``).
    ``predictions``: ``evaluate.predict(model, images)``, computed here when not given.
    ``order``: one of :data:`ORDERS`, e.g. ``"mistakes first"``. ``layer_name``: the layer
    Grad-CAM looks at (default: the last feature map). Put the call last in a cell to show it.
    """
    enable_colab_widgets()
    return PredictionExplorer(model, images, predictions, order, layer_name, alpha)
