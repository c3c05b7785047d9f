"""Token data for training: memory-mapped shards, a seeded per-epoch sampler, a resumable loader."""

from __future__ import annotations

import math
from typing import Any, Iterator

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..tokenize import TokenShards
from ..utils import InputError


class SampleDataset(Dataset):
    """One split's samples: item i -> {"genes", "expr"} int64 tensors of shape (length,)."""

    def __init__(self, shards: TokenShards, rows: np.ndarray) -> None:
        self.shards, self.rows = shards, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        genes, expr = self.shards[int(self.rows[i])]
        return {"genes": torch.from_numpy(genes.astype(np.int64)), "expr": torch.from_numpy(expr.astype(np.int64))}


class EpochSampler(Sampler[int]):
    """This rank's share of a seeded permutation per epoch (as DistributedSampler).

    The order of epoch e is ``permutation(seed, e)`` (or 0..n-1 without
    shuffling), padded by wrapping to a multiple of ``num_replicas`` and dealt
    round-robin to ranks. ``skip`` samples are dropped from the start of the
    next iteration only (resuming inside an epoch).
    """

    def __init__(self, n: int, *, seed: int, shuffle: bool, num_replicas: int = 1, rank: int = 0) -> None:
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch, self.skip = 0, 0
        self.per_rank = math.ceil(n / num_replicas) if n else 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.per_rank

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        else:
            order = np.arange(self.n)
        total = self.per_rank * self.num_replicas
        order = np.resize(order, total)  # wrap around so every rank gets the same count
        mine = order[self.rank:total:self.num_replicas]
        skip, self.skip = self.skip, 0
        return iter(mine[skip:].tolist())


class ResumableLoader(DataLoader):
    """A DataLoader over an :class:`EpochSampler` whose position in the epoch goes into checkpoints.

    Lightning saves ``state_dict()`` in each checkpoint and calls
    ``load_state_dict()`` before iterating when it resumes; ``batches_done``
    is set by the LightningModule as it consumes batches.
    """

    sampler: EpochSampler

    def __init__(self, dataset: Dataset, sampler: EpochSampler, **kwargs: Any) -> None:
        super().__init__(dataset, sampler=sampler, **kwargs)
        self.batches_done = 0

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "batches_done": self.batches_done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.set_epoch(state["epoch"])
        self.sampler.skip = state["batches_done"] * int(self.batch_size or 1)
        self.batches_done = state["batches_done"]


class TokenDataModule(L.LightningDataModule):
    """Train/validation loaders over token shards written by :mod:`generain.tokenize`.

    Samples come from memory-mapped shards (memory does not grow with the
    corpus); the split is the index's ``split`` column (seeded, fixed for the
    whole run); under DDP each rank reads its share of every epoch.
    """

    def __init__(self, shard_dir: str, index_path: str, *, batch_size: int, seed: int,
                 num_workers: int) -> None:
        super().__init__()
        self.shard_dir, self.index_path = shard_dir, index_path
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers

    def setup(self, stage: str | None = None) -> None:
        index = pd.read_parquet(self.index_path)
        shards = TokenShards(self.shard_dir, index)
        split = index["split"].to_numpy()
        self.train_set = SampleDataset(shards, np.flatnonzero(split == "train"))
        self.val_set = SampleDataset(shards, np.flatnonzero(split == "validation"))
        if len(self.train_set) == 0:
            raise InputError(f"{self.index_path}: no samples in the train split")

    def _sampler(self, dataset: SampleDataset, shuffle: bool) -> EpochSampler:
        world, rank = (self.trainer.world_size, self.trainer.global_rank) if self.trainer else (1, 0)
        return EpochSampler(len(dataset), seed=self.seed, shuffle=shuffle, num_replicas=world, rank=rank)

    def train_dataloader(self) -> ResumableLoader:
        return ResumableLoader(self.train_set, self._sampler(self.train_set, shuffle=True),
                               batch_size=self.batch_size, num_workers=self.num_workers,
                               pin_memory=torch.cuda.is_available(), persistent_workers=self.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, sampler=self._sampler(self.val_set, shuffle=False),
                          batch_size=self.batch_size, num_workers=self.num_workers)
