"""Files that are not what they say (class 7): links and non-regular files inside artifacts
and caches, declared sizes larger than a file can hold, headers without an end, a million
empty AEDAT 3.1 packets, and a bad cache label file named as such."""

from __future__ import annotations

import io
import os
import shutil
import time
import zipfile

import numpy as np
import pytest

from bidl.datasets.bounded import MAX_HEADER_LINE, check_npz_limits
from bidl.datasets.cache import load_split, write_split
from bidl.datasets.events.formats import _PACKET_HEADER, read_event_file
from bidl.datasets.legacy import read_bidl_npz
from bidl.deploy.artifact import MANIFEST, ArtifactError, read_manifest, verify_files
from bidl.registry import BidlError


@pytest.fixture
def artifact(tmp_path):
    pytest.importorskip("onnxruntime")
    from deploy_helpers import tiny_artifact

    target = tmp_path / "art"
    shutil.copytree(tiny_artifact(), target)
    return target


# --- links and non-regular files ---------------------------------------------------------


def test_an_artifact_file_that_is_a_link_is_refused(artifact, tmp_path):
    from bidl.deploy import Runtime

    outside = tmp_path / "outside.onnx"
    shutil.move(artifact / "step.onnx", outside)  # same bytes, same hash: only the link differs
    os.symlink(outside, artifact / "step.onnx")
    with pytest.raises(ArtifactError, match=r"step\.onnx: a link or not a regular file"):
        Runtime(artifact)


def test_a_manifest_that_is_a_link_is_refused(artifact, tmp_path):
    shutil.move(artifact / MANIFEST, tmp_path / MANIFEST)
    os.symlink(tmp_path / MANIFEST, artifact / MANIFEST)
    with pytest.raises(ArtifactError, match=r"net_params\.json: a link or not a regular file"):
        read_manifest(artifact)


def test_a_graph_outside_the_hashed_files_is_refused(artifact):
    manifest = read_manifest(artifact)
    manifest["files"] = {k: v for k, v in manifest["files"].items() if k != manifest["graph"]}
    with pytest.raises(ArtifactError, match=r"the graph 'step\.onnx' is not among the hashed"):
        verify_files(artifact, manifest)


def make_cache(folder):
    samples = [(np.full((2, 3), i, np.uint8), i % 2) for i in range(4)]
    write_split(folder, "train", {}, iter(samples), 4, classes=["a", "b"])


def test_a_cache_file_that_is_a_link_is_refused(tmp_path):
    folder = tmp_path / "cache"
    make_cache(folder)
    shutil.move(folder / "train_img.npy", tmp_path / "img.npy")
    os.symlink(tmp_path / "img.npy", folder / "train_img.npy")
    with pytest.raises(BidlError, match=r"train_img\.npy is a link or not a regular file"):
        load_split(folder, "train")


def test_a_cache_file_that_is_a_fifo_is_refused(tmp_path):
    folder = tmp_path / "cache"
    make_cache(folder)
    (folder / "train_label.npy").unlink()
    os.mkfifo(folder / "train_label.npy")  # reading it would block forever
    with pytest.raises(BidlError, match=r"train_label\.npy is a link or not a regular file"):
        load_split(folder, "train")


def test_a_bad_label_file_is_named(tmp_path):
    folder = tmp_path / "cache"
    make_cache(folder)
    (folder / "train_label.npy").write_bytes(b"not an array")
    with pytest.raises(BidlError, match=r"cannot read the cache file .*train_label\.npy"):
        load_split(folder, "train")
    np.save(folder / "train_label.npy", np.zeros(4, np.float32))
    with pytest.raises(BidlError, match=r"the cache label file .*train_label\.npy holds float32"):
        load_split(folder, "train")


# --- declared sizes ----------------------------------------------------------------------


def npy_header(shape, dtype) -> bytes:
    buffer = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False}
    np.lib.format.write_array_header_1_0(buffer, {**header, "shape": shape})
    return buffer.getvalue()


