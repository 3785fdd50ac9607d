"""Class-balanced, seeded attack set (spec §1.4): per-class counts differ by ≤ 1, deterministic, correct only."""

from collections import Counter

import pytest
import torch

from doublecross.experiments.selection import balanced_order, dataset_labels, select_attack_set, select_balanced


def test_balanced_counts_seeded_and_deterministic():
    labels = [i % 5 for i in range(100)] + [0] * 40  # class 0 over-represented
    wrong = set(range(0, 140, 7))  # some images misclassified
    for limit in (1, 7, 12, 23, 50):
        chosen = select_balanced(labels, lambda i: i not in wrong, limit, seed=3)
        assert len(chosen) == limit and chosen == sorted(chosen) and not set(chosen) & wrong
        counts = Counter(labels[i] for i in chosen)
        per_class = [counts.get(c, 0) for c in range(5)]
        assert max(per_class) - min(per_class) <= 1, per_class
        assert select_balanced(labels, lambda i: i not in wrong, limit, seed=3) == chosen  # deterministic
    a = select_balanced(labels, lambda i: True, 10, seed=0)
    b = select_balanced(labels, lambda i: True, 10, seed=1)
    assert a != b  # the seed draws different images
    assert a != sorted(range(10))  # not the first images in dataset order


def test_exhausted_class_gives_its_share_to_others():
    labels = [0] * 10 + [1] * 2 + [2] * 10
    chosen = select_balanced(labels, lambda i: True, 12, seed=0)
    counts = Counter(labels[i] for i in chosen)
    assert counts == {0: 5, 1: 2, 2: 5}
    assert len(select_balanced(labels, lambda i: i < 3, 50, seed=0)) == 3  # only 3 correct images


def test_is_correct_called_at_most_once_per_image():
    labels = [i % 3 for i in range(30)]
    seen = Counter()

    def correct(i):
        seen[i] += 1
        return i % 2 == 0

    select_balanced(labels, correct, 9, seed=0)
    assert max(seen.values()) == 1


def test_balanced_order_partitions():
    labels = [2, 0, 1, 0, 2, 2]
    order = balanced_order(labels, seed=0)
    assert sorted(i for q in order for i in q) == list(range(6))
    assert [sorted(q) for q in order] == [[1, 3], [2], [0, 4, 5]]


class _Fixed(torch.nn.Module):
    """Predicts class = round(mean pixel * 2) in {0, 1, 2}; wrapped like a Classifier (mean buffer)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, 3, 1, 1))

    def forward(self, x):
        c = (x.mean(dim=(1, 2, 3)) * 2).round().long()
        return torch.nn.functional.one_hot(c, 3).float()


def _dataset(labels):
    # image i has mean pixel value c/2 where c is its true class (so the model is right) unless label is -1
    return [(torch.full((3, 4, 4), (i % 3) / 2), y) for i, y in enumerate(labels)]


def test_select_attack_set_on_dataset_and_unlabelled():
    model = _Fixed()
    labels = [i % 3 for i in range(30)]
    labels[3] = 1  # image 3 (class 0 by content) mislabelled: never chosen
    ds = _dataset(labels)
    chosen = select_attack_set(ds, model, 9, seed=0)
    assert 3 not in [i for i, _ in chosen]
    assert Counter(y for _, y in chosen) == {0: 3, 1: 3, 2: 3}
    unl = _dataset([-1] * 12)
    chosen = select_attack_set(unl, model, 6, seed=0)  # labels = predictions, balanced over them
    assert Counter(y for _, y in chosen) == {0: 2, 1: 2, 2: 2}
    first = select_attack_set(ds, model, 4, seed=0, selection="first")
    assert [i for i, _ in first] == [0, 1, 2, 4]
    with pytest.raises(ValueError, match="no correctly classified"):
        select_attack_set(_dataset([1, 2, 0]), model, 2, seed=0)


def test_dataset_labels_without_decoding():
    from doublecross.data.scenes import ScenesDataset

    ds = ScenesDataset("test", size=25)
    assert dataset_labels(ds) == [i % 10 for i in range(25)]
    assert ds._cache == {}  # nothing rendered


def test_resuming_a_run_written_before_the_balanced_draw_keeps_its_rule(tmp_path):
    import yaml

    from doublecross.config import ConfigError, to_dict
    from doublecross.experiments.job import JobConfig
    from doublecross.experiments.rundir import _check_config

    old = {k: v for k, v in to_dict(JobConfig()).items() if k != "selection"}  # an older config.yaml
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(old))
    with pytest.raises(ConfigError, match="selection"):
        _check_config(str(tmp_path), JobConfig())  # never mixes two attack sets
    _check_config(str(tmp_path), JobConfig(selection="first"))
