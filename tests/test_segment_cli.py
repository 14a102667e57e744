"""``repro segment``: a success run on a tiny image, every bad input (exit 2, nothing written),
and every way an output could lose data (refused before work, or written all or nothing)."""

from __future__ import annotations

import errno
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, features

from repro.cli.main import main
from repro.data.palette import IGNORE_INDEX, read_label_png, write_label_png
from repro.singleimage import tool
from repro.singleimage.procedure import SegmentationResult
from repro.singleimage.tool import grey_to_8bit, read_image_rgb

FAST = ["--steps", "10", "--draws", "2", "--threads", "1"]


@pytest.fixture(autouse=True)
def random_tool_features(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tool's default features are the offline-pretrained weights, built by
    `repro run pretrain_backbones` into a cache a clean checkout lacks: these tests of the
    command line run on random features (the default itself is checked below)."""
    from dataclasses import replace

    monkeypatch.setattr(tool, "TOOL_CONFIG", replace(tool.TOOL_CONFIG, weights=None))


DEFAULTS = tool.TOOL_CONFIG  # read before any test replaces it


def test_default_features_are_the_offline_pretrained_stand_in() -> None:
    assert DEFAULTS.weights == "offline-pretrained"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    image = np.zeros((24, 32, 3), dtype=np.uint8)
    image[:, 16:] = 200
    scribbles = np.full((24, 32), IGNORE_INDEX, dtype=np.uint8)
    scribbles[4:20, 3:5] = 0
    scribbles[4:20, 27:29] = 1
    paths = {
        "image": tmp_path / "img.png",
        "scribbles": tmp_path / "scr.png",
        "small": tmp_path / "small.png",
        "empty": tmp_path / "empty.png",
        "single": tmp_path / "single.png",
        "broken": tmp_path / "broken.png",
    }
    Image.fromarray(image).save(paths["image"])
    write_label_png(paths["scribbles"], scribbles)
    write_label_png(paths["small"], scribbles[:12])
    write_label_png(paths["empty"], np.full_like(scribbles, IGNORE_INDEX))
    write_label_png(paths["single"], np.where(scribbles == 1, 0, scribbles))
    paths["broken"].write_bytes(b"not a png")
    return paths


def test_success_writes_mask_and_overlay(files: dict[str, Path], tmp_path: Path, capsys) -> None:
    out, overlay = tmp_path / "o" / "mask.png", tmp_path / "o" / "overlay.png"
    code = main(
        [
            "segment",
            str(files["image"]),
            "--scribbles",
            str(files["scribbles"]),
            "--out",
            str(out),
            "--overlay",
            str(overlay),
            *FAST,
        ]
    )
    assert code == 0
    mask = read_label_png(out)
    assert mask.shape == (24, 32) and set(np.unique(mask)) <= {0, 1}
    assert Image.open(overlay).size == (32, 24)
    assert "time from reading to writing" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("image", "scribbles", "message"),
    [
        ("image", "small", "differs"),
        ("image", "empty", "no scribbled pixel"),
        ("image", "single", "only class 0"),
        ("broken", "scribbles", "IMAGE: cannot read"),
        ("image", "broken", "--scribbles: cannot read"),
        ("missing", "scribbles", "IMAGE: file not found"),
    ],
)
def test_bad_input_exit_2_nothing_written(
    files: dict[str, Path], tmp_path: Path, capsys, image: str, scribbles: str, message: str
) -> None:
    out, overlay = tmp_path / "mask.png", tmp_path / "overlay.png"
    image_path = files.get(image, tmp_path / "missing.png")
    code = main(
        [
            "segment",
            str(image_path),
            "--scribbles",
            str(files[scribbles]),
            "--out",
            str(out),
            "--overlay",
            str(overlay),
            *FAST,
        ]
    )
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists() and not overlay.exists()


def test_bad_numbers_exit_2(files: dict[str, Path], tmp_path: Path, capsys) -> None:
    out = tmp_path / "mask.png"
    code = main(
        [
            "segment",
            str(files["image"]),
            "--scribbles",
            str(files["scribbles"]),
            "--out",
            str(out),
            "--steps",
            "0",
        ]
    )
    assert code == 2 and "--steps" in capsys.readouterr().err
    assert not out.exists()


# --- Data loss: outputs checked before any work, written all or nothing -------------------------


def _run(*argv: str | Path) -> int:
    return main(["segment", *(str(arg) for arg in argv), *FAST])


def _run_with_outputs(files: dict[str, Path], out: Path, overlay: Path, *extra: str) -> int:
    """``repro segment`` on the fixture files, writing ``out`` and ``overlay``."""
    return _run(
        files["image"],
        "--scribbles",
        files["scribbles"],
        "--out",
        out,
        "--overlay",
        overlay,
        *extra,
    )


def _error_line(capsys) -> str:
    """The one-line ``repro segment: error: ...`` message (no traceback, nothing else)."""
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("repro segment: error: "), err
    return err


def _leftovers(folder: Path) -> list[str]:
    """Hidden temporaries/backups a write may have left (the fixture makes none)."""
    return sorted(path.name for path in folder.rglob(".*"))


def _snapshot(paths: dict[str, Path]) -> dict[str, bytes]:
    return {name: path.read_bytes() for name, path in paths.items() if path.is_file()}


@pytest.fixture
def no_segment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the (slow) segmentation runs: refusals must come before it."""

    def fail(*args, **kwargs):
        raise AssertionError("segment_image ran although the run should have been refused")

    monkeypatch.setattr(tool, "segment_image", fail)


@pytest.fixture
def fake_segment(monkeypatch: pytest.MonkeyPatch) -> None:
    """An instant segmentation (left half class 0, right half 1), for the tests of writing."""

    def fake(image: np.ndarray, scribbles: np.ndarray, config, seed: int = 0):
        prediction = np.zeros(scribbles.shape, dtype=np.uint8)
        prediction[:, scribbles.shape[1] // 2 :] = 1
        return SegmentationResult(
            prediction=prediction,
            probabilities=torch.zeros(2, *scribbles.shape),
            classes=[0, 1],
            expanded=scribbles,
        )

    monkeypatch.setattr(tool, "segment_image", fake)


@pytest.fixture
def old_outputs(tmp_path: Path) -> tuple[Path, Path]:
    """An existing mask and overlay, as a previous run left them."""
    out, overlay = tmp_path / "mask.png", tmp_path / "overlay.png"
    write_label_png(out, np.full((24, 32), 7, dtype=np.uint8))
    Image.new("RGB", (32, 24), (1, 2, 3)).save(overlay)
    return out, overlay


def _link(kind: str, target: Path, link: Path) -> Path:
    if kind == "symlink":
        link.symlink_to(target)
    else:
        link.hardlink_to(target)
    return link


@pytest.mark.parametrize(
    ("argument", "same_as"),
    [
        ("--out", "image"),
        ("--out", "scribbles"),
        ("--overlay", "image"),
        ("--overlay", "scribbles"),
        ("--overlay", "out"),
        ("--out", "symlink"),
        ("--out", "hardlink"),
    ],
)
def test_output_that_is_an_input_is_refused_even_with_force(
    files: dict[str, Path], tmp_path: Path, capsys, no_segment, argument: str, same_as: str
) -> None:
    # Before: exit 0 and the photo (or the scribbles) replaced by the mask.
    out, overlay = tmp_path / "mask.png", tmp_path / "overlay.png"
    if same_as in ("image", "scribbles"):
        target = files[same_as]
    elif same_as == "out":
        target = out
    else:
        target = _link(same_as, files["image"], tmp_path / f"{same_as}.png")
    paths = {"--out": out, "--overlay": overlay, argument: target}
    before = _snapshot(files)
    code = _run(
        files["image"],
        "--scribbles",
        files["scribbles"],
        "--out",
        paths["--out"],
        "--overlay",
        paths["--overlay"],
        "--force",
    )
    assert code == 2
    message = _error_line(capsys)
    assert message.startswith(f"repro segment: error: {argument}: ") and "same file" in message
    assert _snapshot(files) == before
    assert not out.exists() and not overlay.exists()


@pytest.mark.parametrize("argument", ["--out", "--overlay"])
def test_existing_output_needs_force(
    files: dict[str, Path], old_outputs: tuple[Path, Path], capsys, no_segment, argument: str
) -> None:
    out, overlay = old_outputs
    targets = {"--out": out.with_name("new.png"), "--overlay": out.with_name("new.jpg")}
    targets[argument] = out if argument == "--out" else overlay  # the other one is new
    before = _snapshot({"out": out, "overlay": overlay})
    code = _run(
        files["image"],
        "--scribbles",
        files["scribbles"],
        "--out",
        targets["--out"],
        "--overlay",
        targets["--overlay"],
    )
    assert code == 2
    message = _error_line(capsys)
    assert message.startswith(f"repro segment: error: {argument}: ") and "--force" in message
    assert _snapshot({"out": out, "overlay": overlay}) == before
    assert not out.with_name("new.png").exists() and not out.with_name("new.jpg").exists()


def test_force_replaces_existing_outputs_keeping_their_mode(
    files: dict[str, Path], old_outputs: tuple[Path, Path], fake_segment
) -> None:
    out, overlay = old_outputs
    out.chmod(0o640)
    code = _run_with_outputs(files, out, overlay, "--force")
    assert code == 0
    assert set(np.unique(read_label_png(out))) == {0, 1}
    assert np.array(Image.open(overlay))[0, 0].tolist() != [1, 2, 3]
    assert out.stat().st_mode & 0o777 == 0o640
    assert _leftovers(out.parent) == []


def test_symlinked_output_replaces_the_file_it_points_at(
    files: dict[str, Path], old_outputs: tuple[Path, Path], fake_segment
) -> None:
    out, _ = old_outputs
    link = _link("symlink", out, out.with_name("link.png"))
    assert _run(files["image"], "--scribbles", files["scribbles"], "--out", link, "--force") == 0
    assert link.is_symlink() and set(np.unique(read_label_png(out))) == {0, 1}


@pytest.mark.parametrize("failing", ["mask", "overlay"])
def test_full_disk_leaves_old_files_untouched(
    files: dict[str, Path],
    old_outputs: tuple[Path, Path],
    capsys,
    fake_segment,
    monkeypatch: pytest.MonkeyPatch,
    failing: str,
) -> None:
    # Before: the mask was written in place and a full disk left it truncated.
    out, overlay = old_outputs
    before = _snapshot({"out": out, "overlay": overlay})
    real_save, saves = Image.Image.save, []

    def save_until_disk_full(self, fp, *args, **kwargs):
        saves.append(fp)
        if len(saves) == (1 if failing == "mask" else 2):
            fp.write(b"\x89PNG\r\n half a file")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save_until_disk_full)
    code = _run_with_outputs(files, out, overlay, "--force")
    assert code == 1
    message = _error_line(capsys)
    argument = "--out" if failing == "mask" else "--overlay"
    assert message.startswith(f"repro segment: error: {argument}: cannot write")
    assert "No space left on device" in message
    assert _snapshot({"out": out, "overlay": overlay}) == before
    assert _leftovers(out.parent) == []


@pytest.mark.parametrize("existed", [True, False])
def test_failed_overlay_rename_rolls_the_mask_back(
    files: dict[str, Path],
    tmp_path: Path,
    capsys,
    fake_segment,
    monkeypatch: pytest.MonkeyPatch,
    existed: bool,
) -> None:
    # Both or neither: the mask is renamed first, so the overlay's failure must undo it.
    out, overlay = tmp_path / "new" / "mask.png", tmp_path / "overlay.png"
    if existed:
        write_label_png(out, np.full((24, 32), 7, dtype=np.uint8))
        Image.new("RGB", (32, 24), (1, 2, 3)).save(overlay)
    before = _snapshot({"out": out, "overlay": overlay})
    real_replace = os.replace

    def replace(source, target):
        if os.path.realpath(target) == os.path.realpath(overlay):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    code = _run_with_outputs(files, out, overlay, "--force")
    assert code == 1 and "--overlay: cannot write" in _error_line(capsys)
    assert _snapshot({"out": out, "overlay": overlay}) == before
    assert out.parent.exists() == existed  # a folder made for the mask goes too
    assert _leftovers(tmp_path) == []


def test_overlay_that_is_a_directory_is_refused_before_work(
    files: dict[str, Path], tmp_path: Path, capsys, no_segment
) -> None:
    out, overlay = tmp_path / "mask.png", tmp_path / "pictures.png"
    overlay.mkdir()
    code = _run_with_outputs(files, out, overlay, "--force")
    assert code == 2 and "--overlay" in _error_line(capsys) and not out.exists()


def test_unwritable_overlay_folder_is_refused_before_work(
    files: dict[str, Path], tmp_path: Path, capsys, no_segment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulated: as root (the test machine) a read-only folder is still writable.
    out, overlay = tmp_path / "mask.png", tmp_path / "locked" / "overlay.png"
    overlay.parent.mkdir()
    real_access = os.access

    def access(path, mode, **kwargs):
        if os.path.realpath(path) == os.path.realpath(overlay.parent):
            return False
        return real_access(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)
    code = _run(
        files["image"], "--scribbles", files["scribbles"], "--out", out, "--overlay", overlay
    )
    assert code == 2 and "not writable" in _error_line(capsys)
    assert not out.exists()


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="root writes into read-only folders; see the simulated test above",
)
def test_read_only_overlay_folder_is_refused_before_work(
    files: dict[str, Path], tmp_path: Path, capsys, no_segment
) -> None:
    out, overlay = tmp_path / "mask.png", tmp_path / "locked" / "overlay.png"
    overlay.parent.mkdir()
    overlay.parent.chmod(0o555)
    try:
        code = _run(
            files["image"], "--scribbles", files["scribbles"], "--out", out, "--overlay", overlay
        )
    finally:
        overlay.parent.chmod(0o755)
    assert code == 2 and "not writable" in _error_line(capsys)
    assert not out.exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("mask.jpg", "JPEG is lossy"),
        ("mask.JPEG", "JPEG is lossy"),
        ("mask.gif", "extension '.gif'"),
        ("mask", "no extension"),
    ],
)
def test_mask_name_must_be_png(
    files: dict[str, Path], tmp_path: Path, capsys, no_segment, name: str, message: str
) -> None:
    # Before: --out m.jpg wrote PNG bytes under a .jpg name.
    out = tmp_path / name
    assert _run(files["image"], "--scribbles", files["scribbles"], "--out", out) == 2
    error = _error_line(capsys)
    assert error.startswith("repro segment: error: --out: ") and message in error
    assert not out.exists()


