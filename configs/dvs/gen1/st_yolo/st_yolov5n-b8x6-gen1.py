# BIDL's ST-YOLO with its YOLOv5n spiking backbone (YoloDetN) on Prophesee GEN1: everything
# else (input, neck, head, data, schedule) as st_yolov5s-b8x6-gen1, whose notes say what BIDL
# does and what this config leaves out.
_base_ = ["st_yolov5s-b8x6-gen1.py"]
model = dict(backbone=dict(type="YoloDetN"))
