"""The ``brainlab`` command line (also ``python -m brainlab``).

    brainlab doctor               what a helper needs to know about your setup, on one screen
    brainlab doctor --data DIR    check a dataset folder, file by file
    brainlab fetch-data [--dataset NAME] [--to DIR]  download and verify a dataset ahead of time
    brainlab sample               load the bundled sample and describe it
    brainlab audit --out DIR      duplicates, leakage and shortcuts in the dataset; a copy-free split
    brainlab audit --data A --against B --out DIR   the images of B that copy images of A; B's external test set
    brainlab evaluate --run RUN --data DIR --out OUT   score a finished run on any labelled folder
    brainlab build-exercises      regenerate exercises/ from solutions/
    brainlab course-links --repo OWNER/NAME --ref TAG   point every badge and install line at a fork
    brainlab cache [--clear [--all]]  what the cache holds; delete decoded images (--all: downloads too)
    brainlab reproduce --out DIR  the paper's experiment end to end (add --quick for a 1-minute run)
    brainlab train --recipe R --out DIR   the same for another recipe (paper, improved, small-cnn, residual-cnn)

This module reads the options and prints; the modules it calls do the work (``doctor``'s checks
live in :mod:`brainlab.doctor`). The choices an option offers come from the module that owns
them: recipes, preprocessing, augmentation and crops from :mod:`brainlab.experiment`, download
sources from :mod:`brainlab.download`, protocols from :mod:`brainlab.protocols`.

Problems you can fix (a missing folder, no internet) are reported as one message with
advice, and a non-zero exit status; never as a traceback. A bad value of an option or of a
``BRAINLAB_*`` variable (a number out of range, a folder that is a file) exits with status 2,
before any work; a problem in the files themselves (a damaged model, a manifest's row) with 1. TensorFlow's start-up log lines
are kept out of the way; ``brainlab --verbose ...`` shows them.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from brainlab import __version__, config, experiment, protocols, settings, startup
from brainlab.errors import BrainlabError, SettingError

__all__ = ["build_parser", "main"]


# --------------------------------------------------------------------------- options checked as they are read
# A bad value is refused before any work, as one line, with exit status 2: by argparse through these
# types, and by main() for a SettingError (a recipe's own range, a BRAINLAB_* variable).

class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line: what is wrong, and where the help is."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message.rstrip('.')} (`{self.prog} --help` lists the options)\n")


def _whole(low: int, high: int | None = None):
    """An argparse type: a whole number from ``low`` (to ``high``)."""
    def whole(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number "
                                             + (f"from {low} to {high}" if high is not None else f"of at least {low}"))
        return value
    return whole


def _folder(*, exists: bool = True, write: bool = False):
    """An argparse type: a folder that is there (``exists``), or can be made; writable with ``write``."""
    def folder(text: str) -> str:
        try:
            settings.check_folder(text, "", exists=exists, write=write)
        except SettingError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text
    return folder


def _file(text: str) -> str:
    """An argparse type: a file that is there."""
    path = Path(text).expanduser()
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a file" if path.is_dir() else f"{text} does not exist")
    return text


def _weights(text: str) -> str:
    """An argparse type: imagenet, none, or a weights file that is there."""
    return text if text in ("imagenet", "none") else _file(text)


def _dataset(text: str) -> str:
    """An argparse type: a catalogue entry's name."""
    from brainlab import catalogue

    try:
        catalogue.spec_named(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _url(text: str) -> str:
    """An argparse type: an http(s) address."""
    from urllib.parse import urlsplit

    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http:// or https:// address")
    return text


_EPOCHS, _BATCH_SIZE, _SEED = _whole(1, experiment.MAX_EPOCHS), _whole(1, experiment.MAX_BATCH_SIZE), \
    _whole(0, experiment.MAX_SEED)
_IMAGE_SIZE = _whole(min(low for low, _ in experiment.IMAGE_SIZES.values()),
                     max(high for _, high in experiment.IMAGE_SIZES.values()))
_DATA, _OUT = _folder(), _folder(exists=False, write=True)


def _cmd_doctor(args) -> int:
    """`brainlab doctor`: the setup on one screen; with ``--data DIR``, that folder file by file."""
    from brainlab import doctor

    if args.data:
        return _print_folder_check(doctor.check_dataset_folder(Path(args.data)))
    rows = doctor.setup_rows()
    width = max(len(k) for k, _ in rows)
    print("brainlab doctor: paste this into a help request\n")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    return 0


def _print_folder_check(check) -> int:
    """Prints a :class:`brainlab.doctor.FolderCheck`; the exit status: 1 when a split or class has no readable image."""
    spec, splits, readable = check.spec, check.splits, check.readable
    print(f"Dataset folder {check.root}\n  dataset: {spec.title} (catalogue entry {spec.name}; class folders "
          f"{', '.join(spec.folder_names())})\n")
    print(f"  {'class':<18}" + "".join(f"{s:>10}" for s in splits))
    for c in spec.class_names:
        print(f"  {c:<18}" + "".join(f"{readable.get((s, c), 0):>10}" for s in splits))
    print(f"  {'total':<18}" + "".join(f"{sum(readable.get((s, c), 0) for c in spec.class_names):>10}"
                                        for s in splits))
    if check.bad:
        print(f"\n{len(check.bad)} file(s) or folder(s) cannot be used and will be skipped:")
        for path, reason in check.bad:
            print(f"  {Path(path).relative_to(check.root)}: {reason}")
    verified = check.verification
    print("\nAgainst the catalogue: " + ("counts and checksums match for " + ", ".join(verified.splits) if verified.ok
                                        else "does NOT match:\n  " + verified.problems(limit=5).replace("\n", "\n  ")))
    for line in verified.not_checked:
        print(f"  {line}")
    if not check.usable:
        print(f"\nNOT USABLE: no readable image in {', '.join(check.empty)}.", file=sys.stderr)
        return 1
    if not check.complete:
        print(f"\nThe folder is usable for evaluation ({', '.join(splits)} only).")
        return 0
    print("\nThe folder is usable.")
    return 0


def _cmd_fetch_data(args) -> int:
    from brainlab import catalogue
    from brainlab.download import fetch_data

    try:
        spec = catalogue.spec_named(args.dataset)
    except ValueError as exc:
        raise BrainlabError(f"--dataset: {exc}") from None
    path = fetch_data(args.to, spec=spec, sources=tuple(args.source) if args.source else None, url=args.url)
    if spec.name == catalogue.BRAIN_TUMOR.name:
        print(f"Dataset folder: {path}\nUse it with: export BRAINLAB_DATA={path}")
    else:
        print(f"Dataset folder: {path}\nUse it as an external test set with: export BRAINLAB_EXTERNAL_DATA={path}\n"
              f"{spec.attribution}")
    return 0


def _cmd_sample(args) -> int:
    from brainlab import data

    root = data.sample_dir()
    splits = data.load_splits(root, image_size=args.image_size, progress=False)
    print(f"The bundled sample ({root}), loaded through the same API as the full dataset:\n")
    print(splits.summary())
    x, y = next(iter(splits.train.dataset(batch_size=8)))
    print(f"\nOne training batch: images {tuple(x.shape)} {x.dtype.name} in "
          f"[{float(x.numpy().min()):.0f}, {float(x.numpy().max()):.0f}], labels {y.numpy().tolist()}")
    print("Class order (label 0..3): " + ", ".join(data.CLASS_NAMES))
    return 0


def _cmd_audit(args) -> int:
    from brainlab import data
    from brainlab.audit import run_audit

    root = data.find_data(args.data)
    if args.against:
        return _audit_against(root, Path(args.against), args)
    summary = run_audit(root, args.out, seed=args.seed, pixel_hash=args.pixel_hash)
    totals, groups = summary["totals"], summary["groups"]
    print(f"\nAudit of {root}: {summary['images']} images in {summary['seconds']:.0f} s")
    print(f"  images with an exact copy:      {totals['exact']}")
    print(f"  images with a near-duplicate:   {totals['near']}")
    print(f"  images in cross-split groups:   {totals['cross_split']} ({groups['cross_split']} groups)")
    print(f"  images in label conflicts:      {totals['label_conflicts']} ({groups['label_conflict']} groups)")
    if "shortcut" in summary:
        size = summary["shortcut"]["size_only"][protocols.OFFICIAL]
        print(f"  size-only classifier on Testing: {size['accuracy']:.1%} (commonest class: {size['majority']:.1%})")
    print(f"Written to {args.out}: summary.md, summary.json, near_duplicates.csv, clean_split.csv, figures.")
    return 0


def _audit_against(root_a: Path, root_b: Path, args) -> int:
    """`brainlab audit --data A --against B`: the images of B that copy images of A."""
    import resource

    from brainlab.audit import run_audit_across

    if args.seed != config.DEFAULT_SEED:
        raise BrainlabError("--seed sets the clean split of a single-dataset audit; an audit --against makes none.")
    if not root_b.is_dir():
        raise BrainlabError(f"{root_b} (--against) is not a folder: give the other dataset's folder.")
    summary = run_audit_across(root_a, root_b, args.out, pixel_hash=args.pixel_hash)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    a, b = summary["dataset_a"], summary["dataset_b"]
    print(f"\nAudit of {root_b} ({b['name']}, {b['images']} images) against {root_a} ({a['name']}, "
          f"{a['images']} images): {summary['seconds']:.0f} s, peak memory {peak_mb:.0f} MB")
    print(f"  images of B with a copy in A:   {summary['images_b_with_copy_in_a']} "
          f"(exact {summary['by_kind']['exact']}, same pixels {summary['by_kind']['same-pixels']}, "
          f"near {summary['by_kind']['near']})")
    print(f"  images of B without a copy:     {summary['images_b_external']} (external_manifest.csv)")
    print(f"  {'class':<18}{'images':>8}{'copies':>8}{'exact':>7}{'near':>6}{'external':>10}")
    for c, n in summary["per_class_b"].items():
        print(f"  {c:<18}{n['images']:>8}{n['with_copy']:>8}{n['exact'] + n['same_pixels']:>7}{n['near']:>6}"
              f"{n['external']:>10}")
    dis = summary["label_disagreements"]
    print(f"  label disagreements:            {dis['images_b']} images of B"
          + (" (" + ", ".join(f"{k}: {n}" for k, n in dis["by_class"].items()) + ")" if dis["by_class"] else ""))
    print(f"Written to {args.out}: summary.md, summary.json, external_copies.csv, external_manifest.csv, figures.")
    return 0


def _cmd_evaluate(args) -> int:
    from brainlab import experiment, runs

    metrics = experiment.evaluate_run(args.run, args.data, args.out, manifest=args.manifest, name=args.name,
                                      allow_outside=args.allow_outside)
    print(f"\nAccuracy on {metrics['split']} ({metrics['n_images']} images): {metrics['accuracy']:.3f}. "
          f"Report: {runs.RunFolder(args.out).report_path}")
    return 0


def _cmd_experiment(args) -> int:
    from brainlab import experiment, train

    recipe = getattr(args, "recipe", "paper")
    # As the notebooks do: mixed precision on a GPU (or as BRAINLAB_PRECISION says), and bfloat16 on a CPU
    # that has it for the recipes measured to keep their accuracy in it.
    train.device_policy(cpu_bfloat16=recipe in experiment.BFLOAT16_MEASURED)
    experiment.run(recipe, args.out, data_dir=args.data, manifest=args.manifest, allow_outside=args.allow_outside,
                   quick=args.quick or None, epochs=args.epochs, split=args.split, weights=args.weights,
                   seed=args.seed, preprocessing=args.preprocessing, image_size=args.image_size,
                   batch_size=args.batch_size, augmentation=args.augmentation, crop=args.crop)
    return 0


def _cmd_cache(args) -> int:
    """`brainlab cache`: each part's size, count and path; `--clear` deletes what is rebuilt by itself."""
    from brainlab import cache

    if args.all and not args.clear:
        print("brainlab cache: --all goes with --clear (brainlab cache --clear --all)", file=sys.stderr)
        return 2
    if args.clear:
        planned = cache.clear_cache(everything=args.all, dry_run=True)  # refuses a folder brainlab did not make
        if args.all and planned:
            print(f"brainlab cache --clear --all deletes, in {cache.cache_dir()}:")
            for part in planned:
                print(f"  {part.name}/  {part.description}, {part.files} files, {cache.human_size(part.bytes)}")
            asked = sys.stdin is not None and sys.stdin.isatty()  # a person at a terminal is asked; a script is not
            if asked and input("Delete them? [y/N] ").strip().lower() not in ("y", "yes"):
                print("Nothing was deleted.")
                return 0
        removed = cache.clear_cache(everything=args.all)
        for part in removed:
            print(f"removed {part.path}: {part.description}, {part.files} files, {cache.human_size(part.bytes)}")
        freed = sum(part.bytes for part in removed)
        print(f"Freed {cache.human_size(freed)}." if removed else "Nothing to remove.")
        if not args.all:
            print("Downloaded datasets and archives were kept (add --all to delete them too).")
        return 0
    parts = cache.cache_usage()
    print(f"brainlab cache: {cache.cache_dir()} (BRAINLAB_CACHE moves it)\n")
    width, described = max(len(p.name) for p in parts), max(len(p.description) for p in parts)
    for part in parts:
        print(f"  {part.name:<{width}}  {cache.human_size(part.bytes):>10}  {part.files:>6} files  "
              f"{part.description:<{described}}  {part.path}")
    total = sum(part.bytes for part in parts)
    print(f"  {'total':<{width}}  {cache.human_size(total):>10}  {sum(p.files for p in parts):>6} files")
    print(f"\nDecoded images are kept up to {cache.human_size(cache.cache_max_bytes())} "
          "(BRAINLAB_CACHE_MAX_MB), least recently used removed first.\n"
          "`brainlab cache --clear` deletes decoded images and verdicts; `--clear --all` also the downloads.")
    return 0


def _cmd_build_exercises(args) -> int:
    from brainlab import exercises

    return exercises.run(args)


def _cmd_course_links(args) -> int:
    from brainlab import course

    return course.run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="brainlab", description="Deep learning on brain MRI, for teaching.")
    parser.add_argument("--version", action="version", version=f"brainlab {__version__}")
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's own start-up log lines (hidden by default)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("doctor", help="report versions, GPU, data and weights; or check a data folder")
    p.add_argument("--data", metavar="DIR", type=_DATA, help="check this dataset folder file by file")
    p.set_defaults(func=_cmd_doctor, tensorflow=True)

    from brainlab import catalogue, download

    p = sub.add_parser("fetch-data", help="download and verify a dataset")
    p.add_argument("--dataset", default=catalogue.BRAIN_TUMOR.short_name, type=_dataset,
                   help=f"which one: {catalogue.BRAIN_TUMOR.short_name} (the paper's, default) or "
                        f"{catalogue.NICKPARVAR.short_name} (an external test set), or a catalogue name")
    p.add_argument("--to", metavar="DIR", type=_OUT, help="where to put it (default: the brainlab cache)")
    p.add_argument("--source", action="append", choices=download.SOURCES,
                   help=f"where to download from (repeatable; default: {', then '.join(download.SOURCES)})")
    p.add_argument("--url", type=_url, help="another URL for the GitHub archive (a mirror)")
    p.set_defaults(func=_cmd_fetch_data)

    p = sub.add_parser("sample", help="load the bundled sample and describe it")
    p.add_argument("--image-size", type=_IMAGE_SIZE, default=128)
    p.set_defaults(func=_cmd_sample, tensorflow=True)

    p = sub.add_parser("audit", help="find duplicates, cross-split leaks, label conflicts and shortcuts")
    p.add_argument("--data", metavar="DIR", type=_DATA, help="dataset folder (default: as find_data decides)")
    p.add_argument("--out", metavar="DIR", type=_OUT, required=True,
                   help="where to write tables, figures and clean_split.csv")
    p.add_argument("--seed", type=_SEED, default=config.DEFAULT_SEED,
                   help="seed of the copy-free split (clean_split.csv)")
    p.add_argument("--pixel-hash", action="store_true",
                   help="also compare decoded pixels (finds copies whose bytes differ; decodes every file in full)")
    p.add_argument("--against", metavar="DIR", type=_DATA,
                   help="another dataset's folder: find its images that copy images of --data, and write "
                        "external_copies.csv and external_manifest.csv (its images without a copy)")
    p.set_defaults(func=_cmd_audit)

    p = sub.add_parser("evaluate", help="score a finished run (train/reproduce) on any labelled folder")
    p.add_argument("--run", metavar="RUN_DIR", type=_DATA, required=True,
                   help="the --out folder of brainlab train or reproduce")
    p.add_argument("--data", metavar="DIR", type=_DATA, required=True,
                   help="a folder with one folder per class, or a dataset folder with --manifest")
    p.add_argument("--manifest", metavar="CSV", type=_file, help="the images to score (path,class,split), e.g. "
                                                                 "external_manifest.csv from `brainlab audit --against`")
    p.add_argument("--allow-outside", action="store_true", help="let --manifest name images outside --data")
    p.add_argument("--name", help="what the numbers are called (default: external-<dataset>)")
    p.add_argument("--out", metavar="DIR", type=_OUT, required=True,
                   help="where evaluation.json, predictions.csv, report.md go (not a run folder, nor inside one)")
    p.set_defaults(func=_cmd_evaluate, tensorflow=True)

    for name in ("reproduce", "train"):
        p = sub.add_parser(name, help="the paper's protocol end to end" if name == "reproduce" else
                           "train and evaluate a recipe: " + ", ".join(experiment.RECIPES))
        if name == "train":
            p.add_argument("--recipe", choices=experiment.RECIPES, required=True)
        p.add_argument("--out", metavar="DIR", type=_OUT, required=True,
                       help="where evaluation.json, report.md and figures go. The same command again resumes an "
                            "interrupted run there, or reuses a finished one; other settings are refused")
        p.add_argument("--data", metavar="DIR", type=_DATA, help="dataset folder (default: as find_data decides)")
        p.add_argument("--quick", action="store_true", help="the bundled sample and 2 epochs: about a minute")
        p.add_argument("--epochs", type=_EPOCHS)
        p.add_argument("--split", choices=protocols.PROTOCOLS, default=protocols.OFFICIAL,
                       help="official Training/Testing, or the copy-free split made by `brainlab audit` (no exact "
                            "or near copies across its parts; neighbouring slices and patients are not checked)")
        p.add_argument("--manifest", metavar="CSV", type=_file,
                       help="a split manifest (path,class,split) to use for --split clean")
        p.add_argument("--allow-outside", action="store_true", help="let --manifest name images outside --data")
        p.add_argument("--weights", type=_weights, default="imagenet" if name == "reproduce" else None,
                       help="imagenet, none (random start) or a weights FILE")
        p.add_argument("--preprocessing", choices=experiment.CHOICES["preprocessing"],
                       help="input scaling of ResNet50 models")
        p.add_argument("--augmentation", choices=experiment.CHOICES["augmentation"],
                       help="standard (the default); residual-cnn: source-shift, aimed at differences of source "
                            "(gamma, blur, noise, zoom, shift); paper: none, the fast variant (" +
                            experiment.FAST_VARIANT + ")")
        p.add_argument("--crop", choices=experiment.CHOICES["crop"],
                       help="cut every image to the square around the head")
        p.add_argument("--image-size", type=_IMAGE_SIZE,
                       help="; ".join(f"{r}: {low} to {high}" for r, (low, high) in experiment.IMAGE_SIZES.items()))
        p.add_argument("--batch-size", type=_BATCH_SIZE)
        p.add_argument("--seed", type=_SEED)
        p.set_defaults(func=_cmd_experiment, tensorflow=True)

    from brainlab import course, exercises

    p = sub.add_parser("cache", help="what the brainlab cache holds, and clearing it")
    p.add_argument("--clear", action="store_true",
                   help="delete the decoded images and verification verdicts (rebuilt when needed)")
    p.add_argument("--all", action="store_true", help="with --clear: delete downloaded datasets and archives too")
    p.set_defaults(func=_cmd_cache)

    p = sub.add_parser("build-exercises", help="regenerate exercises/ from solutions/ (answers removed)")
    exercises.add_arguments(p)
    p.set_defaults(func=_cmd_build_exercises)

    p = sub.add_parser("course-links", help="point every Colab badge and install line at the course's repository and tag",
                       description=course.DESCRIPTION)
    course.add_arguments(p)
    p.set_defaults(func=_cmd_course_links)

    for p in sub.choices.values():  # `brainlab doctor --verbose` works as well as `brainlab --verbose doctor`
        p.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                       help="show TensorFlow's own start-up log lines")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # every BRAINLAB_* variable before any work (doctor reports a missing BRAINLAB_DATA itself)
        config.check_environment(skip=("BRAINLAB_DATA",) if args.command == "doctor" else ())
        startup.set_verbose(args.verbose or startup.verbose())
        if getattr(args, "tensorflow", False) and not (args.command == "doctor" and args.data):
            try:
                startup.import_tensorflow()  # now, quietly, rather than wherever it is first needed
            except ImportError:
                pass  # the command says so where it needs TensorFlow (doctor reports it)
        return args.func(args)
    except SettingError as exc:  # a bad value of an option or variable: 2, as argparse exits for its own
        print(f"brainlab {args.command}: {exc}", file=sys.stderr)
        return 2
    except BrainlabError as exc:
        print(f"brainlab {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted; nothing half-written was kept.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