@pytest.mark.parametrize(
    ("name", "image_format"),
    [
        ("o.png", "PNG"),
        ("o.jpg", "JPEG"),
        ("o.JPEG", "JPEG"),
        ("o.bmp", "BMP"),
        ("o.tif", "TIFF"),
        ("o.tiff", "TIFF"),
        pytest.param(
            "o.webp",
            "WEBP",
            marks=pytest.mark.skipif(not features.check("webp"), reason="Pillow without WebP"),
        ),
    ],
)
def test_overlay_is_saved_in_its_extensions_format(
    files: dict[str, Path], tmp_path: Path, fake_segment, name: str, image_format: str
) -> None:
    out, overlay = tmp_path / "MASK.PNG", tmp_path / name
    code = _run(
        files["image"], "--scribbles", files["scribbles"], "--out", out, "--overlay", overlay
    )
    assert code == 0
    assert Image.open(out).format == "PNG"
    with Image.open(overlay) as picture:
        assert picture.format == image_format and picture.size == (32, 24)


@pytest.mark.parametrize(("name", "message"), [("o.xyz", "'.xyz'"), ("o", "no extension")])
def test_unknown_overlay_extension_is_refused(
    files: dict[str, Path], tmp_path: Path, capsys, no_segment, name: str, message: str
) -> None:
    out, overlay = tmp_path / "mask.png", tmp_path / name
    code = _run(
        files["image"], "--scribbles", files["scribbles"], "--out", out, "--overlay", overlay
    )
    assert code == 2
    error = _error_line(capsys)
    assert error.startswith("repro segment: error: --overlay: ") and message in error
    assert not out.exists() and not overlay.exists()


