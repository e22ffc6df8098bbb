"""A stripe detector and the image it answers class 1 for, shared by the command-line and runtime tests."""
import numpy as np

SIZE = 32


def striped_image():
    """Flat colours, except vertical black and white stripes in the top-left quadrant."""
    image = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
    image[:, :] = (40, 120, 200)
    image[SIZE // 2:, :] = (200, 160, 40)
    image[:SIZE // 2, :SIZE // 2] = 0
    image[:SIZE // 2, :SIZE // 2:2] = 255
    return image


def stripe_detector(channels_last=False):
    """A torch module of class 1 when the top-left quadrant of a (N, 3, 32, 32) image in [0, 1] has vertical
    stripes, class 0 when it is flat; (N, 32, 32, 3) images with ``channels_last``."""
    import torch

    class StripeDetector(torch.nn.Module):
        def forward(self, x):
            if channels_last:
                x = x.permute(0, 3, 1, 2)
            quadrant = x[:, :, :SIZE // 2, :SIZE // 2]
            energy = (quadrant[:, :, :, 1:] - quadrant[:, :, :, :-1]).abs().sum(1).mean((1, 2))
            return torch.stack([1.0 - energy, energy - 1.0], dim=1) * 4.0

    return StripeDetector()
