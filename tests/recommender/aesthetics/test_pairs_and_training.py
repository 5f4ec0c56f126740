"""Hinge loss, pair building and a few training steps, on tiny tensors."""

from __future__ import annotations

import numpy as np
import torch

from recommender.aesthetics.features import GLOBAL_DIM, LOCAL_DIM, PATCHES
from recommender.aesthetics.pairs import (
    click_pairs,
    degradation_pairs,
    rating_pairs,
    split_pairs,
)
from recommender.aesthetics.training import TrainConfig, TrainingSet, hinge_loss, train_scorer


def test_hinge_loss_is_zero_when_the_better_photo_wins_by_the_margin():
    # given scores where the first photo of each pair wins by 2, 0.5 and loses by 1
    s1 = torch.tensor([3.0, 1.5, 0.0])
    s2 = torch.tensor([1.0, 1.0, 1.0])
    y = torch.tensor([1.0, 1.0, 1.0])
    # when
    loss = hinge_loss(s1, s2, y, delta=1.0)
    # then: max(0, 1-2)=0, max(0, 1-0.5)=0.5, max(0, 1+1)=2 -> mean 2.5/3
    assert torch.isclose(loss, torch.tensor(2.5 / 3))


def test_hinge_loss_reads_y_minus_one_as_the_second_photo_is_better():
    assert hinge_loss(torch.tensor([0.0]), torch.tensor([2.0]), torch.tensor([-1.0])) == 0


def test_rating_pairs_keep_only_pairs_at_least_the_gap_apart():
    pairs = rating_pairs([50, 55, 70, 20], min_gap=10)
    got = {(int(i), int(j), int(y)) for i, j, y in pairs}
    assert got == {(0, 2, -1), (0, 3, 1), (1, 2, -1), (1, 3, 1), (2, 3, 1)}


def test_rating_pairs_within_a_category_only_when_asked():
    pairs = rating_pairs([10, 90, 10, 90], min_gap=10, groups=["boots", "boots", "heels", "heels"])
    assert {(int(i), int(j)) for i, j, _ in pairs} == {(0, 1), (2, 3)}


def test_degradation_chains_rank_original_over_mild_over_strong():
    pairs = degradation_pairs([[0, 1, 2]])
    assert {tuple(map(int, p)) for p in pairs} == {(0, 1, 1), (0, 2, 1), (1, 2, 1)}


def test_a_click_beats_the_unclicked_items_shown_above_it_only():
    # given a list a, b, c, d, e where c and e were clicked
    pairs = click_pairs(["a", "b", "c", "d", "e"], clicked={"c", "e"})
    # then c beats a, b; e beats a, b, d; nothing beats a clicked item, nothing below counts
    assert sorted(pairs) == sorted([("c", "a"), ("c", "b"), ("e", "a"), ("e", "b"), ("e", "d")])


def test_no_click_no_pairs():
    assert click_pairs(["a", "b"], clicked=set()) == []


def test_held_out_pairs_never_touch_training_photos():
    pairs = rating_pairs([0, 20, 40, 60], min_gap=10)
    train, val = split_pairs(pairs, held_out=np.array([2, 3]))
    assert {(int(i), int(j)) for i, j, _ in train} == {(0, 1)}
    assert {(int(i), int(j)) for i, j, _ in val} == {(2, 3)}


def test_a_few_training_steps_lower_the_loss():
    # given photos whose quality is written in one feature
    rng = np.random.default_rng(0)
    n = 24
    quality = rng.uniform(0, 100, n)
    xg = torch.as_tensor(rng.normal(size=(n, GLOBAL_DIM)), dtype=torch.float32)
    xg[:, 0] = torch.as_tensor(quality / 10)
    xl = torch.as_tensor(rng.normal(size=(n, PATCHES, LOCAL_DIM)), dtype=torch.float32)
    data = TrainingSet(xg, xl, {"ratings": rating_pairs(quality, 10)})
    # when
    _, losses = train_scorer(data, TrainConfig(steps=30, lr=1e-2), device=torch.device("cpu"))
    # then
    assert losses[-1] < 0.5 * losses[0]
