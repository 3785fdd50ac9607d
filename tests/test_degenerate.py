import torch

from doublecross.metrics import is_degenerate


def test_is_degenerate_known_maps():
    maps = torch.zeros(5, 1, 4, 4)
    maps[1] = 0.7  # constant, non-zero
    maps[2, 0, 1, 2] = 1.0  # one hot cell: informative
    maps[3] = torch.rand(1, 4, 4, generator=torch.Generator().manual_seed(0))
    maps[4, 0, 0, 0] = float("nan")
    assert is_degenerate(maps).tolist() == [True, True, False, False, True]
    assert is_degenerate(maps[:, 0]).shape == (5,)  # (B, h, w) works too


def test_is_degenerate_tolerance_and_shape_error():
    m = torch.full((1, 1, 3, 3), 0.5)
    m[0, 0, 0, 0] += 1e-7
    assert bool(is_degenerate(m))
    assert not bool(is_degenerate(m, atol=1e-9))
    import pytest

    with pytest.raises(ValueError, match="shape"):
        is_degenerate(torch.zeros(3))
