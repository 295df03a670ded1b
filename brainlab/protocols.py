"""Protocols and result names: every number says which images it was measured on, in words that cannot be mixed up.

Four different things are easy to call a "split"; brainlab gives each its own word:

- a **split folder** is one of the dataset's folders on disk, ``Training`` or ``Testing``
  (:data:`brainlab.catalogue.SPLIT_FOLDERS`);
- a **protocol** says how a set of images was chosen, and so what its numbers may stand beside:
  ``official``, ``clean``, ``sample``, ``unverified`` (:data:`MEANINGS`). A run is trained under
  one of :data:`PROTOCOLS`, the values of ``brainlab train --split`` and ``Settings.split``;
- a **part** is what a model does with a set of images: it fits on ``train``, chooses its epoch
  on ``val`` and is reported on ``test`` (:data:`PARTS`). A split manifest's rows name a part, or
  ``external`` for images to evaluate on alone (:data:`brainlab.data.MANIFEST_PARTS`);
- a **result name** is a protocol and a part, written ``official-test``. Every ``ImageSet``,
  every ``Predictions`` and every evaluation.json carries one, so a number never loses where it
  came from.

:class:`ResultName` is the one place that writes result names and reads them back::

    >>> name = ResultName.parse("official-test")
    >>> name.protocol, name.part
    ('official', 'test')
    >>> str(name.train_counterpart())
    'official-train'

Besides the protocols of :data:`MEANINGS`, a set read from another catalogue dataset's folder is
named after that dataset (``nickparvar-test``), and a set read through a manifest after the
manifest's file (:func:`manifest_protocol`: ``clean_split.csv`` gives ``clean-train``,
``clean-val`` and ``clean-test``). Images read for an evaluation alone (``brainlab evaluate``)
are named freely, by default ``external-<dataset>`` (:func:`external_name`): such a name is not
a result name, and :meth:`ResultName.parse_or_none` gives ``None`` for it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from brainlab.errors import BrainlabError

__all__ = ["CLEAN", "EXTERNAL", "MEANINGS", "OFFICIAL", "OFFICIAL_TEST", "PARTS", "PROTOCOLS", "ResultName", "SAMPLE",
           "UNVERIFIED", "external_name", "manifest_protocol"]

OFFICIAL, CLEAN, SAMPLE, UNVERIFIED = "official", "clean", "sample", "unverified"

#: Every protocol brainlab names a set of images after, and what a number measured under it means.
MEANINGS = {
    OFFICIAL: "the dataset's own Training and Testing folders (validation: a seeded, stratified part of "
              "Training), on a copy whose counts and checksums match the catalogue: numbers that stand "
              "beside the paper's",
    CLEAN: "the copy-free split that `brainlab audit` writes (clean_split.csv): no exact or near copy "
           "across its parts (neighbouring slices and patients are not checked)",
    SAMPLE: "the bundled sample: a smoke test, not a result",
    UNVERIFIED: "a folder that is not a verified copy of the dataset, so not comparable with the paper; "
                "`brainlab doctor` says why",
}

#: The protocols a run is trained under (``brainlab train --split``, ``Settings.split``). On a folder
#: that is not a verified copy of the dataset, ``official`` names its sets ``sample`` or ``unverified``.
PROTOCOLS = (OFFICIAL, CLEAN)

#: The parts of a protocol, in the order a model meets them.
PARTS = ("train", "val", "test")

#: The manifest part of images to evaluate a model on alone (``brainlab audit --against`` writes them), and
#: what their set's default name starts with (:func:`external_name`).
EXTERNAL = "external"

_CAVEATED = (SAMPLE, UNVERIFIED)  # protocols whose numbers a report flags as not comparable with the paper


@dataclass(frozen=True)
class ResultName:
    """Which images a number was measured on: a protocol and a part, written ``"<protocol>-<part>"``.

    ``str(name)`` is the form on disk and on screen (``official-test``), which evaluation.json files,
    reports and recorded outputs use; :meth:`parse` reads it back. The protocol is one of
    :data:`MEANINGS`, a catalogue dataset's short name or a manifest's name, and may itself hold a
    ``-``; the part is one of :data:`PARTS`.
    """

    protocol: str
    part: str

    def __post_init__(self):
        if not isinstance(self.protocol, str) or not self.protocol:
            raise ValueError(f"a result name needs a protocol (such as {', '.join(MEANINGS)}), not {self.protocol!r}")
        if self.part not in PARTS:
            raise ValueError(f"a result name's part is one of {', '.join(PARTS)}, not {self.part!r}")

    def __str__(self) -> str:
        return f"{self.protocol}-{self.part}"

    @classmethod
    def parse(cls, text) -> "ResultName":
        """The result name written as ``text`` (``"official-test"``); a :class:`~brainlab.errors.BrainlabError`
        that names ``text`` and the valid forms when it is none."""
        name = cls.parse_or_none(text)
        if name is None:
            raise BrainlabError(
                f"{text!r} is not a result name: a result name is <protocol>-<part>, the part one of "
                f"{', '.join(PARTS)} and the protocol one of {', '.join(MEANINGS)}, a dataset's short name "
                "or a manifest's name (official-test, clean-val, sample-train ...).")
        return name

    @classmethod
    def parse_or_none(cls, text) -> "ResultName | None":
        """The result name written as ``text``, or ``None`` for any other text (an evaluation's free name
        such as ``external-nickparvar``, or something that is not a name at all)."""
        if not isinstance(text, str):
            return None
        protocol, dash, part = text.rpartition("-")
        if not dash or not protocol or part not in PARTS:
            return None
        return cls(protocol, part)

    def train_counterpart(self) -> "ResultName":
        """The training part of the same protocol: what a model tested on this name was trained on."""
        return ResultName(self.protocol, "train")

    @property
    def is_sample(self) -> bool:
        """Whether the images are the bundled sample's: a smoke test, never a result."""
        return self.protocol == SAMPLE

    @property
    def is_official(self) -> bool:
        """Whether the images are a verified copy's own folders, the only numbers that stand beside the paper's."""
        return self.protocol == OFFICIAL

    @property
    def caveat(self) -> str:
        """What a reader must know before trusting these numbers (the sample, an unverified folder); ``""`` when
        there is nothing to say."""
        return MEANINGS[self.protocol] if self.protocol in _CAVEATED else ""


#: The images the paper reports on: the Testing folder of a verified copy of its dataset.
OFFICIAL_TEST = ResultName(OFFICIAL, "test")


def manifest_protocol(manifest) -> str:
    """The protocol a split manifest's sets are named after: its file name without ``_split.csv``
    (``clean_split.csv`` gives ``clean``), or ``manifest`` when nothing is left."""
    return Path(manifest).stem.removesuffix("_split") or "manifest"


def external_name(dataset: str) -> str:
    """The default name of a dataset's images read for an evaluation alone: ``external-<dataset>``."""
    return f"{EXTERNAL}-{dataset}"

