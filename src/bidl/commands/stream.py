"""``bidl stream``: replay an event recording through a compiled artifact, one time step at
a time, printing the prediction of every window and the per-step latency."""

from __future__ import annotations

import sys

from .common import add_config_args

HELP = (
    "replay an event recording through a compiled artifact step by step: predictions "
    "over time, per-step latency"
)
EXAMPLE = (
    "bidl stream clif3fc3dm_itout-b16x1-digitsdvs --artifact model_files/dvs/digits "
    "--source recording.raw --frame-us 10000"
)
DEFAULT_FRAME_US = 10_000.0


def add_arguments(parser) -> None:
    add_config_args(parser)  # --device: default the artifact's (cpu for ONNX)
    parser.add_argument("--artifact", required=True, help="compiled artifact folder")
    parser.add_argument(
        "--source", required=True, help="event recording (.raw, .dat, .aedat4, .h5, ...)"
    )
    parser.add_argument(
        "--frame-us",
        type=float,
        default=None,
        help="time step in microseconds (default: the test set's window_us, else 10000)",
    )
    parser.add_argument(
        "--window-us",
        type=float,
        default=None,
        help="events counted per frame, >= --frame-us (default: equal: adjacent frames)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="replay pace: 1 = the recorded pace (real time), 2 = twice as fast, 0 = as fast "
        "as possible",
    )
    parser.add_argument(
        "--sensor",
        type=int,
        nargs=2,
        default=None,
        metavar=("H", "W"),
        help="sensor size (default: the file's header, else the test set's)",
    )
    parser.add_argument(
        "--every-step", action="store_true", help="print every step, not only window ends"
    )
    parser.add_argument(
        "--head-every",
        type=int,
        default=1,
        metavar="N",
        help="a detector: run its head graph (boxes) after every N-th step of a window and "
        "after its last step (default 1: every step)",
    )
    parser.add_argument(
        "--compile",
        default="auto",
        choices=["auto", "on", "off"],
        help="a 'torch' artifact on CUDA: compile its step with torch.compile (fused kernels: "
        "the lowest per-step latency, after tens of seconds of compiling at the start; "
        "auto: on for CUDA)",
    )
    parser.add_argument("--out", default=None, help="write the predictions and figures to JSON")


