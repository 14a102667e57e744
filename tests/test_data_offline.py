"""Offline dataset, transforms, scribbles, SLIC expansion and gallery."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch

from repro.data import build_dataset, build_offline_dataset, expand_scribbles_slic
from repro.data.offline import COMPLETE_MARKER, OfflineParameters, generate_sample
from repro.data.palette import read_label_png, write_label_png
from repro.data.scribbles import scribbles_from_label
from repro.data.transforms import (
    SegmentationSample,
    build_train_transform,
    denormalize,
    sample_generator,
)

matplotlib.use("Agg")

TINY = {"num_train": 5, "num_val": 3, "image_size": 48, "scale_range": (6.0, 48.0)}


def _label_bytes(root: Path) -> dict[str, bytes]:
    folder = root / "VOCdevkit" / "VOC2012" / "SegmentationClass"
    return {path.name: path.read_bytes() for path in sorted(folder.glob("*.png"))}


def test_same_seed_same_label_bytes_other_seed_differs(tmp_path: Path) -> None:
    first = build_offline_dataset(tmp_path / "a", **TINY, seed=3)
    second = build_offline_dataset(tmp_path / "b", **TINY, seed=3)
    other = build_offline_dataset(tmp_path / "c", **TINY, seed=4)
    assert _label_bytes(first) == _label_bytes(second)
    assert len(_label_bytes(first)) == 8
    assert _label_bytes(first) != _label_bytes(other)


def test_cache_is_reused_and_rebuilt_when_damaged(tmp_path: Path) -> None:
    root = build_offline_dataset(tmp_path, **TINY)
    label_file = root / "VOCdevkit" / "VOC2012" / "SegmentationClass" / "train_000002.png"
    stamp = label_file.stat().st_mtime_ns
    assert build_offline_dataset(tmp_path, **TINY) == root
    assert label_file.stat().st_mtime_ns == stamp  # reused, not regenerated
    original = label_file.read_bytes()
    label_file.unlink()
    assert build_offline_dataset(tmp_path, **TINY) == root
    assert label_file.read_bytes() == original
    (root / COMPLETE_MARKER).unlink()  # a partial build: no marker
    build_offline_dataset(tmp_path, **TINY)
    assert (root / COMPLETE_MARKER).is_file()
    jpeg = next((root / "VOCdevkit" / "VOC2012" / "JPEGImages").glob("*.jpg"))
    jpeg.write_bytes(jpeg.read_bytes()[:100])  # truncated file
    build_offline_dataset(tmp_path, **TINY)
    assert jpeg.stat().st_size > 100


def test_cache_key_and_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path))
    root = build_offline_dataset(**TINY)
    assert root.parent == tmp_path / "offline"
    assert OfflineParameters(**TINY).cache_key() == root.name
    assert OfflineParameters(**TINY).cache_key() != OfflineParameters(**TINY, seed=1).cache_key()


def test_read_through_the_voc_loader(tmp_path: Path) -> None:
    dataset = build_dataset("offline", "train", root=tmp_path, **TINY, with_scribbles=True)
    assert len(dataset) == 5 and dataset.num_classes == 9
    assert dataset.class_names[:3] == ["background", "disc", "ring"]
    image, label, scribbles = dataset[0]
    assert image.shape == (3, 48, 48) and label.shape == scribbles.shape == (48, 48)
    assert abs(float(image.mean())) < 3.0  # normalised, not 0..255
    assert int(label.max()) < 9
    assert len(build_dataset("offline", "val", root=tmp_path, **TINY)) == 3
    with pytest.raises(ValueError, match="num_classes"):
        build_dataset("offline", "train", root=tmp_path, **{**TINY, "num_classes": 20})


def test_generation_properties() -> None:
    params = OfflineParameters(**TINY, num_classes=4)
    image, label, scribbles = generate_sample(params, "train", 0)
    assert image.dtype == np.uint8 and image.shape == (48, 48, 3)
    assert set(np.unique(label)) <= {0, 1, 2, 3}
    labels = [generate_sample(params, "val", i)[1] for i in range(6)]
    assert any(len(np.unique(lab)) > 1 for lab in labels)  # objects are drawn
    np.testing.assert_array_equal(generate_sample(params, "val", 2)[1], labels[2])


def _saturation(pixels: np.ndarray) -> np.ndarray:
    pixels = pixels.astype(np.float32)
    return pixels.max(axis=-1) - pixels.min(axis=-1)


def test_grey_background_colour_marks_objects_not_classes() -> None:
    params = OfflineParameters(**{**TINY, "image_size": 64})
    object_saturation = {}
    for index in range(12):
        image, label, _ = generate_sample(params, "train", index)
        assert _saturation(image[label == 0]).max() == 0, "background pixels must be grey"
        for value in np.unique(label[label > 0]):
            object_saturation.setdefault(int(value), []).append(
                float(_saturation(image[label == value]).mean())
            )
    assert np.mean([np.mean(v) for v in object_saturation.values()]) > 10
    version_1 = OfflineParameters(**{**TINY, "image_size": 64}, grey_background=False)
    backgrounds = [
        _saturation(image[label == 0]).mean()
        for image, label, _ in (generate_sample(version_1, "train", i) for i in range(6))
    ]
    assert max(backgrounds) > 10, "grey_background=False keeps the background's colour"
    assert version_1.cache_key() != params.cache_key()


def test_scribbles_stay_inside_their_class_region() -> None:
    params = OfflineParameters(**TINY)
    for index in range(4):
        _, label, scribbles = generate_sample(params, "train", index)
        stroke = scribbles != 255
        assert stroke.any()
        np.testing.assert_array_equal(scribbles[stroke], label[stroke])
        assert (scribbles[stroke] == 0).any()  # background is scribbled too


def test_scribbles_from_label_cover_every_region_and_skip_ignore() -> None:
    label = np.zeros((40, 40), dtype=np.uint8)
    label[5:20, 5:20] = 1
    label[25:35, 22:38] = 2
    label[0, :] = 255
    scribbles = scribbles_from_label(label, np.random.default_rng(0))
    stroke = scribbles != 255
    np.testing.assert_array_equal(scribbles[stroke], label[stroke])
    assert set(np.unique(scribbles[stroke])) == {0, 1, 2}
    assert stroke.sum() < 0.5 * label.size  # strokes, not a dense labelling


def test_expand_scribbles_slic_fills_touched_superpixels() -> None:
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    image[:, 16:] = 200  # two flat halves
    scribbles = np.full((32, 32), 255, dtype=np.uint8)
    scribbles[10, 4:8] = 1
    scribbles[20, 24:28] = 2
    expanded = expand_scribbles_slic(image, scribbles, n_segments=4, compactness=0.1)
    assert (expanded[scribbles != 255] == scribbles[scribbles != 255]).all()
    assert (expanded == 1).sum() > 4 and (expanded == 2).sum() > 4
    assert not ((expanded == 1) & (np.arange(32)[None, :] >= 16)).any()
    assert not ((expanded == 2) & (np.arange(32)[None, :] < 16)).any()
    empty = expand_scribbles_slic(image, np.full((32, 32), 255, np.uint8), n_segments=4)
    assert (empty == 255).all()


def test_expand_scribbles_slic_conflict_majority_wins() -> None:
    image = np.full((16, 16, 3), 100, dtype=np.uint8)  # one flat region → one superpixel
    scribbles = np.full((16, 16), 255, dtype=np.uint8)
    scribbles[2, 2:10] = 3
    scribbles[12, 2:5] = 1
    expanded = expand_scribbles_slic(image, scribbles, n_segments=1, compactness=10.0)
    assert expanded[8, 8] == 3 and expanded[12, 3] == 1  # majority fills, seeds keep their class
    with pytest.raises(ValueError, match="scribbles"):
        expand_scribbles_slic(image, scribbles[:8], n_segments=1)


def _coded_sample(size: int = 32) -> SegmentationSample:
    # The label is a function of the image (red channel // 16), so any misalignment shows;
    # 8×8 blocks of one code keep interpolation from blurring every pixel.
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 16, ((size + 7) // 8, (size + 7) // 8))
    codes = np.kron(blocks, np.ones((8, 8), dtype=np.int64))[:size, :size]
    image = np.stack([codes * 16 + 8, rng.integers(0, 255, (size, size)), codes * 0 + 50], 0)
    return SegmentationSample(
        image=torch.from_numpy(image).float(),
        label=torch.from_numpy(codes),
        scribbles=torch.from_numpy(codes.copy()),
    )


def test_train_transform_keeps_image_label_scribbles_aligned() -> None:
    transform = build_train_transform(crop_size=32)
    sample = _coded_sample()
    for seed in range(6):
        out = transform(sample, sample_generator(seed, 0, 0))
        assert out.image.shape == (3, 32, 32) and out.label.shape == (32, 32)
        red = torch.from_numpy(denormalize(out.image)[:, :, 0].astype(np.int64))
        valid = out.label != 255
        assert valid.any()
        # Away from block edges (3×3 neighbourhood of one label) the image must show that code.
        as_float = out.label[None, None].float()
        high = torch.nn.functional.max_pool2d(as_float, 3, 1, 1)[0, 0]
        low = -torch.nn.functional.max_pool2d(-as_float, 3, 1, 1)[0, 0]
        interior = valid & (high == low)
        assert interior.sum() > 20
        assert torch.equal((red // 16)[interior], out.label[interior])
        # The check can fail: a label flipped without its image breaks it.
        flipped = out.label.flip(-1)
        assert not torch.equal((red // 16)[interior], flipped[interior])
        torch.testing.assert_close(out.scribbles, out.label)
        # Padding (only when scaled below the crop) is ignore in the label.
        assert ((out.label == 255) == (out.scribbles == 255)).all()


def test_transform_is_reproducible_and_varies_with_seed() -> None:
    transform = build_train_transform(crop_size=16)
    sample = _coded_sample()
    first = transform(sample, sample_generator(1, 2, 3))
    again = transform(sample, sample_generator(1, 2, 3))
    other = transform(sample, sample_generator(1, 3, 3))
    torch.testing.assert_close(first.image, again.image)
    assert torch.equal(first.label, again.label)
    assert not torch.equal(first.label, other.label)


def test_crop_pads_with_ignore_label() -> None:
    from repro.data.transforms import RandomCrop

    sample = _coded_sample(size=8)
    out = RandomCrop(12)(sample, sample_generator(0, 0, 0))
    assert out.label.shape == (12, 12)
    assert (out.label[8:, :] == 255).all() and (out.label[:, 8:] == 255).all()
    assert (out.label[:8, :8] != 255).all()


def test_palette_png_round_trip(tmp_path: Path) -> None:
    label = np.arange(256, dtype=np.uint8).reshape(16, 16)
    write_label_png(tmp_path / "x.png", label)
    np.testing.assert_array_equal(read_label_png(tmp_path / "x.png"), label)
    with pytest.raises(ValueError, match="label"):
        write_label_png(tmp_path / "y.png", np.full((2, 2), 300))


def test_gallery_has_image_label_scribble_rows(tmp_path: Path) -> None:
    from repro.data.gallery import plot_gallery

    root = build_offline_dataset(tmp_path, **TINY)
    figure = plot_gallery(root, n=3, seed=0)
    assert len(figure.axes) == 9
    assert [figure.axes[i].get_ylabel() for i in (0, 3, 6)] == ["image", "label", "scribbles"]
