from torchvision._standin import _unavailable
from torchvision.transforms import functional

Compose = _unavailable("transforms.Compose")
Normalize = _unavailable("transforms.Normalize")
ToTensor = _unavailable("transforms.ToTensor")
