"""Print the book-style layer table of a configured model.

    python scripts/layer_summary.py model=vgg11 data.resize=224

Takes the same overrides as train.py and composes the same config, so the table shows exactly the
network a run would train, at its input size.
"""

import sys

from hydra import compose, initialize_config_dir

from convlab.config import instantiate
from convlab.errors import ConvlabError
from convlab.paths import CONF_DIR
from convlab.registry import constructor_args
from convlab.sizes import pair
from convlab.summary import layer_table
from convlab.validate import validate


def main(overrides: list[str]) -> None:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    validate(cfg)
    net = instantiate(constructor_args(cfg.model))
    h, w = pair(cfg.data.resize)
    channels = cfg.model.in_channels  # the network's: 3 where data.grey_to_rgb repeats grey
    print(f"{cfg.model._target_} on a (1, {channels}, {h}, {w}) input")
    print(layer_table(net, (1, channels, h, w)))


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except ConvlabError as e:
        sys.exit(f"convlab: error: {e}")
