"""A notebook's PNG outputs re-encoded smaller (fewer colours, then fewer pixels) until it fits its size limit."""
from __future__ import annotations

import base64
import io

from brainlab.course import notebook_bytes
from tools.run_course.check import MAX_NOTEBOOK_BYTES

__all__ = ["shrink_images"]


def shrink_images(nb, limit: int = MAX_NOTEBOOK_BYTES) -> int:
    """Re-encode the PNG outputs of ``nb`` smaller (fewer colours, then fewer pixels) until it fits ``limit``.

    Returns the notebook's size in bytes afterwards.
    """
    from PIL import Image

    def pngs():
        for cell in nb.cells:
            for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
                if "image/png" in out.get("data", {}):
                    yield out["data"]

    for scale in (1.0, 0.8, 0.65, 0.5):
        size = len(notebook_bytes(nb))
        if size <= limit:
            return size
        for data in pngs():
            image = Image.open(io.BytesIO(base64.b64decode(data["image/png"])))
            if scale < 1:
                image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                                     Image.Resampling.LANCZOS)
            image = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", optimize=True)
            if len(buffer.getvalue()) < len(base64.b64decode(data["image/png"])) or scale < 1:
                data["image/png"] = base64.b64encode(buffer.getvalue()).decode("ascii")
    return len(notebook_bytes(nb))
