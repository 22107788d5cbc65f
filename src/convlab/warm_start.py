"""``init_from=<file>``: a new run whose network starts from a checkpoint's weights.

Fine-tuning, and training a finished run longer (``init_from=<run>/checkpoints/last.ckpt
trainer.max_epochs=N``). Only the weights come along, never through Lightning's ``ckpt_path``,
which would also restore the optimizer, the schedule, the loop's counters and the callbacks'
states: the new run chooses those. The checkpoint is data, read and checked as ``train=false``
reads one, and its config decides the network (convlab.evaluation); its path is the user's, and
nothing is written there.
"""

from pathlib import Path

from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from torch import nn

from convlab.checkpoint_io import read_meta
from convlab.errors import ConvlabError
from convlab.evaluation import checkpoint_network
from convlab.inference import check_fits, load_weights
from convlab.registry import allowed, build_net
from convlab.runlog import say


class WarmStart:
    """The checkpoint a run starts from, and the tensors of it the run's network cannot take."""

    def __init__(self, cfg: DictConfig, overrides: list[str]):
        """Read and check the checkpoint, and make its network the run's (in ``cfg``)."""
        if not cfg.train:
            raise ConvlabError(
                "init_from starts a new training run from a checkpoint's weights; to evaluate a "
                "checkpoint: train=false ckpt_path=<file>, without init_from"
            )
        self.path, self.strict = cfg.init_from, cfg.init_from_strict
        self.allow = allowed(cfg)  # the command line's, before cfg.model is the checkpoint's
        saved, meta = read_meta(self.path)
        check_fits(meta, saved, self.path, self.allow)  # on the meta device: nothing large yet
        given = f"init_from={self.path}"
        checkpoint_network(cfg, meta, overrides, given, self.path, "start from it", new_data=True)
        self.weights, self.model_name = saved["state_dict"], meta.model_name
        self.reinitialised: list[str] = []

    def network(self, cfg: DictConfig) -> nn.Module:
        """The run's network: the checkpoint's model config, sized by the run's data, built by
        the registry's safe path (the class it names is data)."""
        model = OmegaConf.to_container(cfg.model, resolve=True)
        return build_net(model, f"{self.path}'s model config", allow=self.allow)

    def load(self, classifier: nn.Module, resumed: bool) -> None:
        """The checkpoint's weights into the run's network (a resumed run's come from its own
        checkpoint instead). The tensors whose shape the run's data changed (a new
        ``num_classes``: the head) are named, and refused unless ``init_from_strict=false``: then
        they keep their fresh initialisation. The checkpoint's copy is released: the network
        holds the weights now."""
        weights, self.weights = self.weights, {}
        state = classifier.state_dict()
        self.reinitialised = [
            k for k, v in state.items() if k in weights and weights[k].shape != v.shape
        ]
        if self.reinitialised and self.strict:
            first = self.reinitialised[0]
            raise ConvlabError(
                f"init_from={self.path}: {first} is {tuple(weights[first].shape)} there and "
                f"{tuple(state[first].shape)} in this run's network ({len(self.reinitialised)} "
                "tensors differ in shape); to re-initialise them, add init_from_strict=false"
            )
        if resumed:
            return
        fresh = {k: state[k] for k in self.reinitialised}
        load_weights(classifier, {"state_dict": {**weights, **fresh}}, self.path)
        if self.reinitialised and rank_zero_only.rank == 0:
            say(
                f"init_from: re-initialised {len(self.reinitialised)} tensors whose shape differs "
                f"from the checkpoint's: {', '.join(self.reinitialised)}"
            )

    def record(self) -> dict:
        """What metrics.json says of the run's start."""
        return {"checkpoint": str(Path(self.path).resolve()), "reinitialised": self.reinitialised}
