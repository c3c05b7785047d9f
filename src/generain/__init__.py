"""GeneRAIN workflow: gene embeddings from bulk RNA-seq compendia.

Reproduces GeneRAIN (Su et al. 2024, bioRxiv 10.1101/2024.03.07.583777) and its
human-mouse follow-up (bioRxiv 10.1101/2024.04.01.587517). All logic lives in
this package; the Snakemake rules only call into it.
"""

from __future__ import annotations

__version__ = "0.1.0"

SPECIAL_TOKENS: tuple[str, ...] = ("<pad>", "<mask>", "<cls>")
"""The three special tokens, with token ids 0, 1 and 2."""

PAD_ID = 0
MASK_ID = 1
CLS_ID = 2
N_EXPR_BINS = 100
"""Within-sample expression bins of BERT_Pred_Expr (tokens 1..100; 0 = masked or padding).

GeneRAIN, Methods: 100 quantile bins of the sequence's genes."""

MOUSE_PREFIX = "m_"
"""Prefix of mouse gene tokens in a mixed-species vocabulary (GeneRAIN-HM)."""
