"""Real-dataset loaders read tiny fixtures written in each official layout (never downloads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from repro.data import DatasetNotFoundError, build_dataset, find_datasets, write_label_png
from repro.data.cityscapes import cityscapes_id_to_train_id

SIZE = (12, 16)  # H, W


def _image(path: Path, seed: int, ext_format: str = "JPEG") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (*SIZE, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format=ext_format)


def _label(seed: int, high: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, high, SIZE).astype(np.uint8)


def _write_voc(root: Path, train: list[str], val: list[str]) -> dict[str, np.ndarray]:
    year = root / "VOCdevkit" / "VOC2012"
    labels = {}
    for seed, image_id in enumerate(train + val):
        _image(year / "JPEGImages" / f"{image_id}.jpg", seed)
        label = _label(seed, 21)
        label[0, :] = 255  # the VOC boundary value
        write_label_png(year / "SegmentationClass" / f"{image_id}.png", label)
        labels[image_id] = label
    lists = year / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True)
    (lists / "train.txt").write_text("\n".join(train) + "\n")
    (lists / "val.txt").write_text("\n".join(val) + "\n")
    (lists / "trainval.txt").write_text("\n".join(train + val) + "\n")
    return labels


def _check_item(dataset, index: int, expected_label: np.ndarray) -> None:
    image, label = dataset[index]
    assert image.dtype == torch.float32 and image.shape == (3, *SIZE)
    assert label.dtype == torch.int64
    np.testing.assert_array_equal(label.numpy(), expected_label)
    assert dataset.ignore_index == 255


def test_voc_reads_labels_with_ignore_boundary(tmp_path: Path) -> None:
    labels = _write_voc(tmp_path, ["2007_000001", "2007_000002"], ["2007_000003"])
    dataset = build_dataset("voc", "train", root=tmp_path)
    assert len(dataset) == 2 and dataset.num_classes == 21
    assert dataset.class_names[15] == "person"
    _check_item(dataset, 1, labels["2007_000002"])
    assert len(build_dataset("voc", "trainval", root=tmp_path)) == 3


def test_voc_scribblesup_xml_is_read(tmp_path: Path) -> None:
    _write_voc(tmp_path, ["2007_000001"], ["2007_000003"])
    xml_dir = tmp_path / "pascal_2012_scribble"
    xml_dir.mkdir()
    (xml_dir / "2007_000001.xml").write_text(
        "<annotation><filename>2007_000001.jpg</filename>"
        "<size><width>16</width><height>12</height></size>"
        "<polygon><tag>background</tag><point><X>0</X><Y>11</Y></point>"
        "<point><X>15</X><Y>11</Y></point></polygon>"
        "<polygon><tag>person</tag><point><X>8</X><Y>2</Y></point>"
        "<point><X>8</X><Y>8</Y></point></polygon></annotation>"
    )
    dataset = build_dataset("voc", "train", root=tmp_path, with_scribbles=True)
    image, label, scribbles = dataset[0]
    assert scribbles.shape == label.shape
    raw = dataset.scribbles(0)
    assert set(np.unique(raw)) == {0, 15, 255}
    assert (raw[2:9, 8] == 15).all() and raw[11, 0] == 0


def test_voc_aug_composes_train_aug_from_sbd(tmp_path: Path) -> None:
    _write_voc(tmp_path, ["a1", "a2"], ["v1"])
    sbd = tmp_path / "benchmark_RELEASE" / "dataset"
    sbd_labels = {}
    for seed, image_id in enumerate(["a2", "s1", "s2", "v1"]):
        _image(sbd / "img" / f"{image_id}.jpg", 100 + seed)
        _image(tmp_path / "VOCdevkit" / "VOC2012" / "JPEGImages" / f"{image_id}.jpg", 100 + seed)
        sbd_labels[image_id] = _label(100 + seed, 21)
        (sbd / "cls").mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(
            sbd / "cls" / f"{image_id}.mat",
            {
                "GTcls": {
                    "Segmentation": sbd_labels[image_id],
                    "Boundaries": [],
                    "CategoriesPresent": [],
                }
            },
        )
    (sbd / "train.txt").write_text("a2\ns1\n")
    (sbd / "val.txt").write_text("s2\nv1\n")
    dataset = build_dataset("voc_aug", "train_aug", root=tmp_path)
    # (VOC train ∪ SBD train ∪ SBD val) − VOC val
    assert [path.stem for path in dataset.images] == ["a1", "a2", "s1", "s2"]
    _check_item(dataset, 2, sbd_labels["s1"])
    voc_label = np.asarray(dataset.load_label(1))
    assert (voc_label[0] == 255).all()  # a2 keeps its VOC annotation, not SBD's


def test_context_59_plus_background(tmp_path: Path) -> None:
    year = tmp_path / "VOCdevkit" / "VOC2010"
    label = _label(3, 60)
    label[1, 1] = 255
    _image(year / "JPEGImages" / "2008_000002.jpg", 3)
    write_label_png(year / "SegmentationClassContext" / "2008_000002.png", label)
    (year / "ImageSets" / "SegmentationContext").mkdir(parents=True)
    (year / "ImageSets" / "SegmentationContext" / "val.txt").write_text("2008_000002\n")
    dataset = build_dataset("context", "val", root=tmp_path)
    assert dataset.num_classes == 60 and dataset.class_names[0] == "background"
    _check_item(dataset, 0, label)


def test_ade20k_reduces_zero_label(tmp_path: Path) -> None:
    base = tmp_path / "ADEChallengeData2016"
    raw = _label(4, 151)
    raw[0, 0], raw[0, 1] = 0, 150
    _image(base / "images" / "validation" / "ADE_val_00000001.jpg", 4)
    write_label_png(base / "annotations" / "validation" / "ADE_val_00000001.png", raw)
    dataset = build_dataset("ade20k", "val", root=tmp_path)
    assert dataset.num_classes == 150
    expected = np.where(raw == 0, 255, raw.astype(int) - 1)
    _check_item(dataset, 0, expected)


def test_cityscapes_maps_label_ids_to_train_ids(tmp_path: Path) -> None:
    name = "aachen_000000_000019"
    raw = np.full(SIZE, 7, dtype=np.uint8)  # road (train id 0)
    raw[0, :4] = [0, 26, 33, 255]  # unlabeled → 255, car → 13, bicycle → 18, 255 → 255
    _image(tmp_path / "leftImg8bit" / "val" / "aachen" / f"{name}_leftImg8bit.png", 5, "PNG")
    write_label_png(tmp_path / "gtFine" / "val" / "aachen" / f"{name}_gtFine_labelIds.png", raw)
    dataset = build_dataset("cityscapes", "val", root=tmp_path)
    assert dataset.num_classes == 19
    expected = np.zeros(SIZE, dtype=np.uint8)
    expected[0, :4] = [255, 13, 18, 255]
    _check_item(dataset, 0, expected)
    assert cityscapes_id_to_train_id()[24] == 11  # person


def test_camvid_void_becomes_ignore(tmp_path: Path) -> None:
    raw = _label(6, 12)
    raw[0, 0] = 11
    _image(tmp_path / "val" / "0001TP_008550.png", 6, "PNG")
    write_label_png(tmp_path / "valannot" / "0001TP_008550.png", raw)
    dataset = build_dataset("camvid", "val", root=tmp_path)
    assert dataset.num_classes == 11
    _check_item(dataset, 0, np.where(raw == 11, 255, raw))


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("voc", ["VOCdevkit/VOC2012/JPEGImages", "host.robots.ox.ac.uk"]),
        ("voc_aug", ["VOCdevkit/VOC2012", "host.robots.ox.ac.uk"]),
        ("context", ["SegmentationClassContext", "pascal-context"]),
        ("ade20k", ["ADEChallengeData2016", "sceneparsing"]),
        ("cityscapes", ["gtFine", "cityscapes-dataset.com"]),
        ("camvid", ["test}annot", "CamVid"]),
    ],
)
def test_missing_root_names_dataset_path_layout_and_source(
    tmp_path: Path, name: str, words: list[str]
) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetNotFoundError) as error:
        build_dataset(name, "train_aug" if name == "voc_aug" else "train", root=missing)
    message = str(error.value)
    assert repr(name) in message and str(missing) in message
    for word in words:
        assert word in message


def test_wrong_layout_names_the_missing_part(tmp_path: Path) -> None:
    (tmp_path / "VOCdevkit" / "VOC2012" / "JPEGImages").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match="SegmentationClass"):
        build_dataset("voc", "train", root=tmp_path)


def test_unknown_name_lists_names() -> None:
    with pytest.raises(ValueError, match="cityscapes"):
        build_dataset("imagenet", "train")


def test_find_datasets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_voc(tmp_path / "voc", ["a1"], ["v1"])
    (tmp_path / "camvid" / "train").mkdir(parents=True)
    monkeypatch.setenv("REPRO_DATA_ROOT", str(tmp_path))
    found = find_datasets()
    assert found["voc"] == str(tmp_path / "voc")
    assert found["voc_aug"] is None and found["camvid"] is None and found["ade20k"] is None
    assert set(found) == {"voc", "voc_aug", "context", "ade20k", "cityscapes", "camvid"}
