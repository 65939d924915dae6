"""Frame-sequence, volume and text datasets read tiny files in their distributed layouts."""

from __future__ import annotations

import numpy as np
import pytest
from format_writers import write_jpeg_frames

from bidl.datasets import build_dataset
from bidl.datasets.babi import parse_babi
from bidl.datasets.text import encode, tokenize
from bidl.registry import BidlError

COLOURS = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200]], dtype=np.uint8)


def make_jester(root, clips=4, frames=6):
    (root / "jester-v1-labels.csv").write_text("Swiping Left\nSwiping Right\nStop Sign\n")
    rows = []
    for clip in range(clips):
        video = np.zeros((frames, 16, 24, 3), dtype=np.uint8)
        video[:] = COLOURS[np.arange(frames) % 3][:, None, None]
        write_jpeg_frames(root / "20bn-jester-v1" / str(100 + clip), video)
        rows.append(f"{100 + clip};{['Swiping Left', 'Swiping Right', 'Stop Sign'][clip % 3]}")
    (root / "jester-v1-train.csv").write_text("\n".join(rows) + "\n")
    (root / "jester-v1-validation.csv").write_text("\n".join(rows[:2]) + "\n")


def test_jester_clip_decodes_frames_in_order(tmp_path):
    make_jester(tmp_path)
    pipeline = [dict(type="LoadFramesInFolder", n_frame=3, down_t=1)]
    dataset = build_dataset(dict(type="Jester20bn", data_prefix=str(tmp_path), pipeline=pipeline))
    sample = dataset[1]
    assert sample["gt_label"] == 1 and sample["img"].shape == (3, 3, 16, 24)
    means = sample["img"].reshape(3, 3, -1).mean(axis=2)
    expected = COLOURS[np.array([1, 2, 0])].astype(float)  # frames 2, 3, 4 of 6 (centred)
    np.testing.assert_allclose(means, expected, atol=4)


def test_jester_unknown_class_in_csv_names_file_and_line(tmp_path):
    make_jester(tmp_path)
    (tmp_path / "jester-v1-train.csv").write_text("100;Swiping Left\n101;Waving\n")
    with pytest.raises(BidlError, match=r"jester-v1-train\.csv, line 2: unknown class 'Waving'"):
        build_dataset(dict(type="Jester20bn", data_prefix=str(tmp_path)))


def test_rgb_gesture_turns_brightening_into_on_events(tmp_path):
    for split in ("train", "val"):
        clip = np.zeros((5, 8, 8, 3), dtype=np.uint8)
        clip[2:, :, :4] = 255  # the left half brightens between frames 1 and 2
        write_jpeg_frames(tmp_path / split / "wave" / "clip0", clip)
    dataset = build_dataset(
        dict(type="RgbGesture", data_prefix=str(tmp_path), timesteps=4, shape=(8, 8))
    )
    img = dataset[0]["img"]
    assert img.shape == (4, 2, 8, 8)
    assert img[1, 1, :, :3].all() and img[1, 1, :, 5:].sum() == 0
    assert img[:, 0].sum() == 0 and img[[0, 2, 3]].sum() == 0


def test_luna16cls32_centre_crops_slices_and_windows_hu(tmp_path):
    for label in ("0", "1"):
        (tmp_path / "train" / label).mkdir(parents=True)
        volume = np.full((10, 40, 40), -1000.0, dtype=np.float32)
        volume[:, 20, 20] = 400.0
        np.save(tmp_path / "train" / label / "p.npy", volume)
    img = build_dataset(dict(type="Luna16Cls32", data_prefix=str(tmp_path)))[1]["img"]
    assert img.shape == (8, 1, 32, 32) and img.dtype == np.float32
    assert img[:, 0, 16, 16].tolist() == [1.0] * 8 and img.sum() == 8


def test_imdb_reviews_become_pre_padded_token_ids(tmp_path):
    texts = {"pos": ["a great great film", "great fun"], "neg": ["a dull film<br />dull", "dull"]}
    for split in ("train", "test"):
        for label, reviews in texts.items():
            (tmp_path / "aclImdb" / split / label).mkdir(parents=True)
            for i, review in enumerate(reviews):
                (tmp_path / "aclImdb" / split / label / f"{i}_7.txt").write_text(review)
    dataset = build_dataset(dict(type="imdb", data_prefix=str(tmp_path), timesteps=6, vocab_size=5))
    vocab = dataset.vocab
    assert vocab[:5] == ["<pad>", "<unk>", "dull", "great", "a"]  # ties: first seen (neg first)
    first_neg = dataset[0]  # neg comes first (label 0)
    assert first_neg["gt_label"] == 0
    assert first_neg["img"].tolist() == [0, 0, 4, 2, 1, 2]  # a dull film dull


def test_encode_truncates_keeping_the_last_tokens():
    index = {"x": 2, "y": 3}
    assert encode(["x", "y", "x", "z"], index, 3).tolist() == [3, 2, 1]
    assert encode(["x"], index, 3, padding="post").tolist() == [2, 0, 0]


def test_babi_questions_see_the_story_so_far(tmp_path):
    folder = tmp_path / "tasks_1-20_v1-2" / "en"
    folder.mkdir(parents=True)
    story = "1 Mary moved to the bathroom.\n2 John went to the hallway.\n3 Where is Mary? \tbathroom\t1\n"
    story += "1 Sandra went to the garden.\n2 Where is Sandra? \tgarden\t1\n"
    for split in ("train", "test"):
        (folder / f"qa1_single-supporting-fact_{split}.txt").write_text(story)
    samples = parse_babi(folder / "qa1_single-supporting-fact_train.txt")
    assert samples[1] == (
        tokenize("Sandra went to the garden."),
        tokenize("Where is Sandra?"),
        "garden",
    )
    dataset = build_dataset(
        dict(type="BabiQa", data_prefix=str(tmp_path), timesteps=20, test_mode=True)
    )
    assert dataset.CLASSES == ["bathroom", "garden"]
    assert dataset.get_gt_labels().tolist() == [0, 1]
    assert (dataset[0]["img"] > 1).sum() == len(samples[0][0]) + len(samples[0][1])


def test_load_frames_in_folder_resizes_while_decoding(tmp_path):
    make_jester(tmp_path)
    pipeline = [dict(type="LoadFramesInFolder", num_frames=4, size=8, test_mode=True)]
    dataset = build_dataset(dict(type="Jester20bn", data_prefix=str(tmp_path), pipeline=pipeline))
    assert dataset[0]["img"].shape == (4, 3, 8, 8)