def test_16bit_greyscale_is_scaled_not_clipped(tmp_path: Path) -> None:
    # Before: convert("RGB") clipped at 255, turning 89% of a 16-bit photo white.
    values = np.array([[0, 257 * 100, 32768, 65535]], dtype=np.uint16)
    png, tif = tmp_path / "grey16.png", tmp_path / "grey16b.tif"
    Image.fromarray(values).save(png)
    Image.frombytes("I;16B", (4, 1), values.astype(">u2").tobytes()).save(tif)
    for path, mode in ((png, "I;16"), (tif, "I;16B")):
        assert Image.open(path).mode == mode
        rgb = read_image_rgb(path)
        assert rgb.dtype == np.uint8 and rgb.shape == (1, 4, 3)
        assert rgb[0, :, 0].tolist() == [0, 100, 128, 255]
        assert (rgb[..., 0] == rgb[..., 2]).all()


def test_32bit_integer_greyscale_is_scaled_by_its_bit_depth(tmp_path: Path) -> None:
    in_memory = Image.fromarray(np.array([[0, 65535]], dtype=np.int32))  # mode I, 16-bit data
    assert in_memory.mode == "I" and grey_to_8bit(in_memory, "x")[0, :, 0].tolist() == [0, 255]
    tif = tmp_path / "grey32.tif"
    # Pillow writes mode I as signed 32-bit TIFF: its white is 2**31 - 1.
    Image.fromarray(np.array([[0, 2**30, 2**31 - 1]], dtype=np.int32)).save(tif)
    assert read_image_rgb(tif)[0, :, 0].tolist() == [0, 128, 255]


