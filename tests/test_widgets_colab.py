"""On Colab with ipywidgets 8 the widgets switch on Colab's custom widget manager; elsewhere they change nothing.

Colab itself cannot run here: a small module put in ``sys.modules`` as ``google.colab.output``
stands in for it and records the calls.
"""
from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from brainlab import widgets


@pytest.fixture
def image():
    return np.random.default_rng(0).integers(0, 256, size=(16, 16)).astype(np.uint8)


@pytest.fixture
def colab_calls(monkeypatch) -> list[str]:
    """Pretend to run on Colab: ``google.colab.output.enable_custom_widget_manager`` records each call."""
    calls: list[str] = []
    output = types.ModuleType("google.colab.output")
    output.enable_custom_widget_manager = lambda: calls.append("enable_custom_widget_manager")
    colab = types.ModuleType("google.colab")
    colab.output = output
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.output", output)
    return calls


def test_outside_colab_nothing_is_called(monkeypatch, image):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    calls: list[str] = []
    output = types.ModuleType("google.colab.output")  # present, but Colab is not: it must stay unused
    output.enable_custom_widget_manager = lambda: calls.append("enable_custom_widget_manager")
    monkeypatch.setitem(sys.modules, "google.colab.output", output)
    monkeypatch.setattr(widgets.widgets, "__version__", "8.1.5")

    assert widgets.enable_colab_widgets() is False
    playground = widgets.kernel_playground(image)
    assert bytes(playground.picture.value[:8]) == b"\x89PNG\r\n\x1a\n"
    assert calls == []


def test_on_colab_with_ipywidgets_8_the_custom_manager_is_enabled(colab_calls, monkeypatch, image):
    monkeypatch.setattr(widgets.widgets, "__version__", "8.1.5")
    assert widgets.enable_colab_widgets() is True
    widgets.kernel_playground(image)
    built = []
    monkeypatch.setattr(widgets, "PredictionExplorer", lambda *args: built.append(args) or "explorer")
    assert widgets.prediction_explorer("model", "images") == "explorer" and len(built) == 1
    assert colab_calls == ["enable_custom_widget_manager"] * 3


def test_on_colab_with_its_preinstalled_ipywidgets_7_colab_keeps_its_own_manager(colab_calls, monkeypatch, image):
    monkeypatch.setattr(widgets.widgets, "__version__", "7.7.1")
    assert widgets.enable_colab_widgets() is False
    widgets.kernel_playground(image)
    assert colab_calls == []
