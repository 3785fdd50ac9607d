"""Datasets: scenes determinism and masks, Fashion-MNIST IDX reading, image folders."""

import gzip
import os

import numpy as np
import pytest
import torch
from PIL import Image

from doublecross.data import DATASETS, create_dataset
from doublecross.data.fashion_mnist import FashionMNIST, read_idx
from doublecross.data.folder import ImageFolderDataset, preprocess
from doublecross.data.scenes import CLASSES, ScenesDataset, render_scene


def test_scenes_shapes_ranges_and_balance():
    ds = ScenesDataset("test", size=20)
    x, y, m = ds[3]
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32 and m.shape == (1, 64, 64)
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert torch.equal(x, torch.round(x * 255) / 255)  # on the 8-bit grid
    assert sorted(ds[i][1] for i in range(20)) == sorted(list(range(10)) * 2)
    assert len(CLASSES) == 10 and ds.classes == CLASSES


def test_scenes_same_seed_identical_bytes_other_seed_or_split_differs():
    a = render_scene(0, "test", 5)
    b = render_scene(0, "test", 5)
    assert a.image.tobytes() == b.image.tobytes() and a.mask.tobytes() == b.mask.tobytes()
    assert render_scene(1, "test", 5).image.tobytes() != a.image.tobytes()
    assert render_scene(0, "train", 5).image.tobytes() != a.image.tobytes()
    # independent of access order and caching
    d1, d2 = ScenesDataset("test", size=8), ScenesDataset("test", size=8, cache=False)
    assert torch.equal(d1[7][0], d2[7][0]) and torch.equal(d1[0][2], d2[0][2])


def test_scene_masks_match_the_shapes():
    """Inside the (eroded) mask the image is one flat colour (plus 2% noise); the object
    covers a sensible fraction; the mask border is where the image changes."""
    for i in range(30):
        sc = render_scene(0, "test", i)
        m = sc.mask
        frac = m.mean()
        assert 0.03 < frac < 0.6, (i, frac)
        core = m.copy()
        for axis in (0, 1):
            for shift in (1, -1):
                core &= np.roll(m, shift, axis=axis)
        img = sc.image.astype(np.float32) / 255.0
        assert core.sum() > 10
        assert img[core].std(axis=0).max() < 0.04, i  # a flat colour inside
        assert np.abs(img[core].mean(axis=0) - img[~m].mean(axis=0)).max() > 0.05  # differs from background


def test_scenes_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        ScenesDataset("val")
    with pytest.raises(ValueError, match="size must be positive"):
        ScenesDataset("test", size=0)
    with pytest.raises(IndexError):
        ScenesDataset("test", size=2)[2]
    with pytest.raises(ValueError, match="takes no root"):
        create_dataset("scenes", root="/tmp")


def _write_idx(path, arr, compress):
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    opener = gzip.open if compress else open
    with opener(path, "wb") as fh:
        fh.write(header + arr.astype(np.uint8).tobytes())


@pytest.mark.parametrize("compress", [False, True])
def test_fashion_mnist_from_idx_files(tmp_path, compress):
    rng = np.random.default_rng(0)
    imgs, labs = rng.integers(0, 256, (5, 28, 28)), np.array([0, 3, 9, 1, 2])
    sfx = ".gz" if compress else ""
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{sfx}", imgs, compress)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{sfx}", labs, compress)
    ds = FashionMNIST("test", root=str(tmp_path))
    x, y = ds[2]
    assert len(ds) == 5 and y == 9 and x.shape == (3, 32, 32)
    assert torch.equal(x[0, 2:30, 2:30], torch.from_numpy(imgs[2]).float() / 255)
    assert torch.equal(x[0], x[1]) and float(x[:, :2].abs().sum()) == 0.0  # replicated, zero-padded


def test_fashion_mnist_missing_or_truncated(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        FashionMNIST("test", root=str(tmp_path))
    (tmp_path / "t").write_bytes(bytes([0, 0, 8, 3]) + (10).to_bytes(4, "big") * 3 + b"\x00" * 5)
    with pytest.raises(ValueError, match="truncated"):
        read_idx(str(tmp_path / "t"))
    (tmp_path / "u").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(ValueError, match="magic"):
        read_idx(str(tmp_path / "u"))


@pytest.mark.skipif(
    not os.path.isdir("/usr/share/datasets/fashion-mnist"), reason="Debian's dataset-fashion-mnist not installed"
)
def test_fashion_mnist_real_files():
    ds = create_dataset("fashion-mnist", split="test")
    assert len(ds) == 10000 and ds[0][0].shape == (3, 32, 32)


def _odd_images(root):
    os.makedirs(root / "cats")
    os.makedirs(root / "dogs")
    Image.new("L", (300, 200), 128).save(root / "cats" / "grey.png")
    Image.new("RGBA", (100, 120), (255, 0, 0, 0)).save(root / "cats" / "transparent.png")
    Image.new("RGB", (50, 50), (0, 0, 255)).convert("P").save(root / "dogs" / "palette.gif")
    Image.fromarray(np.full((64, 64), 65535, dtype=np.uint16)).save(root / "dogs" / "deep.png")
    (root / "dogs" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    Image.new("RGB", (256, 256), (10, 200, 30)).save(root / "dogs" / "full.jpg")
    data = (root / "dogs" / "full.jpg").read_bytes()
    (root / "dogs" / "truncated.jpg").write_bytes(data[: len(data) // 3])


def test_image_folder_converts_odd_images_and_skips_broken(tmp_path):
    _odd_images(tmp_path)
    ds = ImageFolderDataset(str(tmp_path), size=224)
    bad = sorted(os.path.basename(e.path) for e in ds.errors)
    assert bad == ["corrupt.jpg", "truncated.jpg"]
    assert len(ds) == 5 and ds.classes == ("cats", "dogs")
    by_name = {os.path.basename(p): ds[i] for i, p in enumerate(ds.kept_paths)}
    for x, _ in by_name.values():
        assert x.shape == (3, 224, 224) and 0 <= float(x.min()) and float(x.max()) <= 1
    assert by_name["grey.png"][1] == 0 and by_name["palette.gif"][1] == 1
    torch.testing.assert_close(by_name["grey.png"][0], torch.full((3, 224, 224), 128 / 255))
    assert torch.allclose(by_name["transparent.png"][0], torch.ones(3, 224, 224))  # composited on white
    assert torch.allclose(by_name["deep.png"][0], torch.ones(3, 224, 224))  # 16-bit white -> 1.0
    assert float(by_name["palette.gif"][0][2].mean()) > 0.95


def test_preprocess_resize_crop_and_direct():
    im = Image.new("RGB", (512, 256))
    assert preprocess(im, 224).shape == (3, 224, 224)
    assert preprocess(im, 32, "direct-resize").shape == (3, 32, 32)
    with pytest.raises(ValueError, match="preprocessing"):
        preprocess(im, 224, "stretch")


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        ImageFolderDataset(str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="no images"):
        ImageFolderDataset(str(tmp_path))
    (tmp_path / "x.png").write_bytes(b"junk")
    with pytest.raises(ValueError, match="none of the 1 images"):
        ImageFolderDataset(str(tmp_path))


def test_dataset_registry():
    assert DATASETS.names() == ["scenes", "fashion-mnist", "folder"]
    with pytest.raises(ValueError, match="needs a root"):
        create_dataset("folder")
