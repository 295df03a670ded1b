"""The models of the course, from a plain convolution block to the paper's ResNet50.

Every model here takes float32 images with pixel values in 0..255 and does its own
preprocessing inside, so callers never preprocess. Each ends in a softmax over the four
classes, in float32 even under a mixed-precision dtype policy (where the other layers
compute in float16 or bfloat16 and keep float32 weights), and each is one flat functional
model whose last feature map Grad-CAM can reach by name: ``LAST_CONV_LAYER``
("conv5_block3_out") in the ResNet50 models, ``"block4_relu"`` (``block{len(filters)}_relu``)
in :func:`small_cnn`. ``brainlab.explain.last_conv_layer`` finds the same layers.

The building blocks are small functions that take a tensor and return a tensor, so a
notebook can show one block at a time:

- :func:`conv_block`: convolution -> batch normalisation -> ReLU -> max pooling.
- :func:`residual_block`: two 3x3 convolutions F(X) plus a shortcut, the paper's
  ``Y = F(X, {W_i}) + X`` (identity) or ``Y = F(X, {W_i}) + W_s X`` (projection).
- :func:`bottleneck_block`: ResNet50's 1x1 -> 3x3 -> 1x1 version of the same idea.

From those blocks :func:`resnet50` rebuilds ``keras.applications.ResNet50`` layer for layer
(same names, same weights), :func:`paper_model` is the paper's classifier to the
parameter, and :func:`improved_model` is a better recipe for the same data.
"""
from __future__ import annotations

import json
import os
import zipfile
from collections import Counter
from pathlib import Path

import keras
from keras import layers

from brainlab import config, settings
from brainlab.catalogue import CLASS_NAMES
from brainlab.errors import BrainlabError, WeightsNotFoundError

__all__ = ["BN_EPSILON", "IMAGENET_WEIGHTS_FILE", "IMAGENET_WEIGHTS_MD5", "IMAGENET_WEIGHTS_URL",
           "LAST_CONV_LAYER", "NUM_CLASSES", "PAPER_TRAINABLE_LAYERS", "RESNET50_LAYER_PREFIXES",
           "RandomGamma", "ResNetPreprocess", "augment", "bottleneck_block", "conv_block", "conv_bn",
           "copy_weights_by_name", "deep_stack", "default_weights", "freeze", "imagenet_weights_cached",
           "improved_model", "keras_models_dir", "layer_table", "load_model", "load_resnet50_weights",
           "paper_model", "parameter_counts", "preprocessing_layer", "residual_block", "residual_cnn",
           "resnet50", "resnet50_features", "resnet50_layers", "resnet_stage", "resolve_weights",
           "saved_dtype_policy", "small_cnn", "source_shift_augment", "to_rgb", "unfreeze_top"]

NUM_CLASSES = len(CLASS_NAMES)
BN_EPSILON = 1.001e-5  # the value keras.applications uses, so weights carry over exactly

# The output of ResNet50's last residual block: the usual Grad-CAM target.
LAST_CONV_LAYER = "conv5_block3_out"
# In the paper's model only these last four ResNet50 layers are trainable.
PAPER_TRAINABLE_LAYERS = ("conv5_block3_3_conv", "conv5_block3_3_bn", "conv5_block3_add", "conv5_block3_out")
# Every ResNet50 layer is named like keras.applications names it: conv1_*, pool1_*, conv2_* ... conv5_*.
RESNET50_LAYER_PREFIXES = ("conv1_", "pool1_", "conv2_", "conv3_", "conv4_", "conv5_")

# ImageNet weights for ResNet50 without its classifier, as keras.applications downloads them.
IMAGENET_WEIGHTS_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
IMAGENET_WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/" + IMAGENET_WEIGHTS_FILE
IMAGENET_WEIGHTS_MD5 = "4d473c1dd8becc155b73f8504c6f6626"


