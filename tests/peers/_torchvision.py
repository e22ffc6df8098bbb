"""Stand-ins for the torchvision models pytorch-grad-cam's tests download: the same structure and
attribute names (``layer4``, ``features``, ``conv1``), far fewer channels, seeded weights, 1000 classes."""
import torch
from torch import nn


class _BasicBlock(nn.Module):
    def __init__(self, channels_in, channels_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels_out)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels_out)
        self.downsample = None
        if stride != 1 or channels_in != channels_out:
            self.downsample = nn.Sequential(nn.Conv2d(channels_in, channels_out, 1, stride, bias=False),
                                            nn.BatchNorm2d(channels_out))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class _ResNet(nn.Module):
    def __init__(self, widths=(8, 12, 16, 24), num_classes=1000):
        super().__init__()
        # The stem keeps torchvision's 64 channels: tests replace conv1 with a 64-channel convolution.
        self.conv1 = nn.Conv2d(3, 64, 7, 4, 3, bias=False)   # stride 4 (torchvision: 2), for speed
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        layers, channels = [], 64
        for index, width in enumerate(widths):
            stride = 1 if index == 0 else 2
            layers.append(nn.Sequential(_BasicBlock(channels, width, stride), _BasicBlock(width, width, 1)))
            channels = width
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class _VGG(nn.Module):
    def __init__(self, plan=(8, "M", 12, "M", 16, 16, "M", 24, 24, "M", 24, 24, "M"), num_classes=1000):
        super().__init__()
        layers, channels = [], 3
        for item in plan:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, item, 3, padding=1), nn.ReLU(inplace=True)]
                channels = item
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(2)
        self.classifier = nn.Sequential(nn.Linear(channels * 4, 32), nn.ReLU(True), nn.Linear(32, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def _seeded(build):
    def model(weights=None, pretrained=None):
        torch.manual_seed(0)
        network = build()
        for module in network.modules():
            if isinstance(module, nn.BatchNorm2d):   # not the identity, so the BatchNorm biases matter
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.bias.data.uniform_(-0.1, 0.1)
        return network.eval()
    return model


class models:
    resnet18 = staticmethod(_seeded(_ResNet))
    vgg11 = staticmethod(_seeded(_VGG))
