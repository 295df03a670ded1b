"""Grad-CAM: which parts of the image made the model choose a class?

The recipe (Selvaraju et al., 2017), in four steps:

1. take the feature maps ``A`` of the last convolutional layer (H' x W' x K channels);
2. take the class's score before softmax, ``y_c``, and its gradient ``dy_c/dA``;
3. weight each channel by its average gradient and add the channels up;
4. keep the positive part (ReLU), scale to 0..1 and resize to the image.

The result is a heatmap of the input's size: bright where evidence for the class lies.
It works for every model brainlab builds, whether the convolutional base is flat in the
model (a small CNN) or nested inside it as one layer (``keras.applications.ResNet50``
wrapped by a classification head).

>>> heat = explain.grad_cam(model, image)                 # for the predicted class
>>> heat = explain.grad_cam(model, image, class_index=2)  # evidence for "no_tumor"

This module only computes maps; ``brainlab.plots.explained_prediction`` draws one over its image.
"""
from __future__ import annotations

import numpy as np

__all__ = ["grad_cam", "last_conv_layer"]

_POOLING_WORDS = ("pool", "flatten")


def _is_model(layer) -> bool:
    return hasattr(layer, "layers") and hasattr(layer, "inputs")


def _layers(model):
    """Layers of ``model`` in order, without the Input layer."""
    return [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]


def _output_rank(layer) -> int:
    try:
        return len(layer.output.shape)
    except (AttributeError, ValueError):  # a layer that was never called has no output
        return 0


def _find_last_feature_map(model) -> list[str] | None:
    for layer in reversed(_layers(model)):
        if _is_model(layer):
            inner = _find_last_feature_map(layer)
            if inner:
                return [layer.name, *inner]
        elif _output_rank(layer) == 4 and not any(w in type(layer).__name__.lower() for w in _POOLING_WORDS):
            return [layer.name]
    return None


def last_conv_layer(model) -> str:
    """Name of the layer Grad-CAM looks at: the last one that outputs a feature map.

    That is the last layer with an (H, W, channels) output, before the network pools or
    flattens it, e.g. ``conv5_block3_out`` in ResNet50. For a base nested inside the
    model the name is a path: ``"resnet50/conv5_block3_out"``.
    """
    if not getattr(model, "built", True) or not getattr(model, "inputs", None):
        raise ValueError("The model has no known input shape yet: build it first, for example "
                         "by starting it with keras.Input(shape=(128, 128, 3)) or calling it once.")
    path = _find_last_feature_map(model)
    if path is None:
        raise ValueError(f"Model {model.name!r} has no layer with a 2-D feature map output "
                         "(height, width, channels): Grad-CAM needs a convolutional network.")
    return "/".join(path)


def _resolve(model, layer_name: str) -> list[str]:
    """The path to ``layer_name``: given as ``"base/layer"`` or as a plain name searched
    through the model and the models nested in it."""
    if "/" in layer_name:
        path = layer_name.split("/")
        current = model
        for name in path:
            current = current.get_layer(name)
        return path

    def search(m):
        for layer in _layers(m):
            if layer.name == layer_name:
                return [layer.name]
            if _is_model(layer):
                inner = search(layer)
                if inner:
                    return [layer.name, *inner]
        return None

    path = search(model)
    if path is None:
        raise ValueError(f"No layer named {layer_name!r} in model {model.name!r}. "
                         f"The default would be {last_conv_layer(model)!r}.")
    return path


def _softmax_head(model):
    """The final Dense layer when it applies softmax itself, else None."""
    import keras

    last = _layers(model)[-1]
    is_softmax = getattr(last, "activation", None) is keras.activations.softmax
    return last if is_softmax and hasattr(last, "kernel") else None


def _features_and_output(model, path: list[str], stop_before=None):
    """A function ``x -> (feature maps at path, output)`` for a flat or nested model.

    Always in inference mode: augmentation layers would otherwise transform the image
    at random (their ``training`` defaults to True), and dropout would act.
    Flat (the layer is in ``model`` itself): a Keras model with two outputs. Nested (the
    layer sits inside a sub-model): run the outer layers one after another and, at the
    sub-model, use the same function built for it. The nested case assumes the outer
    model is a chain of layers, as every brainlab model is; :func:`grad_cam` checks that.
    ``stop_before`` is a layer whose input, not output, is returned (the softmax head).
    """
    import keras

    if len(path) == 1:
        output = stop_before.input if stop_before is not None else model.outputs[0]
        both = keras.Model(model.inputs, [model.get_layer(path[0]).output, output])
        return lambda x: both(x, training=False)

    sub_model = model.get_layer(path[0])
    inner = _features_and_output(sub_model, path[1:])

    def run(x):
        features = None
        for layer in _layers(model):
            if layer is stop_before:
                break
            if layer is sub_model:
                features, x = inner(x)
            else:
                x = layer(x, training=False)
        return features, x

    return run


