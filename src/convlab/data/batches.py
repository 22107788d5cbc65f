"""Batches sliced from in-memory tensors: no Dataset, no per-sample work, no worker processes.

Indexing a (N, 28, 28) uint8 tensor with a batch of indices costs microseconds, so a DataLoader's
collation and workers would only add overhead.
"""

from collections.abc import Callable, Iterator

import torch


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """One seed per (run seed, epoch, rank), shared by the batch order and the per-epoch reseeding
    so both survive a resume. The large prime multipliers keep seed 1 epoch 0 away from seed 0
    epoch 1, and rank streams apart."""
    return seed * 1_000_003 + epoch + 7919 * rank


class TensorBatches:
    """An iterable of (images, labels) batches over one split, optionally shuffled and sharded.

    The shuffle order of epoch e is drawn from (seed, e) alone, so it never depends on RNG state a
    checkpoint does not restore: a resumed run sees the same batches as an uninterrupted one.
    Under DDP each rank takes every world_size-th sample, like DistributedSampler but without its
    padding: training drops the last few samples so every rank runs the same number of steps,
    evaluation keeps uneven shards (torchmetrics syncs the sums, so nothing is counted twice).
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        epoch: Callable[[], int] = lambda: 0,
        rank: int = 0,
        world_size: int = 1,
        pin_memory: bool = False,
    ):
        self.images, self.labels, self.batch_size = images, labels, batch_size
        self.shuffle, self.seed, self.epoch = shuffle, seed, epoch
        self.rank, self.world_size, self.pin_memory = rank, world_size, pin_memory

    def _indices(self) -> torch.Tensor:
        n = len(self.labels)
        if not self.shuffle:
            return torch.arange(self.rank, n, self.world_size)
        g = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch()))
        order = torch.randperm(n, generator=g)
        order = order[: n - n % self.world_size]  # equal shards: DDP ranks must step together
        return order[self.rank :: self.world_size]

    def __len__(self) -> int:
        n = len(self.labels)
        per_rank = (
            n // self.world_size if self.shuffle else len(range(self.rank, n, self.world_size))
        )
        return -(-per_rank // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for idx in self._indices().split(self.batch_size):
            x, y = self.images[idx], self.labels[idx]
            if self.pin_memory:  # lets the host-to-GPU copy run asynchronously
                x, y = x.pin_memory(), y.pin_memory()
            yield x, y
