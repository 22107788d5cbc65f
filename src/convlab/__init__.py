"""convlab: the CNNs of Dive into Deep Learning (chapter 7 on), as a Hydra + Lightning template."""

from convlab.errors import ConvlabError

__all__ = ["ConvlabError"]