def run(args) -> None:
    from ..config import load_config
    from ..datasets.events.formats import sensor_size_of
    from ..deploy import Runtime
    from ..deploy.artifact import config_hash
    from ..deploy.streaming import (
        RecordingSource,
        SlidingWindowIntegrator,
        latency_summary,
        stream,
    )
    from ..fileio import write_json
    from ..registry import DATASETS, BidlError

    cfg = load_config(args.config, args.cfg_options)
    test = dict(cfg.data.get("test") or {})
    dataset = DATASETS.get(test["type"]) if isinstance(test.get("type"), str) else None
    classes = list(getattr(dataset, "CLASSES", None) or [])
    # auto: on CUDA, for streaming is latency-bound and long-running
    compile_step = {"on": True, "off": False}.get(args.compile, "auto")
    with Runtime(args.artifact, device=args.device, compile=compile_step) as runtime:
        compiled_from = runtime.manifest["hashes"].get("config")
        if compiled_from and compiled_from != config_hash(cfg.model.to_dict()):
            print(
                f"warning: {args.artifact} was compiled from another model config than "
                f"{args.config}'s; its predictions belong to that model",
                file=sys.stderr,
            )
        if len(runtime.step_shape) != 3:
            raise BidlError(
                f"bidl stream feeds event frames [C, H, W]; this artifact takes one step of "
                f"shape {list(runtime.step_shape)}"
            )
        channels, height, width = runtime.step_shape
        if channels not in (1, 2):
            raise BidlError(
                f"bidl stream makes frames of 1 (all events) or 2 (OFF, ON) channels; this "
                f"artifact takes {channels}"
            )
        frame_us = float(args.frame_us or test.get("window_us") or DEFAULT_FRAME_US)
        sensor = (
            tuple(args.sensor)
            if args.sensor
            else sensor_size_of(args.source) or getattr(dataset, "SENSOR_SIZE", None)
        )
        if sensor is None:
            raise BidlError(
                f"{args.source}: neither the file nor the test set states the sensor size; "
                f"pass --sensor H W"
            )
        source = RecordingSource(
            args.source, speed=args.speed or None, block_us=frame_us, sensor_size=sensor
        )
        integrator = SlidingWindowIntegrator(
            source.sensor_size,
            frame_us,
            args.window_us,
            polarity=channels == 2,
            size=(height, width),
            binary=bool(test.get("binary", False)),
        )
        pace = "as fast as possible" if not args.speed else f"at {args.speed:g}x the recorded pace"
        print(
            f"source: {args.source} ({source.sensor_size[0]}x{source.sensor_size[1]} sensor), "
            f"frames of {frame_us / 1000:g} ms (window {integrator.window_us / 1000:g} ms) -> "
            f"{list(runtime.step_shape)}, {runtime.timesteps} steps per window, replayed {pace}"
        )
        head = _detector_head(runtime, cfg, args)
        if head is not None:
            figures = _stream_detections(args, runtime, head, source, integrator, frame_us, classes)
            if args.out:
                write_json(args.out, figures)
            return
        windows, latencies, start_us, last_us = [], [], None, None
        for result in stream(runtime, source, integrator):
            latencies.append(result.latency_s)
            start_us = result.t_end_us - frame_us if start_us is None else start_us
            last_us = result.t_end_us
            if result.window_done or args.every_step:
                line = _line(result, frame_us, runtime.timesteps, classes, start_us)
                print(line)
            if result.window_done:
                windows.append(_window(result, classes, latencies[-runtime.timesteps :]))
        summary = latency_summary(latencies)
        span_s = 0.0 if start_us is None else (last_us - start_us) / 1e6
        print(
            f"steps: {len(latencies)}, windows: {len(windows)}; per-step latency p50 "
            f"{summary['p50']:.3f} ms, p99 {summary['p99']:.3f} ms, max {summary['max']:.3f} ms "
            f"(a step every {frame_us / 1000:g} ms keeps up in real time while p99 < "
            f"{frame_us / 1000:g} ms); stream span {span_s:.3f} s"
        )
    if args.out:
        figures = {"windows": windows, "latency_ms": summary, "steps": len(latencies)}
        write_json(args.out, figures)


def _label(index: int, classes: list) -> str:
    return f"{index} ({classes[index]})" if index < len(classes) else str(index)


def _where(result, frame_us, timesteps, start_us) -> str:
    """'window 3 [0.030, 0.040) s' at a window's end, else 'step 31 t=0.032 s'."""
    t_end = (result.t_end_us - start_us) / 1e6
    if result.window_done:
        begin = t_end - timesteps * frame_us / 1e6
        return f"window {result.window} [{begin:.3f}, {t_end:.3f}) s"
    return f"step {result.step} t={t_end:.3f} s"


def _line(result, frame_us, timesteps, classes, start_us) -> str:
    flat = result.scores.reshape(-1)
    best = int(flat.argmax())
    where = _where(result, frame_us, timesteps, start_us)
    return (
        f"{where}: prediction {_label(best, classes)} score {flat[best]:.4f}, "
        f"step latency {result.latency_s * 1000:.3f} ms"
    )


def _window(result, classes, latencies) -> dict:
    flat = result.scores.reshape(-1)
    best = int(flat.argmax())
    return {
        "window": result.window,
        "t_end_us": result.t_end_us,
        "prediction": best,
        "label": classes[best] if best < len(classes) else None,
        "scores": [float(v) for v in flat],
        "step_latency_ms_max": float(max(latencies) * 1000.0),
    }


