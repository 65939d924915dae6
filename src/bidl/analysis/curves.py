"""Training curves from a work dir's ``log.json``: loss, accuracy and learning rate against
iteration or epoch, for one run or several on the same axes."""

from __future__ import annotations

import json
from pathlib import Path

from ..registry import BidlError
from .io import new_figure, save_figure, write_json

#: inches; a PNG is this times --dpi pixels
CURVES_SIZE = (12.0, 4.0)
X_AXES = ("iter", "epoch")


def read_log(work_dir: str | Path) -> dict:
    """The train and val records of ``work_dir/log.json``, with a global iteration and a
    fractional epoch on every train record. Records logged twice for the same step (a
    resumed or repeated run into the same work dir) keep the last one."""
    path = Path(work_dir) / "log.json"
    if not path.is_file():
        raise BidlError(
            f"no log.json in {str(work_dir)!r}; give the work dir of a training run "
            f"(bidl train CONFIG --work-dir DIR writes DIR/log.json)"
        )
    records: dict[tuple, dict] = {}
    meta: dict = {}
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            if number == len(lines):  # a line being written right now
                continue
            raise BidlError(f"{path}:{number} is not a JSON record: {line[:80]!r}") from None
        mode = record.get("mode")
        if mode == "meta":
            meta = record
        elif mode in ("train", "val"):
            records[(mode, record.get("epoch"), record.get("iter"))] = record
    train = sorted(
        (r for (m, *_), r in records.items() if m == "train"), key=lambda r: (r["epoch"], r["iter"])
    )
    val = sorted((r for (m, *_), r in records.items() if m == "val"), key=lambda r: r["epoch"])
    if not train and not val:
        raise BidlError(f"{path} holds no train or val records yet; wait for the first log line")
    per_epoch: dict[int, int] = {}
    for record in train:
        per_epoch[record["epoch"]] = max(per_epoch.get(record["epoch"], 0), record["iter"])
    iters = int(meta.get("iters_per_epoch") or max(per_epoch.values(), default=1))
    for record in train:
        record["global_iter"] = (record["epoch"] - 1) * iters + record["iter"]
        record["epoch_float"] = record["epoch"] - 1 + record["iter"] / iters
    return {"name": Path(work_dir).name, "meta": meta, "train": train, "val": val}


def curve_data(runs: list[dict], x: str = "iter") -> dict:
    """The series the figure draws, by run: what ``curves.json`` holds."""
    if x not in X_AXES:
        raise BidlError(f"--x must be one of {', '.join(X_AXES)}, got {x!r}")
    data = {"x": x, "runs": []}
    for run in runs:
        train_x = [r["global_iter"] if x == "iter" else r["epoch_float"] for r in run["train"]]
        val_x = [r["iter"] if x == "iter" else r["epoch"] for r in run["val"]]
        entry = {"name": run["name"], "train": {"x": train_x}, "val": {"x": val_x}}
        for key in ("loss", "lr", "top-1", "top-5"):
            if any(key in r for r in run["train"]):
                entry["train"][key] = [r.get(key) for r in run["train"]]
        val_keys = sorted({k for r in run["val"] for k in r if k.startswith("accuracy_")})
        for key in val_keys:
            entry["val"][key] = [r.get(key) for r in run["val"]]
        data["runs"].append(entry)
    return data


def plot_curves(data: dict):
    """Three panels: training loss, accuracy (train top-1 dashed, val solid), learning rate."""
    fig = new_figure(*CURVES_SIZE)
    loss_ax, acc_ax, lr_ax = fig.subplots(1, 3)
    label_x = "iteration" if data["x"] == "iter" else "epoch"
    colours = [f"C{i}" for i in range(10)]
    several = len(data["runs"]) > 1
    for index, run in enumerate(data["runs"]):
        colour = colours[index % len(colours)]
        prefix = f"{run['name']} " if several else ""
        train, val = run["train"], run["val"]
        if "loss" in train:
            loss_ax.plot(train["x"], train["loss"], color=colour, label=prefix + "train loss")
        if "top-1" in train:
            acc_ax.plot(
                train["x"],
                train["top-1"],
                color=colour,
                linestyle="--",
                alpha=0.5,
                label=prefix + "train top-1",
            )
        for style, key in (("-", "accuracy_top-1"), (":", "accuracy_top-5")):
            if key in val:
                acc_ax.plot(
                    val["x"],
                    val[key],
                    color=colour,
                    linestyle=style,
                    marker="o",
                    label=prefix + "val " + key.removeprefix("accuracy_"),
                )
        if "lr" in train:
            lr_ax.plot(train["x"], train["lr"], color=colour, label=prefix + "lr")
    for ax, title in ((loss_ax, "loss"), (acc_ax, "accuracy (%)"), (lr_ax, "learning rate")):
        ax.set_title(title)
        ax.set_xlabel(label_x)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def plot_work_dirs(
    work_dirs: list[str | Path], out: str | Path, x: str = "iter", dpi: int = 100
) -> dict:
    """Write ``out/curves.png``, ``curves.svg`` and ``curves.json``; returns the data."""
    if not work_dirs:
        raise BidlError("bidl plot needs at least one work dir")
    runs = [read_log(w) for w in work_dirs]
    names = [r["name"] for r in runs]
    if len(set(names)) < len(names):  # same folder names: tell them apart by the full path
        for run, work_dir in zip(runs, work_dirs, strict=True):
            run["name"] = str(work_dir)
    data = curve_data(runs, x)
    out = Path(out)
    save_figure(plot_curves(data), out / "curves", dpi=dpi)
    write_json(out / "curves.json", data)
    return data