def lying_npz(path, events: int) -> None:
    """An .npz whose x, y, t, p each declare ``events`` values but hold 64 bytes: a 3 MB
    file of this kind made np.load allocate 10.7 GB."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, dtype in (("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "<i1")):
            archive.writestr(f"{name}.npy", npy_header((events,), dtype) + bytes(64))


def test_an_npz_declaring_250_million_events_is_refused_before_loading(tmp_path):
    path = tmp_path / "events.npz"
    lying_npz(path, 250_000_000)
    start = time.perf_counter()
    with pytest.raises(BidlError, match=r"x declares \[250000000\] int16 .* holds at most"):
        read_event_file(path)
    assert time.perf_counter() - start < 1.0


def test_a_zip_member_inflating_past_deflate_is_refused(tmp_path):
    path = tmp_path / "events.npz"
    lying_npz(path, 10)
    data = bytearray(path.read_bytes())
    # the central directory's uncompressed size of the first member: claim 4 GiB
    first = data.find(b"PK\x01\x02")
    data[first + 24 : first + 28] = (2**32 - 2).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(BidlError, match=r"x\.npy declares 4,294,967,294 bytes from .* compressed"):
        check_npz_limits(path)


def test_an_npy_declaring_more_than_it_holds_is_refused(tmp_path):
    path = tmp_path / "events.npy"
    path.write_bytes(npy_header((10**9,), [("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "<i1")]))
    with pytest.raises(BidlError, match=r"declares \[1000000000\] .* holds at most 0 bytes"):
        read_event_file(path)


def test_a_bidl_npz_declaring_more_than_it_holds_is_refused(tmp_path):
    path = tmp_path / "data.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("dats.npy", npy_header((10**6, 10**5), "|u1") + bytes(16))
        archive.writestr("lbls.npy", npy_header((10**6,), "<i8"))
        archive.writestr("shape.npy", npy_header((3,), "<i8") + bytes(24))
    with pytest.raises(BidlError, match=r"dats declares \[1000000, 100000\] uint8"):
        read_bidl_npz(path)


def test_honest_files_pass_the_size_checks(tmp_path):
    path = tmp_path / "events.npz"
    x = np.arange(1000) % 34
    np.savez_compressed(path, x=x, y=x, t=np.arange(1000), p=x % 2)
    check_npz_limits(path)
    assert len(read_event_file(path, (34, 34))) == 1000
    np.save(tmp_path / "a.npy", np.zeros((3, 4)))
    check_npz_limits(tmp_path / "a.npy")


# --- headers and packets -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "start"), [("a.aedat", b"#!AER-DAT3.1\r\n#"), ("a.dat", b"% "), ("a.raw", b"% ")]
)
def test_a_header_line_without_an_end_is_read_only_up_to_the_limit(tmp_path, name, start):
    path = tmp_path / name
    with open(path, "wb") as handle:
        handle.write(start)
        handle.write(b"x" * (4 * 2**20))  # 4 MiB without a newline (300 MB in the report)
    start_time = time.perf_counter()
    with pytest.raises(BidlError, match=rf"longer than {MAX_HEADER_LINE} bytes"):
        read_event_file(path)
    assert time.perf_counter() - start_time < 1.0


def test_a_header_that_never_ends_is_capped(tmp_path):
    path = tmp_path / "a.aedat"
    with open(path, "wb") as handle:
        handle.write(b"#!AER-DAT3.1\r\n" + (b"#" + b"x" * 60_000 + b"\n") * 300)  # 18 MB
    with pytest.raises(BidlError, match="the header runs past 16 MiB"):
        read_event_file(path)


def test_a_million_empty_aedat31_packets_are_read_fast(tmp_path):
    headers = np.zeros(1_000_000, dtype=_PACKET_HEADER)
    headers["type"], headers["size"] = 1, 8
    event = np.zeros(1, dtype=_PACKET_HEADER)
    event["type"], event["size"], event["capacity"], event["number"] = 1, 8, 1, 1
    record = np.array([(5 << 17) | (7 << 2) | 1], "<u4").tobytes() + np.int32(42).tobytes()
    path = tmp_path / "empty.aedat"
    with open(path, "wb") as handle:
        handle.write(b"#!AER-DAT3.1\r\n#!END-HEADER\r\n")
        handle.write(headers.tobytes() + event.tobytes() + record + headers[:5].tobytes())
    start = time.perf_counter()
    events = read_event_file(path, (128, 128))
    assert time.perf_counter() - start < 3.0  # 20 s (190 s on a busy machine) before
    assert (int(events["x"][0]), int(events["y"][0]), int(events["t"][0])) == (5, 7, 42)
    assert len(events) == 1


def test_an_empty_packet_with_events_is_still_an_error(tmp_path):
    headers = np.zeros(100, dtype=_PACKET_HEADER)
    headers["type"], headers["size"] = 1, 8
    headers["number"][60] = 3  # 3 events in a packet of capacity 0
    path = tmp_path / "bad.aedat"
    path.write_bytes(b"#!AER-DAT3.1\r\n#!END-HEADER\r\n" + headers.tobytes())
    with pytest.raises(BidlError, match=r"packet at byte \d+ is truncated or malformed"):
        read_event_file(path)
