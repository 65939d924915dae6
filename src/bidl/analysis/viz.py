"""Animate an event stream: ON and OFF events in two colours, frame by frame, beside the
network's running prediction (the class probabilities after the steps seen so far).

The animation is a GIF (Pillow) or an MP4 (only when ``imageio-ffmpeg`` is installed);
a JSON file beside it holds what each frame shows.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .. import fileio
from ..datasets.digits_dvs import DURATION_US, DigitsDVS, load_digits_dvs_events
from ..datasets.events.frames import events_to_frames
from ..registry import BidlError
from .io import new_figure, write_bytes, write_json
from .loading import load_split, load_trained, output_folder
from .viz_boxes import draw_boxes, predicted_boxes, true_boxes

#: RGB of ON and OFF events (added on a black background)
ON_COLOUR = (1.0, 0.4, 0.1)
OFF_COLOUR = (0.15, 0.55, 1.0)
#: inches, with and without the prediction panel; a frame is this times --dpi pixels
FRAME_SIZE = (8.0, 4.0)
FRAME_SIZE_EVENTS_ONLY = (4.0, 4.0)
FORMATS = (".gif", ".mp4")


def event_image(frame: np.ndarray, scale: float) -> np.ndarray:
    """``[2, H, W]`` counts (channel 0 OFF, 1 ON) -> ``[H, W, 3]`` RGB in [0, 1]."""
    off = np.clip(frame[0] / scale, 0.0, 1.0)[..., None]
    on = np.clip(frame[1] / scale, 0.0, 1.0)[..., None]
    return np.clip(on * np.array(ON_COLOUR) + off * np.array(OFF_COLOUR), 0.0, 1.0)


def colour_scale(frames: np.ndarray) -> float:
    """Counts at or above this show at full colour: the 99th percentile of non-zero counts."""
    nonzero = frames[frames > 0]
    return float(np.percentile(nonzero, 99)) if nonzero.size else 1.0


@torch.no_grad()
def running_predictions(model: torch.nn.Module, img: torch.Tensor) -> np.ndarray:
    """Class probabilities after each step ``t``: the model run on steps ``0..t`` of
    ``img`` ``[T, ...]`` (it resets its state on every call, so this is the prediction it
    would give if the stream stopped at ``t``); ``[T, classes]``."""
    model.eval()
    batch = img.unsqueeze(0)
    rows = [model(batch[:, : t + 1], return_loss=False)[0] for t in range(batch.shape[1])]
    return torch.stack(rows).float().cpu().numpy()


def render_frames(
    frames: np.ndarray,
    steps: list[int],
    predictions: np.ndarray | None = None,
    classes: list[str] | None = None,
    label: int | None = None,
    titles: list[str] | None = None,
    dpi: int = 100,
    boxes: tuple[list, list | None] | None = None,
):
    """One RGB image (PIL) per display frame: the events, and the prediction at its step
    (a class bar chart; for a detector, ``boxes``: true and predicted, on every frame)."""
    from PIL import Image

    scale = colour_scale(frames)
    images = []
    bar = tqdm(frames, desc="viz", unit="frame", disable=None, leave=False)
    for index, frame in enumerate(bar):
        fig = new_figure(*(FRAME_SIZE if predictions is not None else FRAME_SIZE_EVENTS_ONLY))
        fig.set_dpi(dpi)
        if predictions is not None:
            event_ax, pred_ax = fig.subplots(1, 2)
        else:
            event_ax, pred_ax = fig.subplots(), None
        event_ax.imshow(event_image(frame, scale), interpolation="nearest")
        event_ax.set_xticks([])
        event_ax.set_yticks([])
        event_ax.set_title(titles[index] if titles else f"frame {index + 1}/{len(frames)}")
        event_ax.set_xlabel("orange: ON   blue: OFF", fontsize="small")
        if boxes is not None:
            draw_boxes(event_ax, boxes[0], boxes[1], classes)
            event_ax.set_xlabel(
                "orange: ON   blue: OFF   green: true   red dashed: predicted", fontsize="x-small"
            )
        if pred_ax is not None:
            probs = predictions[steps[index]]
            names = classes or [str(i) for i in range(len(probs))]
            best = int(np.argmax(probs))
            colours = ["C2" if i == best else "C7" for i in range(len(probs))]
            pred_ax.bar(np.arange(len(probs)), probs, color=colours)
            pred_ax.set_xticks(np.arange(len(probs)), names, fontsize="small")
            pred_ax.set_ylim(0, 1)
            truth = f", true {names[label]}" if label is not None else ""
            pred_ax.set_title(
                f"after step {steps[index] + 1}/{len(predictions)}: {names[best]}{truth}"
            )
            pred_ax.set_ylabel("probability")
        fig.tight_layout()
        fig.canvas.draw()
        rgba = np.asarray(fig.canvas.buffer_rgba())
        images.append(Image.fromarray(rgba[..., :3].copy()))
    return images


def mp4_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("imageio_ffmpeg") is not None


def save_animation(images: list, path: str | os.PathLike, fps: float = 4.0) -> Path:
    """Write ``images`` (PIL, all one size) as a looping GIF or an MP4, by ``path``'s suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise BidlError(f"--out {str(path)!r}: the animation must be a .gif or an .mp4 file")
    if fps <= 0:
        raise BidlError(f"--fps must be > 0, got {fps}")
    if suffix == ".gif":
        buffer = io.BytesIO()
        images[0].save(
            buffer,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=max(20, round(1000 / fps)),
            loop=0,
        )
        return write_bytes(path, buffer.getvalue())
    if not mp4_available():
        raise BidlError(
            "writing an MP4 needs imageio-ffmpeg, which is not installed: "
            "pip install imageio-ffmpeg, or write a GIF (--out NAME.gif)"
        )
    import imageio_ffmpeg

    with fileio.staged_file(path) as tmp:  # named .tmp: the format is given explicitly
        width, height = images[0].size
        writer = imageio_ffmpeg.write_frames(
            str(tmp),
            (width, height),
            fps=fps,
            macro_block_size=2,
            quality=8,
            output_params=["-f", "mp4"],
        )
        writer.send(None)
        for image in images:
            writer.send(np.ascontiguousarray(np.asarray(image)).tobytes())
        writer.close()
    return path