def _as_batch(image) -> np.ndarray:
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[..., None]
    return image[None] if image.ndim == 3 else image


def grad_cam(model, image, class_index=None, layer_name: str | None = None) -> np.ndarray:
    """Grad-CAM heatmap(s) of shape (H, W), values in 0..1, for one image or a batch.

    ``image``: (H, W, C) or (N, H, W, C), float or uint8 in 0..255 (as the model takes it).
    ``class_index``: the class to explain, one int or one per image; default the predicted
    class. ``layer_name``: the layer to look at, default :func:`last_conv_layer`.

    The score explained is the class's score before softmax, so the map does not fade
    when the model is very sure. A map of all zeros means no positive evidence at all.
    The model runs in inference mode and in its own precision; under a mixed-precision
    policy the scores, the channel weights and the map are computed in float32.
    """
    import tensorflow as tf

    batch = _as_batch(image)
    path = _resolve(model, layer_name) if layer_name else last_conv_layer(model).split("/")
    head = _softmax_head(model)
    features_and_output = _features_and_output(model, path, stop_before=head)

    x = tf.convert_to_tensor(batch)
    with tf.GradientTape() as tape:
        tape.watch(x)  # so that frozen layers are recorded too
        try:
            features, output = features_and_output(x)
        except Exception as exc:  # a layer that got the wrong input: not a chain
            if len(path) == 1:
                raise
            raise _not_a_chain(model, path) from exc
        # Class scores before softmax: x @ W + b of the final Dense layer. In float32 whatever
        # the dtype policy: under mixed precision the layers compute in float16 or bfloat16
        # while the weights (and brainlab's softmax layer) stay float32.
        scores = tf.cast(output, tf.float32)
        if head is not None:
            scores = tf.matmul(scores, tf.cast(head.kernel, tf.float32)) + tf.cast(head.bias, tf.float32)
        if class_index is None:
            chosen = tf.argmax(scores, axis=1)
        else:
            chosen = tf.constant(np.broadcast_to(np.asarray(class_index), (len(batch),)), dtype=tf.int64)
        score = tf.gather(scores, chosen, axis=1, batch_dims=1)
    gradients = tape.gradient(score, features)
    if gradients is None:
        raise RuntimeError(f"No gradient reaches layer {'/'.join(path)!r} from the output.")
    _check_chain(model, x, output, head, path)

    features, gradients = tf.cast(features, tf.float32), tf.cast(gradients, tf.float32)
    channel_weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)  # step 3
    cam = tf.nn.relu(tf.reduce_sum(features * channel_weights, axis=-1))[..., None]  # steps 3-4
    cam = tf.image.resize(cam, batch.shape[1:3], method="bilinear")[..., 0].numpy()
    peak = cam.max(axis=(1, 2), keepdims=True)
    cam = np.divide(cam, peak, out=np.zeros_like(cam), where=peak > 0)
    return cam[0] if np.asarray(image).ndim in (2, 3) else cam


def _check_chain(model, x, output, head, path) -> None:
    """A nested model is run layer by layer; make sure that gives the model's own answer.

    ``output`` is what the layers before ``head`` gave; ``head`` itself finishes the run, so
    both sides compute in the model's own dtypes (float16 under mixed precision, say).
    """
    import tensorflow as tf

    if len(path) == 1:
        return
    outputs = output if head is None else head(output, training=False)
    expected = np.asarray(tf.cast(model(x, training=False), tf.float32))
    if not np.allclose(np.asarray(tf.cast(outputs, tf.float32)), expected, atol=1e-4):
        raise _not_a_chain(model, path)


def _not_a_chain(model, path) -> ValueError:
    return ValueError(f"Model {model.name!r} is not a simple chain of layers around "
                      f"{path[0]!r}, so Grad-CAM cannot look inside it. Pass layer_name= a "
                      "layer of the outer model instead.")