def test_16bit_rgb_png_is_reduced_by_pillow(tmp_path: Path) -> None:
    # Pillow opens a 16-bit RGB PNG as 8-bit RGB (high bytes): nothing to scale ourselves.
    path = tmp_path / "rgb16.png"
    rows = np.zeros((2, 2, 3), dtype=">u2")
    rows[...] = (65535, 32768, 256)
    path.write_bytes(_png(16, 2, rows.reshape(2, -1).view(np.uint8)))
    assert Image.open(path).mode == "RGB"
    assert read_image_rgb(path)[0, 0].tolist() == [255, 128, 1]


def _png(bit_depth: int, colour_type: int, rows: np.ndarray, palette: bytes = b"") -> bytes:
    """A minimal PNG from raw rows (Pillow's writer would shrink a short palette's indices)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    channels = {0: 1, 2: 3, 3: 1}[colour_type]
    height, width = rows.shape[0], rows.shape[1] * 8 // bit_depth // channels
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    raw = b"".join(b"\x00" + row.astype(np.uint8).tobytes() for row in rows)
    extra = chunk(b"PLTE", palette) if palette else b""
    body = chunk(b"IHDR", header) + extra + chunk(b"IDAT", zlib.compress(raw))
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IEND", b"")


def _short_palette_scribbles(path: Path, extra_value: int) -> Path:
    """The fixture's scribbles as an 8-bit palette PNG with a 2-entry palette (classes 0, 1)."""
    scribbles = np.full((24, 32), IGNORE_INDEX, dtype=np.uint8)
    scribbles[4:20, 3:5] = 0
    scribbles[4:20, 27:29] = 1
    scribbles[0, 0] = extra_value
    path.write_bytes(_png(8, 3, scribbles, palette=bytes([0, 0, 0, 255, 0, 0])))
    return path


