"""Known-answer tests for the map metrics and attack statistics (Quantus-style)."""

import math

import pytest
import torch

from doublecross.metrics import Accumulator, iou_sweep, iou_topk, l1_distance, l2_distance, target_confidence
from doublecross.metrics.maps import top_cells


def test_l1_l2_known_values():
    a = torch.zeros(2, 1, 2, 2)
    b = torch.tensor([[1.0, 0, 0, 0], [1.0, 1, 1, 1]]).view(2, 1, 2, 2)
    torch.testing.assert_close(l1_distance(a, b), torch.tensor([0.25, 1.0]))
    torch.testing.assert_close(l2_distance(a, b), torch.tensor([1 / 2, 1.0]))  # sqrt(1)/sqrt(4), sqrt(4)/2
    assert float(l1_distance(b, b).sum()) == 0.0


def test_iou_known_values_and_ties():
    a = torch.arange(10.0).view(1, 1, 10)
    b = torch.arange(10.0).flip(-1).view(1, 1, 10)
    assert float(iou_topk(a, a, 30)) == 1.0
    assert float(iou_topk(a, b, 30)) == 0.0  # {7,8,9} vs {0,1,2}
    assert float(iou_topk(a, b, 60)) == pytest.approx(2 / 10)  # {4..9} vs {0..5}: 2 shared / 10
    flat = torch.zeros(1, 1, 10)  # all tied: the first cells by flat index
    assert top_cells(flat, 20).nonzero()[:, 1].tolist() == [0, 1]
    assert top_cells(torch.zeros(1, 7), 10).sum() == math.ceil(0.7)
    assert iou_sweep(a, a).shape == (1, 9) and torch.equal(iou_sweep(a, a), torch.ones(1, 9))
    with pytest.raises(ValueError, match="percentage"):
        iou_topk(a, a, 0)
    with pytest.raises(ValueError, match="share a shape"):
        l1_distance(a, torch.zeros(1, 1, 9))


def test_confidence_and_accumulator():
    logits = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    torch.testing.assert_close(
        target_confidence(logits, torch.tensor([1, 0])), torch.tensor([0.5, 1 / (1 + math.exp(-10))])
    )
    acc = Accumulator()
    acc.add(torch.tensor([True, False, True]), l1=torch.tensor([0.1, 0.9, 0.3]))
    s = acc.summary()
    assert (s["n"], s["successes"], s["failures"]) == (3, 2, 1) and s["success_rate"] == pytest.approx(2 / 3)
    assert s["l1"] == pytest.approx(0.2) and s["l1_std"] == pytest.approx(math.sqrt(0.02))  # over successes only
