from torchvision._standin import _unavailable

box_iou = _unavailable("ops.box_iou")
