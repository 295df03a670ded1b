"""Interactive widgets for seeing what a convolution does.

Each widget is a thin shell around a pure function that you (or a test) can call
directly: :func:`feature_map` computes exactly what :func:`kernel_playground` shows.

>>> from brainlab.widgets import kernel_playground
>>> kernel_playground(image)       # last line of a notebook cell: edit the kernel, watch the map
"""
from __future__ import annotations

import io

import ipywidgets as widgets
import numpy as np

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


def to_gray(image) -> np.ndarray:
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
    gray = to_gray(image)
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


def render(image, fmap, title: str = "feature map") -> bytes:
    """The image and its feature map side by side, as PNG bytes (what the playground shows)."""
    from matplotlib.figure import Figure  # no pyplot: nothing piles up, nothing is shown twice

    fig = Figure(figsize=(8, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.imshow(to_gray(image), cmap="gray")
    left.set_title("input image")
    shown = right.imshow(fmap, cmap="magma")
    right.set_title(title)
    for ax in (left, right):
        ax.set_xlabel("x (pixels)")
        ax.set_ylabel("y (pixels)")
    fig.colorbar(shown, ax=right, label="response")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


class KernelPlayground(widgets.VBox):
    """A 3x3 grid of numbers (the kernel), a preset list, a ReLU switch and the picture.

    Every change recomputes :func:`feature_map` and redraws. ``playground.kernel`` is the
    kernel now shown, ``playground.output`` the feature map now shown.
    """

    def __init__(self, image, kernel="edges (Laplacian)", relu: bool = False):
        self.image = to_gray(image)
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
    return KernelPlayground(image, kernel, relu)