# --------------------------------------------------------------------------- preprocessing
@keras.saving.register_keras_serializable(package="brainlab")
class ResNetPreprocess(layers.Layer):
    """``keras.applications.resnet50.preprocess_input`` as a layer.

    ResNet50 was trained on ImageNet images in BGR channel order with the ImageNet mean
    pixel subtracted (no scaling to 0..1). Putting this inside the model means the model
    takes plain 0..255 images and nobody can forget the step.
    """

    def call(self, images):
        return keras.applications.resnet50.preprocess_input(images)


def preprocessing_layer(preprocessing: str = "imagenet") -> layers.Layer:
    """The input step of a ResNet50 model.

    ``"imagenet"`` is what the ImageNet weights expect (:class:`ResNetPreprocess`);
    ``"rescale"`` divides by 255, as many reproductions of the paper did. The second one
    feeds the pretrained filters numbers they never saw, which costs accuracy.
    """
    if preprocessing == "imagenet":
        return ResNetPreprocess(name="preprocess")
    if preprocessing == "rescale":
        return layers.Rescaling(1.0 / 255, name="preprocess")
    raise ValueError(f"preprocessing must be 'imagenet' or 'rescale', not {preprocessing!r}")


def to_rgb(x):
    """Repeat a grayscale channel three times so ImageNet models accept it (no parameters)."""
    if x.shape[-1] == 3:
        return x
    if x.shape[-1] != 1:
        raise ValueError(f"images must have 1 or 3 channels, not {x.shape[-1]}")
    return layers.Concatenate(name="gray_to_rgb")([x, x, x])


def augment(x, flip=True, rotation=0.05, zoom=0.1, contrast=0.1):
    """Random flips, rotations, zooms and contrast changes.

    Keras preprocessing layers: active when the model trains, identity at inference.
    Rotation is a fraction of a full turn (0.05 is up to 18 degrees).
    """
    if flip:
        x = layers.RandomFlip("horizontal", name="augment_flip")(x)
    if rotation:
        x = layers.RandomRotation(rotation, name="augment_rotate")(x)
    if zoom:
        x = layers.RandomZoom(zoom, name="augment_zoom")(x)
    if contrast:
        x = layers.RandomContrast(contrast, name="augment_contrast")(x)
    return x


