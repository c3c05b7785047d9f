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
        self.lengths = shards.index["n_tokens"].to_numpy()[rows].astype(np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        genes, expr = self.shards[int(self.rows[i])]
        return {"genes": torch.from_numpy(genes.astype(np.int64)), "expr": torch.from_numpy(expr.astype(np.int64))}


#: Batches per length-sorted group ("megabatch") of :class:`EpochSampler` with ``lengths``
#: (Hugging Face's LengthGroupedSampler uses 50, as Geneformer's training does).
MEGABATCH_BATCHES = 50


def group_by_length(order: np.ndarray, lengths: np.ndarray, group: int) -> np.ndarray:
    """Length grouping of a shuffled order (Geneformer's efficiency method, Theodoris et al. 2023, Methods).

    The order is cut into consecutive groups of ``group`` samples; each group
    is sorted by length, longest first (stable), so a batch drawn from it
    holds sequences of similar length and needs little padding. The group of
    a sample stays random (the shuffled order decides it); only the order
    within a group changes. As Hugging Face's ``LengthGroupedSampler``.

    Parameters
    ----------
    order : np.ndarray
        int (n,) sample indices (e.g. a seeded permutation).
    lengths : np.ndarray
        int (n_samples,) real tokens of each sample.
    group : int
        Samples per group (batch size x :data:`MEGABATCH_BATCHES` x ranks).

    Returns
    -------
    np.ndarray
        int (n,) the same indices, each group sorted by length descending.
    """
    out = np.asarray(order).copy()
    for a in range(0, len(out), group):
        part = out[a:a + group]
        out[a:a + group] = part[np.argsort(-lengths[part], kind="stable")]
    return out


class EpochSampler(Sampler[int]):
    """This rank's share of a seeded permutation per epoch (as DistributedSampler).

    The order of epoch e is ``permutation(seed, e)`` (or 0..n-1 without
    shuffling), padded by wrapping to a multiple of ``num_replicas`` and dealt
    round-robin to ranks. With ``lengths``, the shuffled order is grouped by
    length (:func:`group_by_length`, groups of ``group_size`` samples) before
    it is dealt. ``skip`` samples are dropped from the start of the next
    iteration only (resuming inside an epoch): the order is a function of
    (seed, epoch) alone, so a resumed epoch continues exactly.
    """

    def __init__(self, n: int, *, seed: int, shuffle: bool, num_replicas: int = 1, rank: int = 0,
                 lengths: np.ndarray | None = None, group_size: int = 0) -> None:
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.num_replicas, self.rank = num_replicas, rank
        self.lengths, self.group_size = lengths, group_size
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
        if self.lengths is not None and self.group_size > 0:
            order = group_by_length(order, self.lengths, self.group_size)
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


def trim_padding(batch: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Collate samples and cut the columns after the batch's longest real sequence (dynamic padding).

    Used with length grouping only: it changes the tensors' shape, so the
    masking draws (``torch.rand`` of the batch's shape) differ from a run
    without it. The GPT keeps one padding column when the longest sequence
    is shorter than the corpus length, so its last real gene is still a
    next-gene target.
    """
    genes = torch.stack([b["genes"] for b in batch])
    expr = torch.stack([b["expr"] for b in batch])
    width = int((genes != 0).sum(1).max()) if len(genes) else 0
    width = min(genes.shape[1], width + 1)
    return {"genes": genes[:, :width], "expr": expr[:, :width]}


class TokenDataModule(L.LightningDataModule):
    """Train/validation loaders over token shards written by :mod:`generain.tokenize`.

    Samples come from memory-mapped shards (memory does not grow with the
    corpus); the split is the index's ``split`` column (seeded, fixed for the
    whole run); under DDP each rank reads its share of every epoch.
    """

    def __init__(self, shard_dir: str, index_path: str, *, batch_size: int, seed: int,
                 num_workers: int, group_by_length: bool = False) -> None:
        super().__init__()
        self.shard_dir, self.index_path = shard_dir, index_path
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers
        self.group_by_length = group_by_length

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
        grouping = dict(lengths=dataset.lengths, group_size=self.batch_size * MEGABATCH_BATCHES * world) \
            if self.group_by_length else {}
        return EpochSampler(len(dataset), seed=self.seed, shuffle=shuffle, num_replicas=world, rank=rank, **grouping)

    def train_dataloader(self) -> ResumableLoader:
        return ResumableLoader(self.train_set, self._sampler(self.train_set, shuffle=True),
                               batch_size=self.batch_size, num_workers=self.num_workers,
                               pin_memory=torch.cuda.is_available(), persistent_workers=self.num_workers > 0,
                               collate_fn=trim_padding if self.group_by_length else None)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, sampler=self._sampler(self.val_set, shuffle=False),
                          batch_size=self.batch_size, num_workers=self.num_workers,
                          collate_fn=trim_padding if self.group_by_length else None)
