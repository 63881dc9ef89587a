"""Model and tokenizer directories are data: one whose config asks for its own code
(``auto_map``) is refused with a reason, the code never runs and nothing reads stdin."""

from __future__ import annotations

import builtins
import json
import subprocess
from pathlib import Path

import pytest
from transformers import BertConfig, BertModel

from framework.evaluate.model import EvalModelError, load_run_tokenizer
from framework.hf import RemoteCodeError, refuse_remote_code
from framework.registry import BuildContext, RegistryError, default_registry
from framework_plugins._layers.bert import load_local
from framework_plugins.decoders.mlm_head import BertMLMHead
from framework_plugins.tokenizers.wordpiece import train_wordpiece
from tests.distributed.launch import child_env, cli_command
from tests.helpers import RECIPES, REPO

CAPTIONS = ["a red circle at the top left", "a blue square in the middle", " ".join(f"w{i}" for i in range(120))]


def plant_payload(directory: Path, marker: Path, config_name: str, classes: dict[str, str]) -> None:
    """Add ``evil.py`` (writes ``marker`` when imported) and an ``auto_map`` naming it."""
    (directory / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    config_path = directory / config_name
    config = json.loads(config_path.read_text())
    config["auto_map"] = {name: f"evil.{cls}" for name, cls in classes.items()}
    config_path.write_text(json.dumps(config))


@pytest.fixture(autouse=True)
def no_stdin(monkeypatch):
    """Any prompt (transformers' 'Do you wish to run the custom code?') fails the test."""
    def refuse(*_):
        raise AssertionError("something asked a question on stdin")
    monkeypatch.setattr(builtins, "input", refuse)


@pytest.fixture
def tokenizer_dir(tmp_path) -> Path:
    directory = tmp_path / "tokenizer"
    train_wordpiece(CAPTIONS, vocab_size=300, min_frequency=1).save_pretrained(str(directory))
    return directory


@pytest.fixture
def bert_dir(tmp_path) -> Path:
    directory = tmp_path / "bert"
    config = BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16)
    BertModel(config).save_pretrained(str(directory))
    return directory


def build_pretrained(path: Path):
    registry = default_registry()
    return registry.build("tokenizer", {"type": "pretrained", "path": str(path)}, BuildContext(registry, {}))


def test_clean_directories_still_load(tokenizer_dir, bert_dir):
    assert build_pretrained(tokenizer_dir).mask_token == "[MASK]"
    assert load_local(str(bert_dir), "bert", 0.0).config.hidden_size == 16


def test_pretrained_tokenizer_with_auto_map_is_refused_without_running_it(tokenizer_dir, tmp_path):
    marker = tmp_path / "marker"
    plant_payload(tokenizer_dir, marker, "tokenizer_config.json", {"AutoTokenizer": "EvilTokenizer"})
    with pytest.raises(RegistryError, match="auto_map.*never run"):
        build_pretrained(tokenizer_dir)
    assert not marker.exists()


def test_text_checkpoint_with_auto_map_is_refused_without_running_it(bert_dir, tmp_path):
    marker = tmp_path / "marker"
    plant_payload(bert_dir, marker, "config.json", {"AutoConfig": "EvilConfig", "AutoModel": "EvilModel"})
    with pytest.raises(RemoteCodeError, match="config.json has 'auto_map'"):
        load_local(str(bert_dir), "bert", 0.0)
    assert not marker.exists()


def test_mlm_head_checkpoint_with_auto_map_is_refused_without_running_it(bert_dir, tmp_path):
    marker = tmp_path / "marker"
    plant_payload(bert_dir, marker, "config.json", {"AutoConfig": "EvilConfig", "AutoModelForMaskedLM": "EvilModel"})
    with pytest.raises(RemoteCodeError, match="auto_map"):
        BertMLMHead(16, None, 30, width=16, eps=1e-12, tie=False).load_pretrained(str(bert_dir))
    assert not marker.exists()


def test_run_tokenizer_with_auto_map_is_refused_without_running_it(tokenizer_dir, tmp_path):
    marker = tmp_path / "marker"
    run = tmp_path / "run"
    run.mkdir()
    tokenizer_dir.rename(run / "tokenizer")
    plant_payload(run / "tokenizer", marker, "tokenizer_config.json", {"AutoTokenizer": "EvilTokenizer"})
    with pytest.raises(EvalModelError, match="auto_map"):
        load_run_tokenizer(run)
    assert not marker.exists()


def test_unreadable_config_is_a_clear_error(bert_dir):
    (bert_dir / "config.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(ValueError, match="config.json is not readable JSON"):
        refuse_remote_code(bert_dir, "text checkpoint")


def test_framework_run_refuses_the_tokenizer_even_when_stdin_says_yes(tokenizer_dir, tmp_path):
    marker = tmp_path / "marker"
    plant_payload(tokenizer_dir, marker, "tokenizer_config.json", {"AutoTokenizer": "EvilTokenizer"})
    command = cli_command(["run", str(RECIPES / "tiny.json"), "--output", str(tmp_path / "run"), "--quiet",
                           "--set", f'data.tokenizer={{"type": "pretrained", "path": "{tokenizer_dir}"}}',
                           "--set", "train.steps=1"])
    result = subprocess.run(command, cwd=REPO, env=child_env(), input="y\ny\n", capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "error: " in result.stderr and "auto_map" in result.stderr
    assert not marker.exists()
