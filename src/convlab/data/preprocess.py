"""The one batch preprocessing module: uint8 images in, normalized float images out, on the device.

The DataModule, the classifier, the callbacks, the benchmarks and prediction all call the same
module, and it travels inside every checkpoint, so a checkpoint alone classifies raw image bytes.
"""

import torch
import torch.nn.functional as F
from torch import nn

from convlab.errors import ConvlabError
from convlab.sizes import pair


class Augment(nn.Module):
    """Random flips, translations and erasing, per sample, drawn on the batch's device.

    Draws from torch's global generator, which convlab reseeds from (seed, epoch) at every epoch
    start, so runs and resumed runs see the same augmentations.
    """

    def __init__(
        self,
        flip: bool = False,
        translate: int = 0,
        erase_p: float = 0.0,
        black: float | torch.Tensor = 0.0,
    ):
        super().__init__()
        self.flip, self.translate, self.erase_p = flip, translate, erase_p
        # a black pixel's value in the (normalized) images this module gets: one, or one per channel
        black = torch.as_tensor(black, dtype=torch.float32).reshape(-1, 1, 1)
        self.register_buffer("black", black, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (N, C, H, W) float
        n = x.shape[0]
        if self.flip:
            flip = torch.rand(n, 1, 1, 1, device=x.device) < 0.5
            x = torch.where(flip, x.flip(-1), x)
        if self.translate:
            x = self._translate(x, self.translate, self.black)
        if self.erase_p:
            x = self._erase(x)
        return x

    @staticmethod
    def _translate(x: torch.Tensor, t: int, black: torch.Tensor) -> torch.Tensor:
        """Shift each image by up to t pixels in each direction, filling with black."""
        n, c, h, w = x.shape
        # F.pad fills with one number; black may differ per channel
        padded = black.expand(n, c, h + 2 * t, w + 2 * t).clone()  # (N, C, H+2t, W+2t)
        padded[..., t : t + h, t : t + w] = x
        dy, dx = torch.randint(0, 2 * t + 1, (2, n, 1), device=x.device)
        rows = (torch.arange(h, device=x.device) + dy)[:, None, :, None].expand(n, c, h, w + 2 * t)
        cols = (torch.arange(w, device=x.device) + dx)[:, None, None, :].expand(n, c, h, w)
        return padded.gather(2, rows).gather(3, cols)  # (N, C, H, W)

    def _erase(self, x: torch.Tensor) -> torch.Tensor:
        """Zero a random rectangle of 2-33% of the image in a fraction erase_p of the samples."""
        n, _, h, w = x.shape
        area = torch.empty(n, device=x.device).uniform_(0.02, 0.33) * h * w
        ratio = (
            torch.empty(n, device=x.device).uniform_(-1.2, 1.2).exp()
        )  # log-uniform in [0.3, 3.3]
        eh = (area * ratio).sqrt().clamp(1, h).long()
        ew = (area / ratio).sqrt().clamp(1, w).long()
        y0 = (torch.rand(n, device=x.device) * (h - eh + 1)).long()
        x0 = (torch.rand(n, device=x.device) * (w - ew + 1)).long()
        ys, xs = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
        in_y = (ys >= y0[:, None]) & (ys < (y0 + eh)[:, None])  # (N, H)
        in_x = (xs >= x0[:, None]) & (xs < (x0 + ew)[:, None])  # (N, W)
        chosen = torch.rand(n, device=x.device) < self.erase_p
        mask = (in_y[:, :, None] & in_x[:, None, :] & chosen[:, None, None])[:, None]  # (N,1,H,W)
        return torch.where(mask, self.black, x)


class Preprocess(nn.Module):
    """uint8 (N, H, W) or (N, C, H, W) -> float (N, out_channels, *size), resized and normalized.

    ``channels`` is the stored images' (1: grey, 3: RGB); ``mean`` and ``std`` are one number or one
    per channel, in [0, 1]. ``grey_to_rgb`` repeats a grey channel three times, last and as a view,
    for networks that expect RGB. Resizing is bilinear, antialiased when it shrinks, as
    torchvision's Resize on PIL images, so results match the book's pipeline; augmentation runs only
    in training mode.
    """

    def __init__(
        self,
        size: int | list[int] = 28,
        mean: float | list[float] = 0.0,
        std: float | list[float] = 1.0,
        channels: int = 1,
        grey_to_rgb: bool = False,
        augment: dict | None = None,
    ):
        super().__init__()
        self.size, self.channels, self.grey_to_rgb = pair(size), channels, grey_to_rgb
        # plain containers only: this dict is stored in checkpoints to rebuild the module
        self.config = {
            "size": list(self.size),
            "mean": _plain(mean),
            "std": _plain(std),
            "channels": channels,
            "grey_to_rgb": grey_to_rgb,
            "augment": dict(augment) if augment else None,
        }
        # in double precision, as Python floats, then float32: the values one number always gave
        means, stds = (torch.tensor(_plain(v), dtype=torch.float64) for v in (mean, std))
        # mean and std on the 0-255 scale of the stored bytes, so normalizing needs no /255 pass;
        # one value per channel, (C, 1, 1), or one for all, (1, 1, 1)
        self.register_buffer("byte_mean", _per_channel(255.0 * means), persistent=False)
        self.register_buffer("byte_std", _per_channel(255.0 * stds), persistent=False)
        black = _per_channel(-means / stds)
        self.augment = Augment(**augment, black=black) if augment else None

    @property
    def out_channels(self) -> int:
        """The channels the network gets."""
        return 3 if self.grey_to_rgb else self.channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            x = x.unsqueeze(1)  # (N, H, W) -> (N, 1, H, W)
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ConvlabError(
                f"images of shape {tuple(x.shape)} given where this preprocessing takes "
                f"{self.channels}-channel images, (N, {self.channels}, H, W)"
                + (" or (N, H, W)" if self.channels == 1 else "")
            )
        # normalized before resizing, at the stored size: bilinear weights sum to 1, so the result
        # is the same (within 1e-6) as normalizing after, and at 224 that saves two whole passes.
        # A copy even of float input, which the in-place ops must not touch.
        x = x.to(torch.float32, copy=True).sub_(self.byte_mean).div_(self.byte_std)
        if tuple(x.shape[-2:]) != self.size:
            # antialiasing only changes downscaling; upscaling 28 -> 96/224 takes the faster kernel
            shrinks = any(out < now for out, now in zip(self.size, x.shape[-2:], strict=True))
            x = F.interpolate(
                x, size=self.size, mode="bilinear", antialias=shrinks, align_corners=False
            )
        if self.augment is not None and self.training:
            x = self.augment(x)  # shifted-in and erased pixels are black (normalized)
        if self.grey_to_rgb:
            x = x.expand(-1, 3, -1, -1)  # grey -> RGB, as a view
        return x


def _plain(value) -> float | list[float]:
    """A number, or a list of numbers (a config's ListConfig included), as plain Python."""
    return [float(v) for v in value] if not isinstance(value, int | float) else value


def _per_channel(values: torch.Tensor) -> torch.Tensor:
    """Float64 values as a float32 (C, 1, 1) buffer that broadcasts over (N, C, H, W) batches."""
    return values.to(torch.float32).reshape(-1, 1, 1)