def test_palette_index_beyond_the_palette_is_refused(
    files: dict[str, Path], tmp_path: Path, capsys, no_segment
) -> None:
    # Before: index 5 of a 2-entry palette became a third class.
    scribbles = _short_palette_scribbles(tmp_path / "short.png", extra_value=5)
    out = tmp_path / "mask.png"
    assert _run(files["image"], "--scribbles", scribbles, "--out", out) == 2
    error = _error_line(capsys)
    assert error.startswith("repro segment: error: --scribbles: ")
    assert str(scribbles) in error and "pixel value 5 beyond its 2-entry palette" in error
    assert not out.exists()


def test_short_palette_with_valid_indices_still_reads(tmp_path: Path) -> None:
    # 255 (unlabelled) needs no palette entry; the reader's behaviour for valid files is kept.
    path = _short_palette_scribbles(tmp_path / "short.png", extra_value=IGNORE_INDEX)
    label = read_label_png(path)
    assert label.dtype == np.uint8 and set(np.unique(label)) == {0, 1, IGNORE_INDEX}
    with pytest.raises(ValueError, match="pixel value 5 beyond"):
        read_label_png(_short_palette_scribbles(tmp_path / "bad.png", extra_value=5))


@pytest.mark.parametrize("sigma", ["nan", "inf", "-inf"])
def test_non_finite_sigma_exit_2(
    files: dict[str, Path], tmp_path: Path, capsys, no_segment, sigma: str
) -> None:
    out = tmp_path / "mask.png"
    assert (
        _run(files["image"], "--scribbles", files["scribbles"], "--out", out, f"--sigma={sigma}")
        == 2
    )
    assert "--sigma must be a finite number" in _error_line(capsys)
    assert not out.exists()


