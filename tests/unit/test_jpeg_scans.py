"""Progressive JPEGs at 1/8 scale decoded from the scans that scale reads: same pixels, same errors, fewer scans.

``model_backend.jpeg_scans`` rewrites the bytes; ``decode_image`` uses the rewrite
only for a progressive JPEG that Pillow's draft decodes at 1/8 scale. "Off" below
is the path every JPEG took before (``imaging._rewrite_progressive_jpeg = False``).
"""

import io
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms

from model_backend import imaging
from model_backend.errors import BadImage, TooLarge
from model_backend.imaging import decode_image
from model_backend.jpeg_scans import eighth_scale_jpeg
from tools import camera_photo

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


def photo(width: int, height: int, mode: str = "RGB") -> Image.Image:
    return Image.fromarray(np.array(camera_photo.camera_pixels((width, height)))).convert(mode)


def progressive(image: Image.Image, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", progressive=True, **{"quality": 90, **params})
    return buffer.getvalue()


def scans(data: bytes) -> list[tuple[int, int, int]]:
    """(offset of the SOS marker, first component, Ss) per scan (0xFFDA never occurs inside entropy-coded data)."""
    found = []
    for match in re.finditer(rb"\xff\xda", data):
        start = match.start()
        count = data[start + 4]
        found.append((start, data[start + 5], data[start + 5 + 2 * count]))
    return found


def draft_decode(data: bytes, frame: tuple[int, int]) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", frame)
        image.load()
        return np.array(image)


def outcome(data: bytes, size: tuple[int, int], rewrite: bool):
    """decode_image's answer (an array, or the error's type and message) with the rewrite on or off."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(imaging, "_rewrite_progressive_jpeg", rewrite)
        try:
            return decode_image(data, size, max_pixels=4_000_000)
        except (BadImage, TooLarge) as exc:
            return type(exc).__name__, str(exc)


def same(first, second) -> bool:
    if isinstance(first, np.ndarray) and isinstance(second, np.ndarray):
        return np.array_equal(first, second)
    return first == second


def answer(result):
    """What a user is told: an image of this shape, or this error (type and message)."""
    return ("array", result.shape) if isinstance(result, np.ndarray) else result


@pytest.fixture
def rewrites(monkeypatch) -> list[bool]:
    """One entry per JPEG decode_image considered for the rewrite: True where it decoded the rewritten bytes."""
    taken = []
    original = imaging._decode_progressive_at_eighth_scale

    def spy(*args):
        result = original(*args)
        taken.append(result is not None)
        return result

    monkeypatch.setattr(imaging, "_decode_progressive_at_eighth_scale", spy)
    return taken


# Progressive JPEGs of several kinds; each is decoded at 1/8 for a (28, 28) frame (every side >= 224).
KINDS = {
    "4:2:0": lambda: progressive(photo(301, 229), subsampling="4:2:0"),
    "4:4:4": lambda: progressive(photo(301, 229), subsampling="4:4:4"),
    "4:2:2": lambda: progressive(photo(301, 229), subsampling="4:2:2"),
    "greyscale": lambda: progressive(photo(301, 229, "L")),
    "CMYK": lambda: progressive(photo(240, 240, "CMYK")),
    "restart markers every 3 blocks": lambda: progressive(photo(301, 229), restart_marker_blocks=3),
    "restart markers every row": lambda: progressive(photo(301, 229), restart_marker_rows=1),
    "sides a multiple of 16": lambda: progressive(photo(320, 240)),
    "odd sides, quality 50": lambda: progressive(photo(233, 451), quality=50),
    "EXIF orientation and an ICC profile": lambda: progressive(
        photo(301, 229), exif=camera_photo._exif(6), icc_profile=ImageCms.ImageCmsProfile(
            ImageCms.createProfile("sRGB")).tobytes()),
    "the bench's progressive camera JPEG": lambda: camera_photo.camera_jpeg((1800, 1800), progressive=True),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_rewritten_jpeg_decodes_at_eighth_scale_to_the_same_pixels(kind):
    data = KINDS[kind]()
    rewritten = eighth_scale_jpeg(data)
    assert rewritten is not None and len(rewritten) < len(data) / 2
    frame = (28, 28) if len(data) < 1_000_000 else (224, 224)
    expected = draft_decode(data, frame)
    with Image.open(io.BytesIO(data)) as image:
        assert expected.shape[:2] == (-(-image.height // 8), -(-image.width // 8))  # the 1/8 scale
    assert np.array_equal(draft_decode(rewritten, frame), expected)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_decode_image_takes_the_rewrite_and_gives_the_same_array(kind, rewrites):
    data = KINDS[kind]()
    size = (28, 28) if len(data) < 1_000_000 else (224, 224)
    expected = outcome(data, size, False)
    assert rewrites == [False]  # switched off: not taken
    assert same(outcome(data, size, True), expected)
    assert rewrites == [False, True]


def test_a_turned_photo_chooses_the_scale_in_its_stored_frame(rewrites):
    data = progressive(photo(460, 300), exif=camera_photo._exif(6))  # stored landscape, shown portrait
    size = (52, 36)  # (height, width) shown: the stored frame is 52 wide, 36 high -> 460 // 52 = 8, 300 // 36 = 8
    expected = outcome(data, size, False)
    assert same(outcome(data, size, True), expected)
    assert rewrites == [False, True]


@pytest.mark.parametrize("case", ["baseline", "progressive at 1/4", "progressive at 1/2", "PNG", "MPO"])
def test_other_images_take_the_normal_path(case, rewrites):
    image = photo(301, 229)
    buffer = io.BytesIO()
    if case == "baseline":
        image.save(buffer, format="JPEG", quality=90)
    elif case == "MPO":
        image.save(buffer, format="MPO", save_all=True, append_images=[image.transpose(Image.Transpose.ROTATE_180)])
    elif case == "PNG":
        image.save(buffer, format="PNG")
    else:
        image.save(buffer, format="JPEG", quality=90, progressive=True)
    data = buffer.getvalue()
    size = {"progressive at 1/4": (56, 56), "progressive at 1/2": (100, 100)}.get(case, (28, 28))
    array = decode_image(data, size)
    assert array.shape == (*size, 3)
    assert rewrites == ([] if case == "PNG" else [False])


def test_a_progressive_jpeg_too_small_for_eighth_scale_is_not_taken(rewrites):
    decode_image(progressive(photo(223, 300)), (28, 28))  # 223 // 28 = 7: scale 1/4
    assert rewrites == [False]


# -- the rewrite itself -----------------------------------------------------------------


def test_only_the_ac_scans_a_one_by_one_idct_ignores_are_replaced():
    data = progressive(photo(301, 229), subsampling="4:2:0")
    before, after = scans(data), scans(eighth_scale_jpeg(data))
    luma = before[0][1]  # the first scan is the interleaved DC scan, luma first
    kept = [(component, ss) for _, component, ss in before if ss == 0 or component != luma]
    assert [(component, ss) for _, component, ss in after] == kept + [(luma, 1)]  # chroma AC scans stay (2x2 IDCT)
    grey = progressive(photo(301, 229, "L"))
    assert [ss for _, _, ss in scans(eighth_scale_jpeg(grey))] == [0, 0, 1]  # DC, DC refinement, the zero AC scan


def test_a_component_without_ac_coefficients_1_to_9_is_not_rewritten(rewrites):
    # libjpeg interpolates the DC of a component whose scans give none of the AC coefficients 1-9 (block
    # smoothing); zero AC coefficients would stop that and change the pixels. Here: DC, AC 10-63, DC refinement.
    data = progressive(photo(301, 229, "L"))
    starts = scans(data) + [(data.index(b"\xff\xd9", scans(data)[-1][0]), None, None)]
    pieces = [data[:starts[0][0]]]
    for (start, _, ss), (end, _, _) in zip(starts, starts[1:]):
        scan = bytearray(data[start:end])
        if ss == 0:
            pieces.append(bytes(scan))
        elif scan[7] == 6:  # the AC 6-63 scan, made an AC 10-63 scan
            scan[7] = 10
            pieces.append(bytes(scan))
    crafted = b"".join(pieces) + b"\xff\xd9"
    assert [ss for _, _, ss in scans(crafted)] == [0, 10, 0]
    assert eighth_scale_jpeg(crafted) is None
    assert same(outcome(crafted, (28, 28), True), outcome(crafted, (28, 28), False))
    assert rewrites == [False, False]


def test_trailing_bytes_after_the_end_of_the_image_are_left_out():
    data = progressive(photo(301, 229))
    rewritten = eighth_scale_jpeg(data + b"trailer" * 100)
    assert rewritten == eighth_scale_jpeg(data) and rewritten.endswith(b"\xff\xd9")


@pytest.mark.parametrize("case", ["baseline", "PNG", "empty", "SOI only", "arithmetic (SOF10)", "12-bit",
                                  "an AC scan with Se 64", "an AC scan with an undefined table",
                                  "a segment length past the end", "garbage between segments"])
def test_files_it_does_not_handle_give_none(case):
    data = bytearray(progressive(photo(64, 48, "L")))
    sof = data.index(b"\xff\xc2")
    ac_scan = next(start for start, _, ss in scans(bytes(data)) if ss > 0)
    if case == "baseline":
        data = bytearray(_baseline())
    elif case == "PNG":
        buffer = io.BytesIO()
        photo(64, 48).save(buffer, format="PNG")
        data = bytearray(buffer.getvalue())
    elif case == "empty":
        data = bytearray()
    elif case == "SOI only":
        data = bytearray(b"\xff\xd8")
    elif case == "arithmetic (SOF10)":
        data[sof + 1] = 0xCA
    elif case == "12-bit":
        data[sof + 4] = 12
    elif case == "an AC scan with Se 64":
        data[ac_scan + 8] = 64
    elif case == "an AC scan with an undefined table":
        data[ac_scan + 6] = 0x03
    elif case == "a segment length past the end":
        data[sof + 2:sof + 4] = b"\xff\xf0"
    else:
        data[ac_scan:ac_scan] = b"junk"
    assert eighth_scale_jpeg(bytes(data)) is None


def _baseline() -> bytes:
    buffer = io.BytesIO()
    photo(64, 48).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_a_file_of_too_many_segments_gives_none():
    data = progressive(photo(64, 48, "L"))
    assert eighth_scale_jpeg(data[:2] + b"\xff\xfe\x00\x03x" * 2000 + data[2:]) is None  # 2000 comments
    assert eighth_scale_jpeg(data[:2] + b"\xff\xfe\x00\x03x" * 100 + data[2:]) is not None


def test_every_truncation_gives_none():
    data = progressive(photo(64, 48))
    assert all(eighth_scale_jpeg(data[:cut]) is None for cut in range(len(data)))


# -- untrusted bytes: never an exception, never a different answer -----------------------------------
#
# A mutation inside entropy-coded data makes a corrupt file that libjpeg still decodes (with a
# "premature end of data segment" warning): an image either way, with the same error or shape, but
# not always the same pixels, because libjpeg smooths the rows after the break according to which
# scan came last, and the rewrite drops or adds scans. Intact files give the same pixels (above).


SEEDS = {
    "4:2:0": progressive(photo(88, 72), quality=80),
    "4:4:4 with restart markers": progressive(photo(88, 72), quality=80, subsampling="4:4:4", restart_marker_blocks=2),
    "greyscale": progressive(photo(88, 72, "L"), quality=80),
}
FUZZ_SIZE = (9, 11)  # (height, width): 72 // 9 = 8 and 88 // 11 = 8, so each seed is taken at 1/8


def test_the_fuzz_seeds_take_the_rewrite(rewrites):
    for data in SEEDS.values():
        assert same(outcome(data, FUZZ_SIZE, True), outcome(data, FUZZ_SIZE, False))
    assert rewrites == [True, False] * len(SEEDS)


def _check(data: bytes) -> None:
    rewritten = eighth_scale_jpeg(data)
    assert rewritten is None or (isinstance(rewritten, bytes) and len(rewritten) < len(data))
    assert answer(outcome(data, FUZZ_SIZE, True)) == answer(outcome(data, FUZZ_SIZE, False))


@FUZZ
@given(st.sampled_from(sorted(SEEDS)), st.data())
def test_bit_flips_and_byte_overwrites_anywhere(name, data):
    mutated = bytearray(SEEDS[name])
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, len(mutated) - 1))
        if data.draw(st.booleans()):
            mutated[position] ^= 1 << data.draw(st.integers(0, 7))
        else:
            mutated[position] = data.draw(st.sampled_from([0x00, 0xFF, 0xD9, 0xDA, 0xC4, 0xD0, 0x3F, 0x40]))
    _check(bytes(mutated))


@FUZZ
@given(st.sampled_from(sorted(SEEDS)), st.data())
def test_scan_headers_rewritten(name, data):
    mutated = bytearray(SEEDS[name])
    start, _, _ = data.draw(st.sampled_from(scans(bytes(mutated))))
    count = mutated[start + 4]
    field = data.draw(st.integers(start + 2, start + 7 + 2 * count))  # length, Ns, selectors, Ss, Se, Ah/Al
    mutated[field] = data.draw(st.integers(0, 255))
    _check(bytes(mutated))


@FUZZ
@given(st.sampled_from(sorted(SEEDS)), st.data())
def test_cuts_and_splices(name, data):
    seed = SEEDS[name]
    start = data.draw(st.integers(0, len(seed) - 1))
    end = data.draw(st.integers(start, len(seed)))
    insert = data.draw(st.sampled_from([b"", b"\xff\xd9", b"\xff", b"\xff\xd0", seed[start:end]]))
    _check(seed[:start] + insert + seed[end:])
