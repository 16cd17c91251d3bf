"""What a model says about itself: the manifest's description and example prompts, from the
converter through the reader to the server's model list and an export's models.json."""

from __future__ import annotations

import json

import pytest

from gpt2web.host.convert import KNOWN_MODELS, ConvertError, convert, model_card
from gpt2web.host.server import list_models
from gpt2web.weights import WeightsError, parse_manifest

EXAMPLES = ["In the beginning", "And God said"]
LINE = "a 2-layer GPT-2-architecture model with random weights"


def quiet(_):
    pass


def test_convert_writes_description_and_examples(tiny_checkpoint, tmp_path):
    out = tmp_path / "weights" / "card"
    m = convert(str(tiny_checkpoint), out, dtype="float32", report=False, log=quiet,
                description=LINE, examples=EXAMPLES)
    on_disk = json.loads((out / "manifest.json").read_text())
    assert (on_disk["description"], on_disk["examples"]) == (LINE, EXAMPLES) == (m["description"], m["examples"])
    parsed = parse_manifest(on_disk)
    assert parsed["examples"] == EXAMPLES
    # The server's list (and so an export's static models.json) passes them on.
    (tmp_path / "weights" / "plain").mkdir()
    listed = {e["id"]: e for e in list_models(tmp_path / "weights")}
    assert (listed["card"]["description"], listed["card"]["examples"]) == (LINE, EXAMPLES)


def test_a_local_checkpoint_gets_no_made_up_description(tiny_checkpoint, tmp_path):
    m = convert(str(tiny_checkpoint), tmp_path / "x", dtype="float32", report=False, log=quiet)
    assert "description" not in m and "examples" not in m
    assert parse_manifest(m)["config"]["n_layer"] == 2  # optional: the reader accepts it without
    listed = list_models(tmp_path)
    assert "description" not in listed[0] and "examples" not in listed[0]


@pytest.mark.parametrize("src, words", [
    ("gpt2", "GPT-2 small (124M) by OpenAI"),
    ("openai-community/gpt2-medium", "GPT-2 medium (355M)"),
    ("distilgpt2", "DistilGPT2"),
    ("gpt2-xl", "GPT-2 XL"),
])
def test_openai_checkpoints_get_defaults(src, words):
    card = model_card(src)
    assert words in card["description"]
    assert card["examples"] and all(isinstance(e, str) and e for e in card["examples"])


def test_other_hub_ids_get_nothing_and_given_values_win(tmp_path):
    assert model_card("someone/gpt2-finetuned") == {}
    assert model_card("someone/gpt2") == {}  # not OpenAI's
    folder = tmp_path / "gpt2"
    folder.mkdir()
    assert model_card(str(folder)) == {}  # a local folder named gpt2 may hold anything
    assert model_card("gpt2", description="mine", examples=["x"]) == {"description": "mine", "examples": ["x"]}
    assert set(KNOWN_MODELS) >= {"gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "distilgpt2"}


@pytest.mark.parametrize("kwargs, words", [
    ({"description": ""}, "line of text"),
    ({"description": "two\nlines"}, "one line"),
    ({"description": 3}, "line of text"),
    ({"examples": "In the beginning"}, "list of prompts"),
    ({"examples": []}, "list of prompts"),
    ({"examples": ["ok", ""]}, "non-empty"),
    ({"examples": ["x"] * 11}, "at most 10"),
])
def test_bad_values_are_refused_before_any_work(tmp_path, kwargs, words):
    with pytest.raises(ConvertError, match=words):
        convert(str(tmp_path / "nowhere"), tmp_path / "out", log=quiet, **kwargs)
    assert not (tmp_path / "out").exists()


def test_reader_rejects_wrong_types(tiny_model_dir):
    m = json.loads((tiny_model_dir / "manifest.json").read_text())
    with pytest.raises(WeightsError, match="description must be text"):
        parse_manifest({**m, "description": ["x"]})
    with pytest.raises(WeightsError, match="examples must be a list"):
        parse_manifest({**m, "examples": "x"})
    with pytest.raises(WeightsError, match="examples must be a list"):
        parse_manifest({**m, "examples": ["x", 3]})


def test_server_skips_wrongly_typed_fields(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "manifest.json").write_text(json.dumps({"name": "m", "description": 5, "examples": ["a", 1]}))
    (entry,) = list_models(tmp_path)
    assert "description" not in entry and "examples" not in entry


def test_cli_convert_takes_description_and_examples(tiny_checkpoint, tmp_path):
    from gpt2web.host.cli import main

    out = tmp_path / "cli"
    assert main(["convert", str(tiny_checkpoint), "--out", str(out), "--dtype", "fp32", "--no-report",
                 "--description", LINE, "--example", EXAMPLES[0], "--example", EXAMPLES[1]]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert (m["description"], m["examples"]) == (LINE, EXAMPLES)


def test_cli_convert_refuses_a_bad_description(tmp_path, capsys):
    from gpt2web.host.cli import main

    assert main(["convert", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"), "--description", "  "]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "description must be a line of text" in err
