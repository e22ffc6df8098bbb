from torchvision._standin import _unavailable

resize = _unavailable("transforms.functional.resize")
