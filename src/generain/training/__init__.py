"""Training with PyTorch Lightning, split by concern.

- :mod:`.masking`: model inputs of a batch (next-gene targets, BERT masking);
- :mod:`.data`: memory-mapped token shards, the seeded per-epoch sampler and
  the resumable loader (LightningDataModule);
- :mod:`.module`: the LightningModule (optimizer, OneCycle schedule, logging);
- :mod:`.fit`: :class:`~.fit.TrainSettings` and :func:`~.fit.fit_model`, one
  training process;
- :mod:`.resume`: the run fingerprint and the resume decision;
- :mod:`.launch`: one process, Lightning's local DDP launcher or ``srun``;
- :mod:`.checkpoint`: the trained model's file, saved and loaded with torch
  alone (no Lightning), for the stages that only read a model.

Optimisation follows GeneRAIN (Su et al. 2024, Methods "Model training";
reference code suzheng/GeneRAIN ``src/train/common.py``): AdamW with weight
decay 0.01 (none on biases and LayerNorm weights) and a OneCycle schedule
(max_lr 1e-4, div_factor 5, pct_start 0.2). We step the schedule once per
optimizer step; ``schedule_per="epoch"`` reproduces the reference, which
stepped it once per epoch.

Determinism and resuming. Every random choice of a training step (BERT
masking, dropout) is drawn after seeding the generators with
(seed, epoch, batch, rank), and the sample order of an epoch is a function of
(seed, epoch). The position inside an epoch is saved in each checkpoint, so a
run that is killed and resumed from ``last.ckpt`` takes exactly the steps of
an uninterrupted run with the same seed.

This ``__init__`` imports nothing, so ``generain.training.checkpoint`` loads
without Lightning.
"""
