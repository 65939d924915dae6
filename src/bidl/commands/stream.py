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
    with Runtime(args.artifact, device=args.device) as runtime:
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


def _line(result, frame_us, timesteps, classes, start_us) -> str:
    flat = result.scores.reshape(-1)
    best = int(flat.argmax())
    t_end = (result.t_end_us - start_us) / 1e6
    if result.window_done:
        begin = t_end - timesteps * frame_us / 1e6
        where = f"window {result.window} [{begin:.3f}, {t_end:.3f}) s"
    else:
        where = f"step {result.step} t={t_end:.3f} s"
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
