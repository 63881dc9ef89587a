"""Objectives referring to objectives: one naming rule, references checked at validation
(an earlier objective, by name), and evaluation finding its embedder by capability."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from framework.evaluate.embed import contrastive_heads
from framework.evaluate.model import EvalModelError
from framework.objective import ContrastiveEmbedder, objective_name
from framework.validation import RecipeValidationError
from tests.helpers import tiny_recipe

ITC = '{"type": "itc", "view": "full", "embed_dim": 16, "pooling": "mean"'
ITM = '{"type": "itm", "view": "full"'


def test_an_objective_is_named_by_its_name_else_its_type():
    assert objective_name({"type": "itc"}) == "itc"
    assert objective_name({"type": "itc", "name": "itc_b"}) == "itc_b"


def test_itm_reads_the_itc_it_names_among_two():
    recipe = tiny_recipe(f'objectives=[{ITC}, "name": "itc_a"}}, {ITC}, "name": "itc_b"}}, '
                         f'{ITM}, "similarities_from": "itc_b"}}]')
    assert recipe["objectives"][2]["similarities_from"] == "itc_b"


@pytest.mark.parametrize("objectives, message", [
    (f'[{ITM}}}, {ITC}}}]', "'itc' is not defined in the objectives listed before this one; defined: none"),
    (f'[{ITC}, "name": "itc_a"}}, {ITM}, "similarities_from": "itc_b"}}]',
     "'itc_b' is not defined in the objectives listed before this one (did you mean 'itc_a'?); defined: itc_a"),
    (f'[{ITC}, "name": "itc_a"}}, {ITM}}}]', "'itc' is not defined in the objectives listed before this one"),
])
def test_a_reference_must_name_an_earlier_objective(objectives, message):
    with pytest.raises(RecipeValidationError) as err:
        tiny_recipe(f"objectives={objectives}")
    assert "similarities_from: " + message in str(err.value), str(err.value)


def test_random_negatives_need_no_contrastive_objective():
    recipe = tiny_recipe(f'objectives=[{ITM}, "negatives": "random", "similarities_from": null}}]')
    assert recipe["objectives"][0]["similarities_from"] is None


class Embedder(nn.Module):
    def embed_image(self, image):
        return image

    def embed_text(self, text):
        return text


def eval_model(**objectives: nn.Module) -> SimpleNamespace:
    return SimpleNamespace(model=SimpleNamespace(objectives=nn.ModuleDict(objectives)))


def test_evaluation_finds_the_embedder_by_capability_or_name():
    first, second = Embedder(), Embedder()
    model = eval_model(mlm=nn.Linear(1, 1), contrast=first, other=second)  # no objective is called "itc"
    assert isinstance(first, ContrastiveEmbedder) and not isinstance(nn.Linear(1, 1), ContrastiveEmbedder)
    assert contrastive_heads(model) is first
    assert contrastive_heads(model, "other") is second
    with pytest.raises(EvalModelError, match="'mlm' has no embed_image/embed_text"):
        contrastive_heads(model, "mlm")
    with pytest.raises(EvalModelError, match="no objective named 'nope'"):
        contrastive_heads(model, "nope")
    with pytest.raises(EvalModelError, match="none of the recipe's objectives"):
        contrastive_heads(eval_model(mlm=nn.Linear(1, 1)))
    assert torch.equal(contrastive_heads(model).embed_text(torch.ones(1)), torch.ones(1))