def test_out_that_is_a_directory_is_refused(
    files: dict[str, Path], tmp_path: Path, capsys, no_segment
) -> None:
    folder = tmp_path / "results.png"
    folder.mkdir()
    for out in (tmp_path, folder):
        assert _run(files["image"], "--scribbles", files["scribbles"], "--out", out) == 2
        assert "is a directory" in _error_line(capsys)
    assert list(folder.iterdir()) == []


def test_missing_out_folder_is_created_only_after_all_checks(
    files: dict[str, Path], tmp_path: Path, capsys, no_segment
) -> None:
    out = tmp_path / "new" / "deeper" / "mask.png"
    code = _run(
        files["image"],
        "--scribbles",
        files["scribbles"],
        "--out",
        out,
        "--overlay",
        tmp_path / "o.xyz",
    )
    assert code == 2 and "--overlay" in _error_line(capsys)
    assert not (tmp_path / "new").exists()


def test_weights_file_is_used_and_bad_weights_exit_2(
    files: dict[str, Path], tmp_path: Path, capsys, monkeypatch
) -> None:
    import torchvision

    from repro.models import pretrained

    loaded: list[str] = []
    real_load = pretrained.load_backbone_state

    def spy(model, arch, state, source):
        loaded.append(source)
        return real_load(model, arch, state, source)

    monkeypatch.setattr(pretrained, "load_backbone_state", spy)

    torch.manual_seed(3)
    weights = tmp_path / "mobilenet_v2.pt"
    torch.save(torchvision.models.mobilenet_v2(weights=None).state_dict(), weights)
    common = ["segment", str(files["image"]), "--scribbles", str(files["scribbles"]), *FAST]
    masks = {}
    for name, extra in {
        "file": ["--weights", str(weights)],
        "random": ["--weights", "none"],
    }.items():
        out = tmp_path / f"{name}.png"
        assert main([*common, "--out", str(out), *extra]) == 0
        masks[name] = read_label_png(out)
    assert masks["file"].shape == masks["random"].shape == (24, 32)
    # checked before the run, then loaded by the run's network; never for "none"
    assert len(loaded) == 2 and all(str(weights) in source for source in loaded)

    wrong = tmp_path / "resnet.pt"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), wrong)
    for bad, message in [(tmp_path / "absent.pt", "does not exist"), (wrong, "does not match")]:
        out = tmp_path / "bad.png"
        capsys.readouterr()
        assert main([*common, "--out", str(out), "--weights", str(bad)]) == 2
        err = capsys.readouterr().err
        assert "--weights" in err and message in err
        assert not out.exists()
