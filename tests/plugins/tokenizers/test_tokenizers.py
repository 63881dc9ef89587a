"""wordpiece_from_data and pretrained tokenizers."""

import pytest

from framework.registry import BuildContext, ComponentBuildError, RegistryError, default_registry
from framework_plugins.data.synthetic import SyntheticShapes


def build(config, **context):
    registry = default_registry()
    return registry.build("tokenizer", config, BuildContext(registry, context))


@pytest.fixture(scope="module")
def shapes():
    return SyntheticShapes(samples=200, image_size=16, seed=0, max_shapes=2, split="train")


def test_wordpiece_special_ids_and_whole_words(shapes):
    tok = build({"type": "wordpiece_from_data"}, dataset=shapes)
    assert tok.convert_tokens_to_ids(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]) == [0, 1, 2, 3, 4]
    assert tok.pad_token_id == 0 and tok.mask_token_id == 4
    ids = tok("A RED Circle at the top left")["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == ["[CLS]", "a", "red", "circle", "at", "the", "top", "left", "[SEP]"]
    assert tok.decode(ids, skip_special_tokens=True) == "a red circle at the top left"


def test_wordpiece_is_deterministic_and_respects_vocab_size(shapes):
    a = build({"type": "wordpiece_from_data"}, dataset=shapes)
    b = build({"type": "wordpiece_from_data"}, dataset=shapes)
    assert a.get_vocab() == b.get_vocab()
    cap = len(a) - 3
    small = build({"type": "wordpiece_from_data", "vocab_size": cap}, dataset=shapes)
    assert len(small) == cap
    dropped = set(a.get_vocab()) - set(small.get_vocab())
    counts = {w: sum(c.split().count(w) for c in shapes.iter_captions()) for w in a.get_vocab() if w.isalpha()}
    kept_words = [w for w in small.get_vocab() if w in counts and len(w) > 1]
    assert max(counts[w] for w in dropped) <= min(counts[w] for w in kept_words)  # the rarest words go first
    spelt = small.convert_ids_to_tokens(small(sorted(dropped)[0])["input_ids"])[1:-1]
    assert "[UNK]" not in spelt and "".join(t.removeprefix("##") for t in spelt) == sorted(dropped)[0]


def test_wordpiece_without_iter_captions_reads_samples():
    class Plain:
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return {"captions": ["zebra grazing", "quiet zebra"][i:i + 1]}

    tok = build({"type": "wordpiece_from_data", "min_frequency": 1}, dataset=Plain())
    assert "zebra" in tok.get_vocab()


def test_pretrained_round_trip(shapes, tmp_path):
    trained = build({"type": "wordpiece_from_data"}, dataset=shapes)
    trained.save_pretrained(tmp_path / "tok")
    loaded = build({"type": "pretrained", "path": str(tmp_path / "tok")})
    text = "a blue square on the right"
    assert loaded(text)["input_ids"] == trained(text)["input_ids"]
    assert loaded.mask_token_id == trained.mask_token_id


def test_pretrained_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(ComponentBuildError, match="not a local directory"):
        build({"type": "pretrained", "path": str(tmp_path / "nope")})
    with pytest.raises(RegistryError):
        build({"type": "pretrained"})