@keras.saving.register_keras_serializable(package="brainlab")
class RandomGamma(layers.Layer):
    """Raise each image's pixels (0..255) to a random power while training: a non-linear brightness change.

    The power is ``exp(u)`` with ``u`` uniform in ``[-max_log_gamma, max_log_gamma]``, one per image.
    Scanners and exports differ in such curves; a plain brightness or contrast change does not
    imitate them, and per-image standardisation undoes it anyway. Identity at inference.
    """

    def __init__(self, max_log_gamma=0.4, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.max_log_gamma, self.seed = float(max_log_gamma), seed
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training or not self.max_log_gamma:
            return images
        x = keras.ops.clip(keras.ops.cast(images, "float32") / 255.0, 0.0, 1.0)
        log_gamma = keras.random.uniform((keras.ops.shape(x)[0], 1, 1, 1), -self.max_log_gamma,
                                         self.max_log_gamma, seed=self.generator)
        return keras.ops.cast(255.0 * x ** keras.ops.exp(log_gamma), self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "max_log_gamma": self.max_log_gamma, "seed": self.seed}


def source_shift_augment(x, gamma=0.4, blur=0.5, noise=4.0, zoom=0.25, shift=0.08):
    """Augmentations aimed at differences between sources (hospitals, scanners, exports).

    Added to :func:`augment`'s flips and rotations, active only while training:

    - intensity: :class:`RandomGamma` (``gamma``: the largest log of the power);
    - blur and noise: a Gaussian blur (sigma up to 1 pixel) on a ``blur`` share of the images,
      and Gaussian noise of standard deviation ``noise`` grey levels;
    - scale and crop: zoom in or out by up to ``zoom`` and shift by up to ``shift`` of the side,
      as heads are framed more tightly or loosely from one source to another.
    """
    x = augment(x, zoom=0, contrast=0)
    if gamma:
        x = RandomGamma(gamma, name="augment_gamma")(x)
    if blur:
        x = layers.RandomGaussianBlur(factor=blur, kernel_size=3, sigma=(0.3, 1.0), name="augment_blur")(x)
    if noise:
        # Keras's noise layer takes a standard deviation of at most 1: add it on the 0..1 scale.
        x = layers.Rescaling(1 / 255, name="augment_noise_in")(x)
        x = layers.GaussianNoise(noise / 255, name="augment_noise")(x)
        x = layers.Rescaling(255, name="augment_noise_out")(x)
    if zoom:
        x = layers.RandomZoom((-zoom, zoom), fill_mode="constant", name="augment_zoom")(x)
    if shift:
        x = layers.RandomTranslation(shift, shift, fill_mode="constant", name="augment_shift")(x)
    return x


# --------------------------------------------------------------------------- blocks
def conv_bn(x, filters, kernel_size, strides=1, relu=True, name="conv", padding="valid", bn_momentum=0.99):
    """Convolution -> batch normalisation -> (ReLU), with ResNet's layer names.

    ``bn_momentum``: 0.99 (Keras's default) for ResNet50; 0.9 for short from-scratch
    training (see :func:`conv_block`).
    """
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    if relu:
        x = layers.Activation("relu", name=f"{name}_relu")(x)
    return x


def conv_block(x, filters, kernel_size=3, pool=True, name="block", bn_momentum=0.9):
    """A plain CNN block: 3x3 convolution -> batch norm -> ReLU -> 2x2 max pooling.

    ``bn_momentum``: how slowly batch norm's moving mean and variance (used at inference)
    follow the training batches. Keras's default, 0.99, averages over about 100 steps, far
    behind weights that change fast in a short from-scratch training: the model then scores
    much worse in inference mode than in training. 0.9 (about 10 steps) keeps up.
    """
    x = layers.Conv2D(filters, kernel_size, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn")(x)
    x = layers.Activation("relu", name=f"{name}_relu")(x)
    if pool:
        x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    return x


def _shortcut(x, channels, stride, projection, name, bn_momentum=0.99):
    """X itself, or W_s X: a strided 1x1 convolution that matches F(X)'s shape."""
    if projection is None:
        projection = stride != 1 or x.shape[-1] != channels
    if not projection:
        return x
    return conv_bn(x, channels, 1, strides=stride, relu=False, name=f"{name}_0", bn_momentum=bn_momentum)


def _add_relu(shortcut, residual, name):
    x = layers.Add(name=f"{name}_add")([shortcut, residual])
    return layers.Activation("relu", name=f"{name}_out")(x)


def residual_block(x, filters, stride=1, projection=None, name="res", bn_momentum=0.99):
    """Two 3x3 convolutions F(X) plus a shortcut, then ReLU (the block of ResNet-18/34).

    ``Y = F(X, {W_i}) + X`` when the shapes match (identity shortcut, no parameters);
    ``Y = F(X, {W_i}) + W_s X`` when they don't (a stride or a new channel count), where W_s
    is a 1x1 convolution. ``projection=None`` picks by shape; True/False forces one.
    """
    shortcut = _shortcut(x, filters, stride, projection, name, bn_momentum)
    y = conv_bn(x, filters, 3, strides=stride, padding="same", name=f"{name}_1", bn_momentum=bn_momentum)
    y = conv_bn(y, filters, 3, padding="same", relu=False, name=f"{name}_2", bn_momentum=bn_momentum)
    return _add_relu(shortcut, y, name)


def bottleneck_block(x, filters, stride=1, projection=None, name="block"):
    """ResNet50's block: 1x1 (reduce to ``filters``) -> 3x3 -> 1x1 (expand to 4*filters).

    The 1x1 convolutions make the 3x3 one cheap. The shortcut rule is the same as in
    :func:`residual_block`. Names follow keras.applications (``conv2_block1_1_conv``...).
    """
    shortcut = _shortcut(x, 4 * filters, stride, projection, name)
    y = conv_bn(x, filters, 1, strides=stride, name=f"{name}_1")
    y = conv_bn(y, filters, 3, padding="same", name=f"{name}_2")
    y = conv_bn(y, 4 * filters, 1, relu=False, name=f"{name}_3")
    return _add_relu(shortcut, y, name)


def resnet_stage(x, filters, blocks, stride, name):
    """``blocks`` bottleneck blocks; the first one changes the shape (projection shortcut)."""
    x = bottleneck_block(x, filters, stride=stride, name=f"{name}_block1")
    for i in range(2, blocks + 1):
        x = bottleneck_block(x, filters, name=f"{name}_block{i}")
    return x


def resnet50_features(x):
    """ResNet50's convolutional body applied to ``x``; returns the conv5_block3_out tensor.

    A 7x7 stem, then four stages of 3, 4, 6 and 3 bottleneck blocks: 16 blocks, 50 layers
    with weights counting the classifier the full network ends with.
    """
    x = layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = conv_bn(x, 64, 7, strides=2, name="conv1")
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    x = resnet_stage(x, 64, 3, stride=1, name="conv2")
    x = resnet_stage(x, 128, 4, stride=2, name="conv3")
    x = resnet_stage(x, 256, 6, stride=2, name="conv4")
    return resnet_stage(x, 512, 3, stride=2, name="conv5")


# --------------------------------------------------------------------------- weights
def keras_models_dir() -> Path:
    """Where Keras caches downloaded weights: ``$KERAS_HOME/models`` or ``~/.keras/models``."""
    home = os.environ.get("KERAS_HOME") or Path.home() / ".keras"
    return Path(home).expanduser() / "models"


def imagenet_weights_cached() -> Path | None:
    """The cached ImageNet ResNet50 weights file, or None if Keras has not downloaded it yet."""
    folder = keras_models_dir()
    if not os.access(folder.parent, os.W_OK):  # Keras then caches in /tmp/.keras instead
        folder = Path("/tmp/.keras/models")
    path = folder / IMAGENET_WEIGHTS_FILE
    return path if path.is_file() and path.stat().st_size > 0 else None


def default_weights() -> str | None:
    """``"imagenet"``, or None (a random start) in quick mode when the weights are not cached yet.

    The notebooks' choice of start, with one printed line that says which and why: full mode
    always uses the ImageNet weights (Keras downloads them, about 94 MB, once); quick mode uses
    them only when they are already cached, so that a smoke run downloads nothing.
    ``BRAINLAB_WEIGHTS=random`` asks for a random start in every mode: to time a notebook on a
    machine that cannot download the weights (its accuracies then mean nothing).
    """
    asked = settings.get("BRAINLAB_WEIGHTS")
    if asked == "random":
        print("Weights: a random start (BRAINLAB_WEIGHTS=random): for timing only, the accuracies mean nothing.")
        return None
    cached = imagenet_weights_cached()
    if not config.quick_mode():
        reason = f"cached at {cached}" if cached else "Keras downloads them once, about 94 MB"
        print(f"Weights: ImageNet ({reason}).")
        return "imagenet"
    if cached:
        print(f"Weights: ImageNet (quick mode, and they are cached at {cached}).")
        return "imagenet"
    print("Weights: a random start (quick mode, and the ImageNet weights are not cached: no 94 MB download "
          "for a smoke run).")
    return None


def _download_imagenet_weights() -> Path:
    """Keras's own download and cache, with its MD5 check (a cached file is checked, not fetched again)."""
    cached = imagenet_weights_cached()
    target = cached.parent if cached else keras_models_dir()
    try:
        target.mkdir(parents=True, exist_ok=True)
        return Path(keras.utils.get_file(IMAGENET_WEIGHTS_FILE, IMAGENET_WEIGHTS_URL, cache_subdir="models",
                                         file_hash=IMAGENET_WEIGHTS_MD5, cache_dir=str(target.parent)))
    except Exception as exc:  # no network, a proxy, a corrupt download: all end here
        # Keras leaves a file that failed its checksum in the cache: remove it, or the next
        # call would find it and trust it.
        (target / IMAGENET_WEIGHTS_FILE).unlink(missing_ok=True)
        raise WeightsNotFoundError(
            f"Could not download the ImageNet weights for ResNet50 ({IMAGENET_WEIGHTS_FILE}, about 94 MB).\n"
            f"Reason: {exc}\n"
            f"To fix it, either:\n"
            f"  - copy that file into {target}/ (Keras's cache, ~/.keras/models/ unless KERAS_HOME is set)"
            f" from a machine that has it, or download {IMAGENET_WEIGHTS_URL} there yourself;\n"
            f"  - pass weights='path/to/{IMAGENET_WEIGHTS_FILE}';\n"
            f"  - or pass weights=None to start from random weights (much worse on small data)."
        ) from None


def resolve_weights(weights) -> Path | None:
    """Turn ``weights`` (None, "imagenet" or a file path) into a local file, or fail clearly."""
    if weights is None:
        return None
    if weights == "imagenet":
        return _download_imagenet_weights()
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsNotFoundError(
            f"Weights file {path} does not exist. Pass the path of a ResNet50 weights file without the top "
            f"(such as {IMAGENET_WEIGHTS_FILE}), weights='imagenet' to download it, or weights=None."
        )
    return path


def copy_weights_by_name(source: keras.Model, target: keras.Model) -> int:
    """Copy every layer's weights from ``source`` into the layer of the same name in ``target``.

    Returns how many layers were copied. Works because our layers carry keras.applications' names.
    """
    copied = 0
    for layer in source.layers:
        if layer.weights:
            target.get_layer(layer.name).set_weights(layer.get_weights())
            copied += 1
    return copied


def load_resnet50_weights(model: keras.Model, weights_file: Path | None) -> None:
    """Load ResNet50 weights (no top) into the ResNet50 layers of ``model``.

    Keras itself reads the file, into a ``keras.applications.ResNet50`` (so every format
    Keras reads works: the ImageNet .h5 file, or a ``.weights.h5`` you saved); then the
    weights are copied across by layer name.
    """
    if weights_file is None:
        return
    shape = tuple(model.get_layer("conv1_pad").input.shape[1:])
    try:
        reference = keras.applications.ResNet50(include_top=False, weights=str(weights_file), input_shape=shape)
    except Exception as exc:
        raise WeightsNotFoundError(
            f"Could not read ResNet50 weights from {weights_file}: {exc}\n"
            f"The file must hold ResNet50 without its top (like {IMAGENET_WEIGHTS_FILE}), "
            f"for example saved by keras.applications.ResNet50(include_top=False).save_weights('x.weights.h5')."
        ) from None
    copy_weights_by_name(reference, model)


# --------------------------------------------------------------------------- models
def _classifier(x, num_classes, name="predictions"):
    # float32 output even under mixed precision, so the softmax and the loss stay exact.
    return layers.Dense(num_classes, activation="softmax", dtype="float32", name=name)(x)


def resnet50(input_shape=(224, 224, 3), weights=None, include_top=False, pooling=None, classes=1000):
    """ResNet50 built from :func:`bottleneck_block`, equal to ``keras.applications.ResNet50``.

    Same layers, same names, same order, 23,587,712 parameters without the top. ``weights``:
    None, "imagenet" or a weights file (no top). No preprocessing inside: like Keras's own,
    it expects ``keras.applications.resnet50.preprocess_input``-ed images.
    """
    if include_top and weights is not None:
        raise ValueError("brainlab loads ResNet50 weights without the top: use include_top=False with weights")
    weights_file = resolve_weights(weights)
    inputs = keras.Input(input_shape)
    x = resnet50_features(inputs)
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(classes, activation="softmax", dtype="float32", name="predictions")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    model = keras.Model(inputs, x, name="resnet50")
    load_resnet50_weights(model, weights_file)
    return model


def resnet50_layers(model: keras.Model) -> list:
    """The ResNet50 layers inside ``model``, in order (found by their keras.applications names)."""
    return [layer for layer in model.layers if layer.name.startswith(RESNET50_LAYER_PREFIXES)]


def small_cnn(image_size=128, channels=3, filters=(32, 64, 128, 256), dropout=0.3, augment_images=False,
              num_classes=NUM_CLASSES):
    """A baseline CNN that trains from scratch on a laptop CPU in minutes.

    Rescale to 0..1, then one :func:`conv_block` per entry of ``filters`` (the last one,
    ``block{len(filters)}``, without pooling: its ``_relu`` map is Grad-CAM's target),
    global average pooling, dropout, softmax.
    About 390k parameters with the default filters.
    """
    inputs = keras.Input((image_size, image_size, channels), name="image")
    x = augment(inputs) if augment_images else inputs
    x = layers.Rescaling(1.0 / 255, name="rescale")(x)
    for i, width in enumerate(filters, start=1):
        x = conv_block(x, width, pool=i < len(filters), name=f"block{i}")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(inputs, _classifier(x, num_classes), name="small_cnn")


def residual_cnn(image_size=128, channels=1, widths=(32, 64, 128, 256), blocks_per_stage=2, dropout=0.3,
                 augment_images=True, num_classes=NUM_CLASSES, augmentation="standard"):
    """A small ResNet that trains from scratch on a laptop CPU: ResNet-18's layout at half its width.

    - Per-image standardisation (``standardize``): every scan to mean 0 and standard deviation
      1, so one scanner's brighter images look like another's. A LayerNormalization over
      height, width and channels, with no learned scale or shift, does exactly that.
    - A stem that shrinks the image 4x early (5x5 convolution with stride 2, then 2x2 max
      pooling), where convolutions would cost the most.
    - ``len(widths)`` stages of ``blocks_per_stage`` :func:`residual_block` each; every stage
      after the first halves the map and starts with a projection shortcut. Batch norm
      momentum 0.9, as in :func:`conv_block`. The last block's output,
      ``stage{len(widths)}_block{blocks_per_stage}_out``, is Grad-CAM's target.
    - Global average pooling, dropout, softmax. About 2.8 million parameters by default.

    ``augmentation`` is ``"standard"`` (:func:`augment`) or ``"source-shift"``
    (:func:`source_shift_augment`); ``augment_images=False`` turns augmentation off.
    """
    makers = {"standard": augment, "source-shift": source_shift_augment}
    if augmentation not in makers:
        raise ValueError(f"augmentation must be 'standard' or 'source-shift', not {augmentation!r}")
    inputs = keras.Input((image_size, image_size, channels), name="image")
    x = makers[augmentation](inputs) if augment_images else inputs
    x = layers.LayerNormalization(axis=(1, 2, 3), center=False, scale=False, name="standardize")(x)
    x = conv_bn(x, widths[0], 5, strides=2, padding="same", name="stem", bn_momentum=0.9)
    x = layers.MaxPooling2D(2, name="stem_pool")(x)
    for stage, width in enumerate(widths, start=1):
        for block in range(1, blocks_per_stage + 1):
            stride = 2 if stage > 1 and block == 1 else 1
            x = residual_block(x, width, stride=stride, name=f"stage{stage}_block{block}", bn_momentum=0.9)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(inputs, _classifier(x, num_classes), name="residual_cnn")


def freeze(model_layers, trainable=False) -> None:
    """Set ``trainable`` on each layer. A frozen BatchNormalization also runs in inference mode."""
    for layer in model_layers:
        layer.trainable = trainable


def paper_model(weights="imagenet", image_size=128, channels=3, preprocessing="imagenet", dropout=0.5,
                num_classes=NUM_CLASSES, augment_images=False):
    """The paper's model, to the parameter: 27,782,660 total, 5,249,668 trainable.

    ``ResNet50(include_top=False, input_shape=(128, 128, 3))`` with all but its last four
    layers frozen, then Flatten -> Dropout -> Dense(128, relu) -> Dropout -> Dense(4, softmax).
    ``preprocessing``: "imagenet" (correct, the default) or "rescale" (1/255, as many
    reproductions did). ``channels=1`` repeats the gray channel inside the model.
    ``augment_images=True`` puts :func:`augment` in front (active only while training; no weights, so
    the counts stay the paper's): the paper applies augmentation (section III.D) without saying which.
    Augmentation changes the frozen part's input every epoch, so the cached-feature fast path of
    :func:`brainlab.train.fit` cannot be used then.
    Note: the trainable conv5_block3_3_bn uses batch statistics while training (the paper says nothing
    about batch normalisation; notebook 07 compares freezing it).
    """
    weights_file = resolve_weights(weights)  # fail before the slow build
    inputs = keras.Input((image_size, image_size, channels), name="image")
    x = to_rgb(inputs)
    if augment_images:
        x = augment(x)
    x = preprocessing_layer(preprocessing)(x)
    x = resnet50_features(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(dropout, name="dropout_1")(x)
    x = layers.Dense(128, activation="relu", name="dense")(x)
    x = layers.Dropout(dropout, name="dropout_2")(x)
    model = keras.Model(inputs, _classifier(x, num_classes), name="paper_resnet50")
    load_resnet50_weights(model, weights_file)
    freeze(resnet50_layers(model)[: -len(PAPER_TRAINABLE_LAYERS)])
    return model


def improved_model(weights="imagenet", image_size=128, channels=3, augment_images=True, dropout=0.3,
                   num_classes=NUM_CLASSES):
    """A better recipe for the same data, ready for stage 1 of two-stage fine-tuning.

    Correct ImageNet preprocessing, augmentation (active only while training), global
    average pooling instead of Flatten (2,048 head inputs instead of 32,768), and the whole
    ResNet50 frozen. Stage 2 (:func:`unfreeze_top`) opens the top block for a low learning
    rate while every BatchNormalization stays frozen, that is in inference mode.

    Why frozen BN layers rather than ``base(x, training=False)``: in Keras 3 the
    ``training=True`` that ``fit`` passes overrides a ``training=False`` recorded inside a
    functional model, while a BatchNormalization with ``trainable=False`` always uses its
    moving statistics. It also keeps the model flat, so Grad-CAM can reach conv5_block3_out.
    """
    weights_file = resolve_weights(weights)
    inputs = keras.Input((image_size, image_size, channels), name="image")
    x = to_rgb(inputs)
    if augment_images:
        x = augment(x)
    x = preprocessing_layer("imagenet")(x)
    x = resnet50_features(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    model = keras.Model(inputs, _classifier(x, num_classes), name="improved_resnet50")
    load_resnet50_weights(model, weights_file)
    freeze(resnet50_layers(model))
    return model


def unfreeze_top(model: keras.Model, after: str = "conv4_block6_out") -> list[str]:
    """Stage 2 of fine-tuning: make the ResNet50 layers after ``after`` trainable.

    BatchNormalization layers stay frozen (inference mode), so a few small batches cannot
    wreck their ImageNet statistics. Returns the names of the layers made trainable.
    Recompile the model afterwards (with a low learning rate) for the change to take effect.
    """
    base = resnet50_layers(model)
    names = [layer.name for layer in base]
    if after not in names:
        raise ValueError(f"{after!r} is not a ResNet50 layer of {model.name}")
    opened = []
    for layer in base[names.index(after) + 1:]:
        if not isinstance(layer, layers.BatchNormalization):
            layer.trainable = True
            opened.append(layer.name)
    return opened


def saved_dtype_policy(path) -> str | None:
    """The dtype policy most layers of a ``.keras`` file were saved with ("float32", "mixed_float16"...).

    None when the file does not say (a file of another format, or layers without a policy).
    """
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    names = Counter()
    for layer in config.get("config", {}).get("layers", []):
        dtype = layer.get("config", {}).get("dtype") if isinstance(layer, dict) else None
        name = dtype.get("config", {}).get("name") if isinstance(dtype, dict) else dtype
        if isinstance(name, str):
            names[name] += 1
    return names.most_common(1)[0][0] if names else None


def load_model(path) -> keras.Model:
    """Load a ``.keras`` file saved by brainlab (its custom preprocessing layer is registered here).

    The model comes back under the dtype policy it was saved with, whatever the policy now:
    its layers keep theirs anyway, and the model's own policy decides whether Keras scales the
    loss (mixed_float16), so the optimizer's saved state fits and training can go on.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No model file at {path}. Train one first (brainlab.train.fit writes best.keras).")
    saved, now = saved_dtype_policy(path), keras.config.dtype_policy()
    keras.config.set_dtype_policy(saved or now)
    try:
        return keras.models.load_model(path)
    except Exception as exc:  # Keras says "File not found" of a file cut short, and worse of a foreign one
        reason = "not a zip archive" if not zipfile.is_zipfile(path) else \
            (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise BrainlabError(f"{path} is not a Keras model file brainlab can load ({reason}): it is damaged, cut "
                            "short (an interrupted save?) or of another kind. Train the run again, or give "
                            "another run.") from exc
    finally:
        keras.config.set_dtype_policy(now)


# --------------------------------------------------------------------------- teaching aids
def deep_stack(depth: int, shortcuts: bool, width: int = 16, image_size: int = 32, channels: int = 3,
               activation: str = "sigmoid", num_classes: int = NUM_CLASSES) -> keras.Model:
    """A deep stack of ``depth`` blocks F(X) = conv(activation(conv(X))), with or without shortcuts.

    ``shortcuts=False``: every block outputs F(X), a plain network of ``2 * depth + 1``
    convolutions. ``shortcuts=True``: every block outputs X + F(X), the identity shortcut of a
    residual network. Nothing else differs: same layers, same names, same parameters (the
    additions have none), and built after the same seed even the same initial weights.
    No batch normalisation and, by default, the sigmoid of older networks: the setting in
    which gradients vanish, to see what a shortcut changes (with
    :func:`brainlab.train.gradient_norms`).
    """
    inputs = keras.Input((image_size, image_size, channels), name="image")
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    x = layers.Conv2D(width, 3, padding="same", name="stem_conv")(x)
    for i in range(1, depth + 1):
        y = layers.Conv2D(width, 3, padding="same", activation=activation, name=f"block{i}_1_conv")(x)
        y = layers.Conv2D(width, 3, padding="same", name=f"block{i}_2_conv")(y)
        x = layers.Add(name=f"block{i}_add")([x, y]) if shortcuts else y
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    name = f"{'residual' if shortcuts else 'plain'}_stack_{depth}"
    return keras.Model(inputs, _classifier(x, num_classes), name=name)


def _weight_count(weights) -> int:
    from math import prod

    return sum(prod(w.shape) for w in weights)


def parameter_counts(model: keras.Model) -> dict[str, int]:
    """Total, trainable and non-trainable parameters, as in ``model.summary()``."""
    trainable = _weight_count(model.trainable_weights)
    non_trainable = _weight_count(model.non_trainable_weights)
    return {"total": trainable + non_trainable, "trainable": trainable, "non_trainable": non_trainable}


def layer_table(model: keras.Model):
    """One row per layer (indexed by name): type, output shape, parameters, trainable, non-trainable.

    What ``model.summary()`` prints, as a pandas DataFrame you can filter and sum:
    ``table["parameters"].sum() == model.count_params()``. A frozen layer has 0 trainable
    parameters; a trainable BatchNormalization still has 2 non-trainable numbers per channel
    (its moving mean and variance, which training updates by averaging, not by gradients).
    Input layers have no parameters and are left out.
    """
    import pandas as pd

    rows = []
    for layer in model.layers:
        if isinstance(layer, layers.InputLayer):
            continue
        output = layer.output
        shape = [tuple(t.shape) for t in output] if isinstance(output, (list, tuple)) else tuple(output.shape)
        trainable = _weight_count(layer.trainable_weights)
        non_trainable = _weight_count(layer.non_trainable_weights)
        rows.append({"layer": layer.name, "type": type(layer).__name__, "output shape": str(shape),
                     "parameters": trainable + non_trainable, "trainable": trainable,
                     "non-trainable": non_trainable})
    return pd.DataFrame(rows).set_index("layer")