def dataset_events(dataset, index: int) -> dict | None:
    """The raw events of sample ``index`` when the dataset keeps them (DigitsDVS does:
    its cache holds every recording's x, y, t, p), else None."""

    if not isinstance(dataset, DigitsDVS):
        return None
    arrays, meta = load_digits_dvs_events(dataset.data_prefix)
    sample = int(dataset.data_infos[index]["sample_idx"])
    lo, hi = int(arrays["offsets"][sample]), int(arrays["offsets"][sample + 1])
    return {
        **{k: arrays[k][lo:hi] for k in ("x", "y", "t", "p")},
        "sensor_size": tuple(dataset.sensor_size),
        "t_start": 0,
        "t_end": int(meta.get("duration_us", DURATION_US)),
    }


def integrate(events: dict, n_frames: int) -> np.ndarray:
    """``[n_frames, 2, H, W]`` event counts over ``[t_start, t_end]`` in equal windows."""

    return events_to_frames(
        events["x"],
        events["y"],
        events["t"],
        events["p"],
        events["sensor_size"],
        n_frames,
        t_start=events.get("t_start"),
        t_end=events.get("t_end"),
    )


def load_event_file(path: str | os.PathLike, sensor_size=None) -> dict:
    """Events from an ``.npz`` with arrays ``x``, ``y``, ``t``, ``p`` (and optionally
    ``sensor_size`` = (H, W); else ``sensor_size`` or the largest coordinates + 1)."""
    path = Path(path)
    if not path.is_file():
        raise BidlError(f"--events {str(path)!r}: no such file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as err:
        raise BidlError(f"--events {str(path)!r}: not a readable .npz file ({err})") from None
    missing = [k for k in "xytp" if k not in arrays]
    if missing:
        raise BidlError(
            f"--events {str(path)!r} lacks arrays {missing}; it needs x, y, t, p "
            f"(found {sorted(arrays)})"
        )
    if sensor_size is None and "sensor_size" in arrays:
        sensor_size = tuple(int(s) for s in arrays["sensor_size"])
    if sensor_size is None:
        sensor_size = (int(arrays["y"].max()) + 1, int(arrays["x"].max()) + 1)
    return {k: arrays[k] for k in "xytp"} | {"sensor_size": tuple(sensor_size)}


def frame_steps(n_frames: int, timesteps: int) -> list[int]:
    """The model step whose time window holds the middle of each of ``n_frames`` equal
    display frames over the same span."""
    return [min(timesteps - 1, int((k + 0.5) * timesteps / n_frames)) for k in range(n_frames)]


def write_viz(
    frames: np.ndarray,
    out: Path,
    steps: list[int] | None = None,
    predictions: np.ndarray | None = None,
    classes: list[str] | None = None,
    label: int | None = None,
    fps: float = 4.0,
    dpi: int = 100,
    source: dict | None = None,
    boxes: tuple[list, list | None] | None = None,
) -> dict:
    """Render, save the animation to ``out`` and its data to ``out`` with ``.json``."""
    steps = steps or list(range(len(frames)))
    if out.suffix.lower() not in FORMATS:
        raise BidlError(f"--out {str(out)!r}: the animation must be a .gif or an .mp4 file")
    if out.suffix.lower() == ".mp4" and not mp4_available():
        save_animation([], out)  # raises the explanation before any rendering
    titles = None
    if boxes is not None:  # a detector's boxes describe the end of the window
        shown = f"{len(boxes[0])} true" + (f", {len(boxes[1])} predicted" if boxes[1] else "")
        titles = [f"frame {i + 1}/{len(frames)}: {shown}" for i in range(len(frames))]
    images = render_frames(frames, steps, predictions, classes, label, titles, dpi, boxes)
    save_animation(images, out, fps)
    data = {
        "animation": out.name,
        "frames": len(frames),
        "size": list(images[0].size),
        "fps": fps,
        "colours": {"on": ON_COLOUR, "off": OFF_COLOUR},
        "on_events": frames[:, 1].reshape(len(frames), -1).sum(1).tolist(),
        "off_events": frames[:, 0].reshape(len(frames), -1).sum(1).tolist(),
        "step_of_frame": steps,
        **(source or {}),
    }
    if boxes is not None:
        data.update(classes=classes, true_boxes=boxes[0], box_time="end of the window")
        if boxes[1] is not None:
            data["predicted_boxes"] = boxes[1]
    if predictions is not None:
        data.update(
            classes=classes,
            label=label,
            probabilities=predictions.tolist(),
            predicted=[int(i) for i in predictions.argmax(1)],
        )
    write_json(out.with_suffix(".json"), data)
    return data


def viz_sample(
    config: str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    split: str = "test",
    sample_index: int = 0,
    n_frames: int | None = None,
    out: str | os.PathLike | None = None,
    fps: float = 4.0,
    dpi: int = 100,
    cfg_options: dict | None = None,
    device: str | None = None,
    work_dir: str | None = None,
) -> tuple[dict, Path]:
    """Animate one sample of a config's dataset, with the checkpoint's running prediction."""

    cfg, dataset = load_split(config, split, sample_index, cfg_options)
    sample = dataset[sample_index]
    img = sample["img"]
    if img.dim() != 4 or img.shape[1] != 2:
        raise BidlError(
            f"bidl viz shows event frames [T, 2, H, W] (OFF, ON); this dataset gives "
            f"{list(img.shape)}"
        )
    if "gt_bboxes" in sample:
        return _viz_detection(cfg, dataset, sample, config, checkpoint, split, sample_index,
                              out, fps, dpi, device, work_dir)  # fmt: skip
    label = int(sample["gt_label"])
    timesteps = img.shape[0]
    if n_frames is None:
        frames, steps = img.numpy(), list(range(timesteps))
        source = {"source": "model frames", "config": str(config), "sample": sample_index}
    else:
        events = dataset_events(dataset, sample_index)
        if events is None:
            raise BidlError(
                f"--frames: {type(dataset).__name__} keeps no raw events to re-integrate; "
                f"leave --frames out to animate the {timesteps} frames the network sees"
            )
        if n_frames < 1:
            raise BidlError(f"--frames must be >= 1, got {n_frames}")
        frames, steps = integrate(events, n_frames), frame_steps(n_frames, timesteps)
        source = {
            "source": "event stream",
            "config": str(config),
            "sample": sample_index,
            "events": int(len(events["t"])),
        }
    predictions = None
    classes = list(getattr(dataset, "CLASSES", None) or []) or None
    if checkpoint is not None:
        model, _, dev = load_trained(cfg, checkpoint, device, work_dir)
        predictions = running_predictions(model, img.to(dev))
    out = output_folder(cfg, out, work_dir, "viz", f"{split}-{sample_index}.gif")
    data = write_viz(
        np.asarray(frames, dtype=np.float64),
        out,
        steps,
        predictions,
        classes,
        label if predictions is not None else None,
        fps,
        dpi,
        {**source, "label": label},
    )
    return data, out


def _viz_detection(cfg, dataset, sample, config, checkpoint, split, sample_index, out, fps,
                   dpi, device, work_dir) -> tuple[dict, Path]:  # fmt: skip
    """A detection sample: its frames with the true boxes and the checkpoint's boxes."""
    img = sample["img"]
    predicted = None
    if checkpoint is not None:
        model, _, dev = load_trained(cfg, checkpoint, device, work_dir)
        predicted = predicted_boxes(model, img.float().to(dev))
    out = output_folder(cfg, out, work_dir, "viz", f"{split}-{sample_index}.gif")
    classes = list(getattr(dataset, "CLASSES", None) or []) or None
    source = {"source": "model frames", "config": str(config), "sample": sample_index}
    data = write_viz(
        np.asarray(img, dtype=np.float64), out, classes=classes, fps=fps, dpi=dpi,
        source=source, boxes=(true_boxes(sample), predicted),
    )  # fmt: skip
    return data, out


def viz_event_file(
    path: str | os.PathLike,
    n_frames: int = 20,
    out: str | os.PathLike | None = None,
    sensor_size=None,
    fps: float = 10.0,
    dpi: int = 100,
) -> tuple[dict, Path]:
    """Animate an event file (``.npz`` with x, y, t, p) in ``n_frames`` equal windows."""
    if n_frames < 1:
        raise BidlError(f"--frames must be >= 1, got {n_frames}")
    events = load_event_file(path, sensor_size)
    frames = integrate(events, n_frames).astype(np.float64)
    out = Path(out) if out else Path(path).with_suffix(".gif")
    source = {"source": "event file", "file": str(path), "events": int(len(events["t"]))}
    return write_viz(frames, out, fps=fps, dpi=dpi, source=source), out