def _detector_head(runtime, cfg, args):
    """The artifact's head graph for a detector, None for a classifier."""
    from ..deploy.head_graph import open_head
    from ..registry import BidlError

    head = open_head(runtime.folder, runtime.manifest, runtime.device)
    if head is None and cfg.model.get("type") in ("Detector", "YoloV5Detector"):
        raise BidlError(
            f"{args.artifact} holds only the spiking part of the detector {args.config} (it "
            f"was compiled before bidl compiled a detector's neck and head); bidl stream runs "
            f"the head graph after the steps: recompile it with `bidl compile {args.config} "
            f"--checkpoint CKPT`"
        )
    return head


def _stream_detections(args, runtime, head, source, integrator, frame_us, classes) -> dict:
    """A detector's stream: boxes of the latest step where the head ran (every window end,
    and every step with --every-step), the latencies of the step alone and with the head."""
    from ..deploy.streaming import detect_stream, latency_summary

    print(
        f"head graph: {head.entry['graph']}, run after every {args.head_every} step(s) of a "
        f"window and after its last"
    )
    timesteps = runtime.timesteps
    windows, steps, with_head, start_us, last_us = [], [], [], None, None
    for item in detect_stream(runtime, head, source, integrator, args.head_every):
        result = item.result
        steps.append(result.latency_s)
        if item.head_latency_s is not None:
            with_head.append(result.latency_s + item.head_latency_s)
        start_us = result.t_end_us - frame_us if start_us is None else start_us
        last_us = result.t_end_us
        if result.window_done or args.every_step:
            print(_detection_line(item, frame_us, timesteps, classes, start_us))
        if result.window_done:
            windows.append(_detection_window(item, classes))
    step_ms, head_ms = latency_summary(steps), latency_summary(with_head)
    span_s = 0.0 if start_us is None else (last_us - start_us) / 1e6
    print(
        f"steps: {len(steps)}, windows: {len(windows)}; per-step latency p50 "
        f"{step_ms['p50']:.3f} ms, p99 {step_ms['p99']:.3f} ms, max {step_ms['max']:.3f} ms; "
        f"step + head p50 {head_ms['p50']:.3f} ms, p99 {head_ms['p99']:.3f} ms, max "
        f"{head_ms['max']:.3f} ms ({len(with_head)} steps ran the head; a step every "
        f"{frame_us / 1000:g} ms keeps up in real time while p99 < {frame_us / 1000:g} ms); "
        f"stream span {span_s:.3f} s"
    )
    return {
        "windows": windows,
        "latency_ms": step_ms,
        "step_head_latency_ms": head_ms,
        "head_every": args.head_every,
        "steps": len(steps),
    }


SHOWN_BOXES = 3  # boxes printed per line (the JSON has all)


def _detection_line(item, frame_us, timesteps, classes, start_us) -> str:
    result = item.result
    where = _where(result, frame_us, timesteps, start_us)
    latency = f"step latency {result.latency_s * 1000:.3f} ms"
    if item.detections is None:
        return f"{where}: head not run, {latency}"
    found = item.detections
    boxes = [
        f"{_label(int(label), classes)} {float(score):.3f} "
        f"[{', '.join(f'{v:.1f}' for v in box.tolist())}]"
        for box, score, label in zip(
            found["bboxes"][:SHOWN_BOXES],
            found["scores"][:SHOWN_BOXES],
            found["labels"][:SHOWN_BOXES],
            strict=True,
        )
    ]
    more = len(found["scores"]) - len(boxes)
    shown = "; ".join(boxes) + (f"; ... {more} more" if more > 0 else "")
    return (
        f"{where}: {len(found['scores'])} boxes{': ' + shown if boxes else ''}; {latency}, "
        f"head {item.head_latency_s * 1000:.3f} ms"
    )


def _detection_window(item, classes) -> dict:
    found = item.detections
    labels = [int(v) for v in found["labels"]]
    return {
        "window": item.result.window,
        "t_end_us": item.result.t_end_us,
        "bboxes": [[float(v) for v in box] for box in found["bboxes"].tolist()],
        "scores": [float(v) for v in found["scores"]],
        "labels": labels,
        "classes": [classes[i] if i < len(classes) else None for i in labels],
        "step_latency_ms": float(item.result.latency_s * 1000.0),
        "head_latency_ms": float(item.head_latency_s * 1000.0),
    }
