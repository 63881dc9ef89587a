"""Building data from a recipe, collating batches, resuming the train loader, bad samples."""

from itertools import islice

import pytest
import torch

from framework.data import (
    BadDataError,
    Collator,
    DataHealth,
    SampleLoader,
    build_dataset,
    build_eval_loader,
    build_tokenizer,
    build_train_loader,
    iterate_forever,
)
from framework.data.transforms import build_transform
from framework.registry import default_registry

RECIPE = {"data": {"train": {"type": "synthetic_shapes", "samples": 24}, "tokenizer": {"type": "wordpiece_from_data"},
                   "image_size": 16, "max_text_len": 12,
                   "augment": [{"type": "random_resized_crop"}, {"type": "hflip"}]}}


@pytest.fixture(scope="module")
def built():
    registry = default_registry()
    dataset = build_dataset(RECIPE, registry)
    return dataset, build_tokenizer(RECIPE, registry, dataset)


def batches(dataset, tokenizer, n, *, start=0, workers=0, health=None):
    recipe = {"data": {**RECIPE["data"], "num_workers": workers}}
    loader, sampler = build_train_loader(recipe, dataset, tokenizer, rank=0, world_size=1, micro_batch=5,
                                         seed=1, start_sample=start)
    return list(islice(iterate_forever(loader, sampler, health), n)), sampler


def test_batch_layout(built):
    dataset, tokenizer = built
    (batch,), sampler = batches(dataset, tokenizer, 1)
    assert batch["image"].shape == (5, 3, 16, 16) and batch["image"].dtype == torch.float32
    for key in ("input_ids", "attention_mask", "special_tokens_mask"):
        assert batch[key].shape == (5, 12) and batch[key].dtype == torch.long
    assert (batch["input_ids"][:, 0] == tokenizer.cls_token_id).all()
    assert batch["boxes"].shape[:2] == batch["box_mask"].shape and batch["box_mask"].any(1).all()
    assert batch["has_image"].all() and batch["has_text"].all() and "bad_samples" not in batch
    assert sampler.state_dict()["position"] == 5


def test_resumed_loader_gives_the_same_batches_and_workers_agree(built):
    dataset, tokenizer = built
    straight, _ = batches(dataset, tokenizer, 7)  # crosses an epoch boundary (24 samples)
    resumed, _ = batches(dataset, tokenizer, 4, start=15)
    workers, _ = batches(dataset, tokenizer, 3, workers=1)
    for a, b in zip(straight[3:], resumed):
        for key in a:
            assert torch.equal(a[key], b[key]), key
    for a, b in zip(straight, workers):
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["input_ids"], b["input_ids"])
    seen = torch.cat([b["index"] for b in straight[:5]])[:24]
    assert sorted(seen.tolist()) == list(range(24))  # first epoch: each sample once


def test_collator_pads_boxes_and_handles_unpaired_samples(built):
    _, tokenizer = built
    collate = Collator(tokenizer, 8, image_size=4)
    image = torch.ones(3, 4, 4)
    batch = collate([
        {"image": image, "captions": ["a red circle"], "boxes": torch.tensor([[0.0, 0, 2, 2], [1, 1, 3, 3]])},
        {"image": None, "captions": ["a blue square"], "boxes": torch.zeros(0, 4)},
        {"image": image, "captions": None, "boxes": torch.zeros(0, 4)},
    ])
    assert batch["box_mask"].tolist() == [[True, True], [False, False], [False, False]]
    assert batch["has_image"].tolist() == [True, False, True] and batch["has_text"].tolist() == [True, True, False]
    assert batch["image"][1].abs().sum() == 0
    assert batch["attention_mask"][2].sum() == 2  # [CLS] [SEP] only
    assert batch["special_tokens_mask"][0].tolist() == [1, 0, 0, 0, 1, 1, 1, 1]


class Flaky(torch.utils.data.Dataset):
    """Every third sample is unreadable."""

    def __len__(self):
        return 30

    def describe(self, i):
        return f"file{i}.jpg"

    def __getitem__(self, i):
        if i % 3 == 0:
            raise OSError("cannot identify image file")
        return {"image": None, "captions": [f"sample {i}"]}


def test_bad_samples_are_replaced_counted_and_stop_the_run_past_the_threshold(built):
    _, tokenizer = built
    loader = SampleLoader(Flaky(), lambda s: dict(s, boxes=torch.zeros(0, 4)), seed=0)
    out = loader[(0, 3)]
    assert out["index"] == 4 and out["bad"] == ["sample 3 (file3.jpg): OSError: cannot identify image file"]
    health = DataHealth(max_bad_fraction=0.5, min_seen=10)
    health.record(8, out["bad"] * 2)
    assert health.bad == 2 and health.seen == 10
    with pytest.raises(BadDataError, match="file3.jpg"):
        DataHealth(max_bad_fraction=0.1, min_seen=10).record(8, out["bad"] * 2)


def test_eval_loader_visits_every_sample_once(built):
    dataset, tokenizer = built
    seen = torch.cat([b["index"] for b in build_eval_loader(RECIPE, dataset, tokenizer, batch_size=7)])
    assert seen.tolist() == list(range(24))


def test_eval_split_differs_from_train():
    registry = default_registry()
    train, held_out = build_dataset(RECIPE, registry), build_dataset(RECIPE, registry, "eval")
    assert train[0]["captions"] != held_out[0]["captions"] or train[1]["captions"] != held_out[1]["captions"]
    augmented = build_transform({**RECIPE["data"], "mean": [0] * 3, "std": [1] * 3}, train=True)
    assert augmented(train[0])["image"].shape == (3, 16, 16)


def test_per_sample_seeding_touches_only_the_cpu_generator(monkeypatch):
    """Augmentations are seeded per sample on the CPU generator alone and leave it as they
    found it; reseeding the GPUs' generators would disturb the training step's randomness."""
    from framework.data.samples import sample_rng

    def refuse(*_):
        raise AssertionError("a GPU generator was reseeded")

    monkeypatch.setattr(torch.cuda, "manual_seed_all", refuse)
    before = torch.random.get_rng_state()
    with sample_rng(123):
        first = torch.rand(3)
    with sample_rng(123):
        assert torch.equal(torch.rand(3), first)
    assert torch.equal(torch.random.get_rng_state(), before)
