"""Boxes over the event frames of ``bidl viz`` for detectors: the sample's true boxes and,
with a checkpoint, the detector's predictions (after its score threshold and NMS). A
detection sample's boxes describe the end of its window, so every frame shows them."""

from __future__ import annotations

import torch

#: matplotlib colours of true and predicted boxes
TRUE_COLOUR = "lime"
PREDICTED_COLOUR = "red"


def true_boxes(sample: dict) -> list[dict]:
    """The sample's boxes without the padding rows (label -1)."""
    boxes = torch.as_tensor(sample["gt_bboxes"]).reshape(-1, 4)
    labels = torch.as_tensor(sample["gt_labels"]).reshape(-1)
    keep = labels >= 0
    return _rows(boxes[keep], labels[keep])


@torch.no_grad()
def predicted_boxes(model: torch.nn.Module, img: torch.Tensor) -> list[dict]:
    """The detector's boxes for one sample ``img`` ``[T, C, H, W]``."""
    model.eval()
    found = model(img.unsqueeze(0), return_loss=False)[0]
    return _rows(found["bboxes"], found["labels"], found["scores"])


def _rows(boxes: torch.Tensor, labels: torch.Tensor, scores=None) -> list[dict]:
    rows = []
    for i in range(len(labels)):
        row = {
            "box": [round(float(v), 3) for v in boxes[i].tolist()],
            "label": int(labels[i]),
        }
        if scores is not None:
            row["score"] = round(float(scores[i]), 4)
        rows.append(row)
    return rows


def draw_boxes(ax, truth: list[dict], predicted: list[dict] | None, classes) -> None:
    """Rectangles on ``ax`` (pixel coordinates of the frame image): true boxes solid,
    predicted ones dashed with their class and score."""
    from matplotlib.patches import Rectangle

    names = list(classes) if classes else None

    def name(label: int) -> str:
        return names[label] if names and 0 <= label < len(names) else str(label)

    for rows, colour, style in (
        (truth, TRUE_COLOUR, "-"),
        (predicted or [], PREDICTED_COLOUR, "--"),
    ):
        for row in rows:
            x1, y1, x2, y2 = row["box"]
            # a box spans pixels x1 .. x2 - 1; imshow puts pixel centres on integers
            ax.add_patch(
                Rectangle(
                    (x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, edgecolor=colour,
                    linestyle=style, linewidth=1.2,
                )
            )  # fmt: skip
            text = name(row["label"]) + (f" {row['score']:.2f}" if "score" in row else "")
            ax.text(x1 - 0.5, y1 - 1.0, text, color=colour, fontsize="x-small", va="bottom")


def box_summary(truth: list[dict], predicted: list[dict] | None) -> str:
    """``2 true boxes; 3 predicted (best score 0.91)`` for the frame titles and the console."""
    text = f"{len(truth)} true box{'es' if len(truth) != 1 else ''}"
    if predicted is not None:
        best = max((row["score"] for row in predicted), default=None)
        text += f"; {len(predicted)} predicted"
        text += f" (best score {best:.2f})" if best is not None else ""
    return text
