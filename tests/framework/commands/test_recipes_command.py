"""`framework recipes` lists the built-ins; `framework cp` copies one that still loads."""

from __future__ import annotations

from framework.cli import main
from framework.commands.recipes import first_sentence, one_line
from framework.recipe import load_recipe
from framework.resources import builtin_recipes


def test_recipes_lists_every_builtin_on_one_line_each(capsys):
    assert main(["recipes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(builtin_recipes())
    tiny = next(line for line in lines if line.split()[0] == "tiny")
    assert "synthetic shapes" in tiny


def test_first_sentence_skips_abbreviations():
    assert (first_sentence("MaskVLM (Kwon et al. 2023): joint masking. More.")
            == "MaskVLM (Kwon et al. 2023): joint masking")
    assert first_sentence("Only MSE (Eq. 1); no IFR") == "Only MSE (Eq. 1); no IFR"
    assert one_line("alpha beta gamma delta", 12) == "alpha beta\u2026"
    assert one_line("short", 12) == "short"


def test_cp_copies_a_recipe_whose_extends_falls_back_to_the_builtin(tmp_path, capsys):
    assert main(["cp", "maskvlm-tiny", str(tmp_path)]) == 0
    copy = tmp_path / "maskvlm-tiny.json"
    assert copy.read_text() == builtin_recipes()["maskvlm-tiny"].read_text()
    assert load_recipe(copy) == load_recipe(builtin_recipes()["maskvlm-tiny"])
    assert main(["validate", str(copy)]) == 0
    assert main(["cp", "maskvlm-tiny", str(copy)]) == 2  # never replaced silently
    assert "--force" in capsys.readouterr().err
    assert main(["cp", "maskvlm-tiny", str(copy), "--force"]) == 0
    assert main(["cp", "maskvlm-tin", str(tmp_path / "x.json")]) == 2
    assert "did you mean maskvlm-tiny" in capsys.readouterr().err
    assert main(["cp", "tiny", str(tmp_path / "new" / "mine.json")]) == 0
    assert (tmp_path / "new" / "mine.json").is_file()
