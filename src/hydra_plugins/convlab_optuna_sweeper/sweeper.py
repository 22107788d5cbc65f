"""The Sweeper Hydra instantiates; the work is in ``_impl``, imported only when a sweep starts."""

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class ConvlabOptunaSweeper(Sweeper):
    """Runs an Optuna study as a Hydra multirun; see config.py for its keys."""

    def __init__(self, **options: Any) -> None:
        from ._impl import Search

        self.search = Search(**options)

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.search.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        return self.search.sweep(arguments)
