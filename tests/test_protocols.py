"""brainlab.protocols: result names written and read in one place; split folders, protocols and parts kept apart."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from brainlab import catalogue, data, experiment, protocols
from brainlab.cli import build_parser
from brainlab.errors import BrainlabError, SettingError
from brainlab.protocols import ResultName

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("protocol", [*protocols.MEANINGS, "nickparvar", "my-own"])
@pytest.mark.parametrize("part", protocols.PARTS)
def test_every_protocol_and_part_round_trips_through_the_written_form(protocol, part):
    name = ResultName(protocol, part)
    assert str(name) == f"{protocol}-{part}"  # the form evaluation.json files and recorded outputs hold
    assert ResultName.parse(str(name)) == name == ResultName.parse_or_none(str(name))
    assert (name.protocol, name.part) == (protocol, part)


def test_a_protocol_may_hold_a_dash_the_part_is_the_last_piece():
    assert ResultName.parse("my-clean-test") == ResultName("my-clean", "test")
    assert ResultName.parse("official-val").train_counterpart() == ResultName("official", "train")
    assert str(ResultName.parse("my-clean-test").train_counterpart()) == "my-clean-train"


@pytest.mark.parametrize("text", ["official", "official-", "-test", "official-tset", "official-Test", "",
                                  "external-nickparvar", "hospital_b", "official-test ", "Training"])
def test_text_that_is_no_result_name_is_refused_naming_it_and_the_valid_forms(text):
    assert ResultName.parse_or_none(text) is None
    with pytest.raises(BrainlabError) as refused:
        ResultName.parse(text)
    message = str(refused.value)
    assert message.startswith(f"{text!r} is not a result name")
    assert "<protocol>-<part>" in message and "train, val, test" in message and "official-test" in message
    assert all(p in message for p in protocols.MEANINGS)


@pytest.mark.parametrize("value", [None, 3, ("official", "test")])
def test_what_is_not_text_is_no_result_name_either(value):
    assert ResultName.parse_or_none(value) is None
    with pytest.raises(BrainlabError, match="is not a result name"):
        ResultName.parse(value)


def test_a_name_is_built_only_from_a_protocol_and_a_known_part():
    with pytest.raises(ValueError, match="part is one of train, val, test, not 'external'"):
        ResultName("official", "external")
    with pytest.raises(ValueError, match="needs a protocol"):
        ResultName("", "test")
    with pytest.raises(AttributeError):  # a value: it cannot change under a number that carries it
        ResultName("official", "test").part = "train"
    assert len({ResultName("clean", "test"), ResultName.parse("clean-test")}) == 1  # hashable, equal by value


def test_what_each_protocol_means_and_which_numbers_carry_a_caveat():
    assert tuple(protocols.MEANINGS) == ("official", "clean", "sample", "unverified")
    assert all(len(meaning) > 20 for meaning in protocols.MEANINGS.values())
    assert set(protocols.PROTOCOLS) == {"official", "clean"} <= set(protocols.MEANINGS)
    caveats = {p: ResultName(p, "test").caveat for p in [*protocols.MEANINGS, "nickparvar"]}
    assert caveats == {"official": "", "clean": "", "nickparvar": "",
                       "sample": "the bundled sample: a smoke test, not a result",
                       "unverified": "a folder that is not a verified copy of the dataset, so not comparable with "
                                     "the paper; `brainlab doctor` says why"}
    assert [p for p in protocols.MEANINGS if ResultName(p, "val").is_sample] == ["sample"]
    assert [p for p in protocols.MEANINGS if ResultName(p, "val").is_official] == ["official"]
    assert protocols.OFFICIAL_TEST == ResultName.parse("official-test")


def test_manifest_and_evaluation_names():
    assert protocols.manifest_protocol("runs/audit/clean_split.csv") == "clean"
    assert protocols.manifest_protocol(Path("my-site.csv")) == "my-site"
    assert protocols.manifest_protocol("_split.csv") == "manifest"
    assert protocols.external_name("nickparvar") == "external-nickparvar"
    assert ResultName.parse_or_none(protocols.external_name("nickparvar")) is None  # a free name, no part
    assert data.MANIFEST_PARTS == ("train", "val", "test", "external") == (*protocols.PARTS, protocols.EXTERNAL)


def test_split_folders_and_protocols_have_different_names():
    assert catalogue.SPLIT_FOLDERS == ("Training", "Testing") == catalogue.BRAIN_TUMOR.splits
    assert not set(catalogue.SPLIT_FOLDERS) & set(protocols.MEANINGS)
    for module in (catalogue, data, experiment):
        assert not hasattr(module, "SPLITS"), f"{module.__name__}.SPLITS: say SPLIT_FOLDERS or protocols.PROTOCOLS"


def test_the_command_line_and_the_settings_offer_the_protocols(tmp_path, capsys):
    for protocol in protocols.PROTOCOLS:
        args = build_parser().parse_args(["train", "--recipe", "small-cnn", "--out", str(tmp_path / protocol),
                                          "--split", protocol])
        assert args.split == protocol
        assert experiment.default_settings("small-cnn", split=protocol).split == protocol
    assert build_parser().parse_args(["train", "--recipe", "small-cnn", "--out", str(tmp_path / "x")]).split == \
        protocols.OFFICIAL == experiment.Settings().split
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--recipe", "small-cnn", "--out", str(tmp_path / "y"), "--split", "sample"])
    assert "invalid choice: 'sample'" in capsys.readouterr().err
    with pytest.raises(SettingError, match="Unknown split 'unverified': choose official or clean"):
        experiment.default_settings("small-cnn", split="unverified")


def test_the_bundled_samples_sets_carry_result_names():
    sample = data.sample_dir()
    assert data.protocol(sample) == protocols.SAMPLE
    test = data.load_split("Testing", sample, image_size=8, progress=False, cache=False)
    name = ResultName.parse(test.split)
    assert name == ResultName(protocols.SAMPLE, "test") and name.is_sample and name.caveat
    with pytest.raises(ValueError, match=r"one of the split folders \('Training', 'Testing'\), not 'official'"):
        data.load_split("official", sample, image_size=8, progress=False, cache=False)


# ----------------------------------------------------------------------------- one place parses and writes them

PROTOCOL = r"(official|clean|sample|unverified|external)"


def _code_files():
    return sorted(p for p in [*(REPO / "brainlab").rglob("*.py"), *(REPO / "tools").glob("*.py")]
                  if p.name != "protocols.py")


def taken_apart_or_spelled(path: Path) -> list[str]:
    """``line: code`` of each place in ``path`` that cuts a result name at its dash, tests its protocol by
    prefix or its part by suffix, or glues a protocol and a part together in an f-string: the work of
    :class:`ResultName`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args \
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            method, arg = node.func.attr, node.args[0].value
            if method in ("split", "rsplit", "partition", "rpartition") and arg == "-" or \
                    method in ("startswith", "removeprefix") and re.fullmatch(PROTOCOL + "-", arg) or \
                    method in ("endswith", "removesuffix") and re.fullmatch(r"-(train|val|test)", arg):
                found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.JoinedStr):
            pieces = node.values
            for i, piece in enumerate(pieces):
                if not isinstance(piece, ast.Constant):
                    continue
                after_value = i > 0 and isinstance(pieces[i - 1], ast.FormattedValue)
                before_value = i + 1 < len(pieces) and isinstance(pieces[i + 1], ast.FormattedValue)
                if after_value and re.match(r"-(train|val|test)\b", piece.value) or \
                        before_value and re.search(r"\b" + PROTOCOL + "-$", piece.value):
                    found.append(f"{node.lineno}: {ast.unparse(node)}")
    return sorted(found, key=lambda line: int(line.split(":")[0]))


def test_the_check_sees_each_way_of_taking_a_name_apart(tmp_path):
    code = tmp_path / "x.py"
    code.write_text("a = s.split('-')[0]\nb = s.rsplit('-', 1)\nc = s.startswith('sample-')\n"
                    "d = f'{p}-test'\ne = f'external-{d}'\nf = s.endswith('-val')\n"
                    "ok = s.startswith('epoch-') or s.split(',') or f'{p} test' or f'{a}-{b}'\n")
    assert [line.split(":")[0] for line in taken_apart_or_spelled(code)] == ["1", "2", "3", "4", "5", "6"]


def test_no_module_or_tool_takes_a_result_name_apart_itself():
    found = [f"{path.relative_to(REPO)}:{line}" for path in _code_files() for line in taken_apart_or_spelled(path)]
    assert not found, "result names built or parsed outside brainlab.protocols (use ResultName):\n" + "\n".join(found)
