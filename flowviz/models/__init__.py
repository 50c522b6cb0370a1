"""Networks: the time-conditioned MLP for 2-D points and latents, the U-Net for images."""

from .mlp import MLPConfig, TimeMLP, sinusoidal
from .unet import CIFAR_UNET, DIGITS_UNET, TimeUNet, UNetConfig, n_params

__all__ = ["CIFAR_UNET", "DIGITS_UNET", "MLPConfig", "TimeMLP", "TimeUNet", "UNetConfig",
           "n_params", "sinusoidal"]
