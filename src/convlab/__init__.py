"""convlab: the CNNs of Dive into Deep Learning (chapter 7 on), as a Hydra + Lightning template."""

from omegaconf import OmegaConf

from convlab.errors import ConvlabError

__all__ = ["ConvlabError"]

# the channels a network takes, for conf/model/'s in_channels: the stored images' (data.channels),
# or 3 where data.grey_to_rgb repeats a grey channel. Registered here, where every use of convlab
# passes, so any composed config resolves.
OmegaConf.register_new_resolver(
    "convlab_in_channels", lambda channels, grey_to_rgb: 3 if grey_to_rgb else channels
)
