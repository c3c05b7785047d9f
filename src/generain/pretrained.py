"""Published models in: GeneRAIN's released checkpoints and Geneformer's model directories.

Both systems build on Hugging Face ``transformers``; this module reads their
files without it and converts them to this project's models
(:mod:`generain.model`) and vocabulary layout (``<pad> <mask> <cls>`` = token
ids 0, 1, 2, then genes), so every later stage runs on an imported model as
on one trained here.

GeneRAIN (Su et al. 2024; reference code suzheng/GeneRAIN, read for the
format and not copied):

- ``src/utils/checkpoint_utils.py`` saves ``torch.save({"model_state_dict",
  "optimizer_state_dict"[, "scheduler_state_dict"]})`` of the unwrapped model
  (a ``module.`` prefix, from saving a DDP wrapper, is tolerated too).
- ``src/models/GeneExprTransformer*.py`` hold a ``GPT2LMHeadModel`` under
  ``gene_expr_transformer.gpt.`` (GPT) or a ``BertForMaskedLM`` under
  ``gene_expr_transformer.bert_for_masked_lm_model.`` (BERT_Pred_Genes; and
  BERT_Pred_Expr, whose word embedding holds the 101 expression bins and whose
  position embedding holds the genes, gene ids passed as ``position_ids``).
  Shape of the released models: 6 layers, 4 heads, 200 dimensions, FFN 800,
  erf GELU, LayerNorm eps 1e-10.
- ``data/embedding/{gene2vec,coding_lncrna}_gene_to_idx.json``: gene symbol ->
  row, with ``SPECIAL_EMB1..3`` at rows 0..2 (row 0 is the mask token of
  BERT_Pred_Genes; rows 1 and 2 are never used; there is no padding token).
- ``..._bin_tot2000_{gene2vec,coding_lncrna}_0.005_subsampled.npy``: float32
  (n_points, n_genes), each column a gene's log10(CP10M+1) over the training
  samples, sorted, at 0.5% evenly spaced ranks; ``.gene_symbols.txt`` names
  the columns. New samples are binned against it (2,000 bins).

Geneformer (Theodoris et al. 2023; huggingface.co/ctheodoris/Geneformer):

- A ``BertForMaskedLM`` directory: ``config.json`` (``hidden_act`` relu,
  ``type_vocab_size`` 2) and ``model.safetensors`` or ``pytorch_model.bin``.
- ``token_dictionary*.pkl``: Ensembl id -> token id with ``<pad>`` 0 and
  ``<mask>`` 1 (V1, values numpy int16) and also ``<cls>`` and ``<eos>`` (V2,
  whose inputs are framed ``<cls> genes... <eos>``);
  ``gene_median_dictionary*.pkl``: Ensembl id -> the gene's non-zero median
  of counts per 10,000.

Conversion rules (tested against ``transformers`` in tests/test_pretrained.py):
HF ``Conv1D`` weights are transposed; BERT's q/k/v are packed; BERT's
token-type row 0 (always added, type ids are 0) is folded into the position
embedding, which is exact because the two are summed before the embedding
LayerNorm; the language-model heads are tied to the token embedding (an
untied head is refused).
"""

from __future__ import annotations

import io as _io
import json
import logging
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import N_EXPR_BINS, SPECIAL_TOKENS
from .model import BertMLM, GPT, ModelConfig, build_model
from .normalize import BinReference
from .tokenize import VOCAB_COLUMNS
from .utils import InputError

log = logging.getLogger(__name__)

FORMATS = ("generain", "geneformer")

#: Prefix of each model type's Hugging Face model inside GeneRAIN's wrappers.
GENERAIN_PREFIX = {
    "gpt": "gene_expr_transformer.gpt.",
    "bert_pred_genes": "gene_expr_transformer.bert_for_masked_lm_model.",
    "bert_pred_expr": "gene_expr_transformer.bert_for_masked_lm_model.",
}

#: Shape settings of GeneRAIN's released models that a state dict does not hold
#: (suzheng/GeneRAIN ``jsons/exp*.param_config.json``: NUM_HEADS 4, LAYER_NORM_EPS
#: 1e-10, hidden_act gelu, dropout 0.05).
GENERAIN_SHAPE: dict[str, Any] = {"n_head": 4, "activation": "gelu", "layer_norm_eps": 1e-10, "dropout": 0.05}

#: GeneRAIN's special rows in its gene-index JSONs; our <pad> <mask> <cls> take rows 1, 0, 2
#: (row 0 is its mask token; rows 1 and 2 are never used in its inputs).
GENERAIN_SPECIALS = ("SPECIAL_EMB1", "SPECIAL_EMB2", "SPECIAL_EMB3")
GENERAIN_SPECIAL_ROWS = {"<pad>": 1, "<mask>": 0, "<cls>": 2}

#: Binning-By-Gene bins of GeneRAIN's released reference.
GENERAIN_N_BINS = 2000


# ---------------------------------------------------------------------------
# Hugging Face state dicts -> our models
# ---------------------------------------------------------------------------

def _need(sd: dict[str, torch.Tensor], key: str, source: str) -> torch.Tensor:
    if key not in sd:
        raise InputError(f"{source}: weight {key!r} is missing (has {len(sd)} weights, e.g. "
                         f"{', '.join(list(sd)[:3])})")
    return sd[key]


def _n_layers(sd: dict[str, torch.Tensor], prefix: str) -> int:
    idx = {int(k[len(prefix):].split(".")[0]) for k in sd if k.startswith(prefix)}
    if not idx or idx != set(range(len(idx))):
        raise InputError(f"layers under {prefix!r} are missing or not numbered 0..n-1: {sorted(idx)[:10]}")
    return len(idx)


def _tied(a: torch.Tensor, b: torch.Tensor, what: str, source: str) -> None:
    if a.shape != b.shape or not torch.equal(a, b):
        raise InputError(f"{source}: {what} is not tied to the token embedding; only tied heads "
                         "(GeneRAIN's and Geneformer's) can be imported")


def from_hf_state_dict(
    model_type: str,
    sd: dict[str, torch.Tensor],
    *,
    n_head: int,
    activation: str,
    layer_norm_eps: float,
    dropout: float = 0.0,
    source: str = "checkpoint",
) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """Our model's shape and weights from a Hugging Face state dict (the inverse of :func:`generain.model.hf_state_dict`).

    Parameters
    ----------
    model_type : str
        ``gpt`` (``GPT2LMHeadModel`` keys ``transformer.*``, ``lm_head.weight``) or
        ``bert_pred_genes`` / ``bert_pred_expr`` (``BertForMaskedLM`` keys ``bert.*``, ``cls.predictions.*``).
    sd : dict
        name -> float tensor, without any wrapper prefix. Buffers (``attn.bias``, ``position_ids``) are ignored.
    n_head, activation, layer_norm_eps, dropout
        Settings a state dict does not hold (:class:`generain.model.ModelConfig`).
    source : str
        The file named in errors.

    Returns
    -------
    (ModelConfig, dict)
        The shape (vocab_size and n_positions as stored) and a state dict for
        :func:`generain.model.build_model`'s model, float32.

    Raises
    ------
    InputError
        If a weight is missing, the layers are not numbered 0..n-1, or a
        language-model head is not tied to the token embedding.
    """
    sd = {k: v.float() for k, v in sd.items() if v.is_floating_point()}
    out: dict[str, torch.Tensor] = {}
    if model_type == "gpt":
        wte = _need(sd, "transformer.wte.weight", source)
        wpe = _need(sd, "transformer.wpe.weight", source)
        if "lm_head.weight" in sd:
            _tied(sd["lm_head.weight"], wte, "lm_head.weight", source)
        n_layer = _n_layers(sd, "transformer.h.")
        n_inner = _need(sd, "transformer.h.0.mlp.c_fc.weight", source).shape[1]
        out = {"wte.weight": wte, "wpe.weight": wpe, "ln_f.weight": _need(sd, "transformer.ln_f.weight", source),
               "ln_f.bias": _need(sd, "transformer.ln_f.bias", source)}
        for i in range(n_layer):
            p = f"transformer.h.{i}."
            for ours, theirs in [("ln_1", "ln_1"), ("ln_2", "ln_2")]:
                out[f"h.{i}.{ours}.weight"] = _need(sd, p + theirs + ".weight", source)
                out[f"h.{i}.{ours}.bias"] = _need(sd, p + theirs + ".bias", source)
            for ours, theirs in [("c_attn", "attn.c_attn"), ("attn_proj", "attn.c_proj"),
                                 ("c_fc", "mlp.c_fc"), ("mlp_proj", "mlp.c_proj")]:
                out[f"h.{i}.{ours}.weight"] = _need(sd, p + theirs + ".weight", source).t().contiguous()
                out[f"h.{i}.{ours}.bias"] = _need(sd, p + theirs + ".bias", source)
        cfg = ModelConfig(vocab_size=wte.shape[0], n_positions=wpe.shape[0], n_layer=n_layer, n_head=n_head,
                          n_embd=wte.shape[1], n_inner=n_inner, dropout=dropout, activation=activation,
                          layer_norm_eps=layer_norm_eps)
        return cfg, out
    if model_type not in ("bert_pred_genes", "bert_pred_expr"):
        raise ValueError(f"unknown model type {model_type!r}")
    e = "bert.embeddings."
    word = _need(sd, e + "word_embeddings.weight", source)
    pos = _need(sd, e + "position_embeddings.weight", source)
    if e + "token_type_embeddings.weight" in sd:  # type id 0 is always added before the LayerNorm: fold it in
        pos = pos + sd[e + "token_type_embeddings.weight"][0][None, :]
    for key in ("cls.predictions.decoder.weight",):
        if key in sd:
            _tied(sd[key], word, key, source)
    bias = sd.get("cls.predictions.bias", sd.get("cls.predictions.decoder.bias"))
    if bias is None:
        raise InputError(f"{source}: weight 'cls.predictions.bias' is missing")
    n_layer = _n_layers(sd, "bert.encoder.layer.")
    n_inner = _need(sd, "bert.encoder.layer.0.intermediate.dense.weight", source).shape[0]
    out = {"word_emb.weight": word, "pos_emb.weight": pos,
           "ln_emb.weight": _need(sd, e + "LayerNorm.weight", source), "ln_emb.bias": _need(sd, e + "LayerNorm.bias", source),
           "head_dense.weight": _need(sd, "cls.predictions.transform.dense.weight", source),
           "head_dense.bias": _need(sd, "cls.predictions.transform.dense.bias", source),
           "head_ln.weight": _need(sd, "cls.predictions.transform.LayerNorm.weight", source),
           "head_ln.bias": _need(sd, "cls.predictions.transform.LayerNorm.bias", source),
           "head_bias": bias}
    for i in range(n_layer):
        p = f"bert.encoder.layer.{i}."
        a = p + "attention.self."
        out[f"layers.{i}.qkv.weight"] = torch.cat([_need(sd, a + f"{n}.weight", source) for n in ("query", "key", "value")])
        out[f"layers.{i}.qkv.bias"] = torch.cat([_need(sd, a + f"{n}.bias", source) for n in ("query", "key", "value")])
        for ours, theirs in [("attn_out", "attention.output.dense"), ("ln_attn", "attention.output.LayerNorm"),
                             ("ffn_in", "intermediate.dense"), ("ffn_out", "output.dense"),
                             ("ln_ffn", "output.LayerNorm")]:
            out[f"layers.{i}.{ours}.weight"] = _need(sd, p + theirs + ".weight", source)
            out[f"layers.{i}.{ours}.bias"] = _need(sd, p + theirs + ".bias", source)
    cfg = ModelConfig(vocab_size=word.shape[0], n_positions=pos.shape[0], n_layer=n_layer, n_head=n_head,
                      n_embd=word.shape[1], n_inner=n_inner, dropout=dropout, activation=activation,
                      layer_norm_eps=layer_norm_eps)
    return cfg, out


def reindex_genes(model_type: str, cfg: ModelConfig, state: dict[str, torch.Tensor],
                  rows: np.ndarray) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """Put a model's gene rows in a new vocabulary's order.

    Parameters
    ----------
    model_type : str
    cfg, state
        As returned by :func:`from_hf_state_dict` (the source vocabulary).
    rows : np.ndarray
        int (n_tokens,): for each token id of the new vocabulary, the source
        row it takes; -1 gives a zero row (a special token the source lacks).

    Returns
    -------
    (ModelConfig, dict)
        The gene matrix (GPT: ``wte``; BERT_Pred_Genes: ``word_emb`` and the
        head's ``head_bias``; BERT_Pred_Expr: ``pos_emb``, the genes being the
        positions) has ``n_tokens`` rows; vocab_size or n_positions follow.
        Logits of the kept tokens are unchanged (they are per-token products).

    Raises
    ------
    InputError
        If a row is outside the source matrix.
    """
    rows = np.asarray(rows, dtype=np.int64)
    keys = {"gpt": ["wte.weight"], "bert_pred_genes": ["word_emb.weight", "head_bias"],
            "bert_pred_expr": ["pos_emb.weight"]}[model_type]
    n_src = state[keys[0]].shape[0]
    if rows.size and rows.max() >= n_src:
        raise InputError(f"the gene index points at row {int(rows.max())} but the model's gene matrix has {n_src} rows")
    state = dict(state)
    take = torch.as_tensor(np.maximum(rows, 0))
    missing = torch.as_tensor(rows < 0)
    for k in keys:
        m = state[k][take].clone()
        m[missing] = 0.0
        state[k] = m
    field = "n_positions" if model_type == "bert_pred_expr" else "vocab_size"
    cfg = ModelConfig(**{**cfg.to_dict(), field: int(rows.size)})
    return cfg, state


def build_imported(model_type: str, cfg: ModelConfig, state: dict[str, torch.Tensor]) -> GPT | BertMLM:
    """The model (eval mode, float32) with imported weights; strict: every parameter must be given."""
    model = build_model(model_type, cfg)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise InputError(f"imported weights do not fit the {model_type} model: {exc}") from exc
    return model.eval()


# ---------------------------------------------------------------------------
# GeneRAIN's released files
# ---------------------------------------------------------------------------

def read_generain_checkpoint(path: str | os.PathLike[str], model_type: str) -> dict[str, torch.Tensor]:
    """The Hugging Face state dict inside a GeneRAIN ``.pth`` checkpoint.

    Parameters
    ----------
    path : path-like
        ``torch.save`` of ``{"model_state_dict": ..., "optimizer_state_dict": ...}``
        (suzheng/GeneRAIN ``src/utils/checkpoint_utils.py``) or of a bare state dict.
    model_type : str
        Selects the wrapper prefix (:data:`GENERAIN_PREFIX`).

    Returns
    -------
    dict
        name -> tensor, with ``module.`` and the wrapper prefix removed.

    Raises
    ------
    InputError
        If the file cannot be read as tensors (``torch.load(weights_only=True)``:
        no code in the file is run) or holds no weight under the prefix.
    """
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise InputError(f"{path}: GeneRAIN checkpoint not found") from exc
    except Exception as exc:  # noqa: BLE001  (pickle and zip errors have no common base)
        raise InputError(f"{path}: not a torch checkpoint readable without running code ({exc})") from exc
    sd = obj.get("model_state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(sd, dict):
        raise InputError(f"{path}: expected a dict with 'model_state_dict' (GeneRAIN's checkpoint format)")
    prefix = GENERAIN_PREFIX[model_type]
    out = {}
    for k, v in sd.items():
        k = k[len("module."):] if k.startswith("module.") else k
        if k.startswith(prefix) and isinstance(v, torch.Tensor):
            out[k[len(prefix):]] = v
    if not out:
        raise InputError(f"{path}: no weight under {prefix!r}; is this GeneRAIN's {model_type} checkpoint? "
                         f"(first keys: {', '.join(list(sd)[:3])})")
    return out


def read_generain_gene_index(path: str | os.PathLike[str]) -> dict[str, int]:
    """GeneRAIN's gene-index JSON: gene symbol -> row (``SPECIAL_EMB1..3`` included).

    Raises
    ------
    InputError
        If the file is not a JSON object of distinct non-negative integers.
    """
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise InputError(f"{path}: gene index not found") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(data, dict) or not data:
        raise InputError(f"{path}: expected a JSON object gene symbol -> index")
    bad = [k for k, v in data.items() if not isinstance(v, int) or isinstance(v, bool) or v < 0]
    if bad:
        raise InputError(f"{path}: {len(bad)} entries are not non-negative integers, e.g. {bad[:3]}")
    if len(set(data.values())) != len(data):
        raise InputError(f"{path}: indices repeat")
    return {str(k): int(v) for k, v in data.items()}


def read_generain_reference(npy: str | os.PathLike[str], symbols: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """GeneRAIN's Binning-By-Gene reference: (symbols (n_genes,), values float32 (n_genes, n_points)).

    Parameters
    ----------
    npy : path-like
        ``..._0.005_subsampled.npy``: float (n_points, n_genes), a column per
        gene of sorted log10(CP10M+1) order statistics.
    symbols : path-like
        ``.gene_symbols.txt``: one symbol per line, naming the columns.

    Raises
    ------
    InputError
        If the files disagree in gene count, or values are negative or not finite.
    """
    try:
        values = np.load(npy, allow_pickle=False)
        names = [s.strip() for s in Path(symbols).read_text().splitlines() if s.strip()]
    except FileNotFoundError as exc:
        raise InputError(f"GeneRAIN reference file not found: {exc.filename}") from exc
    except ValueError as exc:
        raise InputError(f"{npy}: not a numeric .npy array ({exc})") from exc
    if values.ndim != 2 or values.shape[1] != len(names):
        raise InputError(f"{npy}: shape {values.shape} does not have one column per symbol of {symbols} "
                         f"({len(names)} symbols)")
    if not np.isfinite(values).all() or (values < 0).any():
        raise InputError(f"{npy}: values must be finite and non-negative log10(CP10M+1)")
    return np.asarray(names, dtype=object), np.sort(values.T.astype(np.float32), axis=1)


# ---------------------------------------------------------------------------
# Geneformer's files
# ---------------------------------------------------------------------------

class _DictUnpickler(pickle.Unpickler):
    """Unpickles plain dicts whose values may be numpy scalars (Geneformer's dictionaries); nothing else."""

    _ALLOWED = {("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
                ("numpy", "dtype")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            if name == "dtype":
                return np.dtype
            try:
                from numpy._core.multiarray import scalar  # numpy >= 2
            except ImportError:  # pragma: no cover - numpy 1.x
                from numpy.core.multiarray import scalar  # type: ignore[no-redef]
            return scalar
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_pickled_dict(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A Geneformer dictionary pickle (token or gene-median dictionary) as a plain dict.

    Only dicts of str keys and int/float (or numpy scalar) values are accepted:
    no other class is unpickled.

    Raises
    ------
    InputError
        If the file is missing, holds other objects, or is not a dict.
    """
    try:
        data = _DictUnpickler(_io.BytesIO(Path(path).read_bytes())).load()
    except FileNotFoundError as exc:
        raise InputError(f"{path}: dictionary not found") from exc
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise InputError(f"{path}: not a Geneformer dictionary pickle ({exc})") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a pickled dict, got {type(data).__name__}")
    return {str(k): (v.item() if isinstance(v, np.generic) else v) for k, v in data.items()}


def read_geneformer_model(model_dir: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """A Geneformer (Hugging Face ``BertForMaskedLM``) directory: (config.json, state dict).

    Weights come from ``model.safetensors`` (needs the ``safetensors``
    package) or ``pytorch_model.bin`` (``torch.load(weights_only=True)``);
    a ``bert.`` model saved without its MLM head is refused.

    Raises
    ------
    InputError
        If config.json or the weights are missing, or the model is not a BERT.
    """
    d = Path(model_dir)
    cfg_path = d / "config.json"
    if not cfg_path.exists():
        raise InputError(f"{d}: no config.json (expected a Hugging Face model directory)")
    config = json.loads(cfg_path.read_text())
    if config.get("model_type") != "bert":
        raise InputError(f"{cfg_path}: model_type is {config.get('model_type')!r}, not 'bert'")
    if (d / "model.safetensors").exists():
        try:
            from safetensors.torch import load_file
        except ImportError as exc:
            raise InputError(f"{d}/model.safetensors: reading it needs the safetensors package "
                             "(pip install safetensors)") from exc
        sd = load_file(str(d / "model.safetensors"))
    elif (d / "pytorch_model.bin").exists():
        try:
            sd = torch.load(d / "pytorch_model.bin", map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001
            raise InputError(f"{d}/pytorch_model.bin: not readable as tensors ({exc})") from exc
    else:
        raise InputError(f"{d}: neither model.safetensors nor pytorch_model.bin")
    if not any(k.startswith("cls.predictions.") for k in sd):
        raise InputError(f"{d}: the weights have no masked-LM head (cls.predictions.*); import the "
                         "pretrained BertForMaskedLM, not a fine-tuned classifier")
    return config, sd


# ---------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------

@dataclass
class ImportedVocabulary:
    """A published model's genes in this project's vocabulary layout.

    Attributes
    ----------
    vocab : pandas.DataFrame
        :data:`generain.tokenize.VOCAB_COLUMNS`; token ids 0..2 the special
        tokens, then the mapped genes in the model's row order.
    rows : np.ndarray
        int64 (len(vocab),): the model's row of each token (-1: none).
    gene_map : pandas.DataFrame
        One row per entry of the model's gene index: key, index, ensembl_id,
        status (``mapped``, ``unmapped``: not in the gene table, ``ambiguous``:
        a symbol of several genes, ``duplicate``: the gene already mapped from
        an earlier entry, ``special``).
    """

    vocab: pd.DataFrame
    rows: np.ndarray
    gene_map: pd.DataFrame

    def counts(self) -> dict[str, int]:
        """Entries per status."""
        return {str(k): int(v) for k, v in self.gene_map["status"].value_counts().items()}


def import_vocabulary(index: dict[str, int], *, keyed_by: str, special_rows: dict[str, int],
                      special_keys: set[str], gene_table: pd.DataFrame) -> ImportedVocabulary:
    """Map a published gene index onto Ensembl genes and build the run's vocabulary from it.

    Parameters
    ----------
    index : dict
        key -> model row: gene symbols (GeneRAIN) or Ensembl ids (Geneformer).
    keyed_by : {"symbol", "ensembl_id"}
    special_rows : dict
        Our special token (``<pad> <mask> <cls>``) -> the model row it takes (-1: none).
    special_keys : set of str
        Keys of the index that are special tokens, not genes.
    gene_table : pandas.DataFrame
        ensembl_id, symbol, biotype of the species' genes (the run's gene table).

    Returns
    -------
    ImportedVocabulary
    """
    gt = gene_table.dropna(subset=["ensembl_id"]).copy()
    gt["symbol"] = gt["symbol"].fillna("").astype(str)
    if keyed_by == "symbol":
        by_key = gt[gt["symbol"] != ""].groupby("symbol")["ensembl_id"].agg(list).to_dict()
    elif keyed_by == "ensembl_id":
        by_key = {g: [g] for g in gt["ensembl_id"]}
    else:
        raise ValueError(f"keyed_by must be 'symbol' or 'ensembl_id', not {keyed_by!r}")
    info = gt.drop_duplicates("ensembl_id").set_index("ensembl_id")
    seen: set[str] = set()
    records = []
    for key, row in sorted(index.items(), key=lambda kv: kv[1]):
        if key in special_keys:
            records.append((key, row, "", "special"))
            continue
        hits = by_key.get(key, [])
        if not hits:
            records.append((key, row, "", "unmapped"))
        elif len(hits) > 1:
            records.append((key, row, "", "ambiguous"))
        elif hits[0] in seen:
            records.append((key, row, hits[0], "duplicate"))
        else:
            seen.add(hits[0])
            records.append((key, row, hits[0], "mapped"))
    gene_map = pd.DataFrame(records, columns=["key", "index", "ensembl_id", "status"])
    genes = gene_map[gene_map["status"] == "mapped"]
    if genes.empty:
        raise InputError(f"none of the model's {len(index)} genes is in the gene table (keys are {keyed_by}s)")
    ens = genes["ensembl_id"].to_numpy()
    vocab = pd.DataFrame({
        "token_id": np.arange(len(SPECIAL_TOKENS) + len(genes)),
        "token": list(SPECIAL_TOKENS) + list(ens),
        "ensembl_id": [""] * len(SPECIAL_TOKENS) + list(ens),
        "symbol": [""] * len(SPECIAL_TOKENS) + list(info.loc[ens, "symbol"]),
        "biotype": ["special"] * len(SPECIAL_TOKENS) + list(info.loc[ens, "biotype"].fillna("")),
        "species": [""] * len(SPECIAL_TOKENS) + ["human"] * len(genes),
    })[list(VOCAB_COLUMNS)]
    rows = np.array([special_rows.get(t, -1) for t in SPECIAL_TOKENS] + list(genes["index"]), dtype=np.int64)
    return ImportedVocabulary(vocab, rows, gene_map)


def generain_vocabulary(index: dict[str, int], gene_table: pd.DataFrame) -> ImportedVocabulary:
    """:func:`import_vocabulary` for GeneRAIN's symbol-keyed gene index (:data:`GENERAIN_SPECIAL_ROWS`)."""
    special_rows = {t: r for t, r in GENERAIN_SPECIAL_ROWS.items() if r in set(index.values())}
    return import_vocabulary(index, keyed_by="symbol", special_rows=special_rows,
                             special_keys=set(GENERAIN_SPECIALS), gene_table=gene_table)


def geneformer_vocabulary(token_dictionary: dict[str, int], gene_table: pd.DataFrame) -> ImportedVocabulary:
    """:func:`import_vocabulary` for Geneformer's token dictionary (Ensembl id -> token id).

    ``<pad>``, ``<mask>`` and (V2) ``<cls>`` take our ids 0, 1, 2; V2's
    ``<eos>`` becomes the vocabulary's last token (biotype ``special``), the
    ``eos_token`` of the imported model (:func:`eos_token_id`).
    """
    special_keys = {k for k in token_dictionary if k.startswith("<")}
    special_rows = {t: int(token_dictionary[t]) for t in SPECIAL_TOKENS if t in token_dictionary}
    v = import_vocabulary(token_dictionary, keyed_by="ensembl_id", special_rows=special_rows,
                          special_keys=special_keys, gene_table=gene_table)
    if "<eos>" in token_dictionary:
        eos = pd.DataFrame([{"token_id": len(v.vocab), "token": "<eos>", "ensembl_id": "", "symbol": "",
                             "biotype": "special", "species": ""}])
        v = ImportedVocabulary(pd.concat([v.vocab, eos], ignore_index=True),
                               np.append(v.rows, int(token_dictionary["<eos>"])), v.gene_map)
    return v


def eos_token_id(vocab: pd.DataFrame) -> int:
    """Token id of ``<eos>`` in a vocabulary (Geneformer V2 imports), or 0 when it has none."""
    hit = vocab.loc[vocab["token"] == "<eos>", "token_id"]
    return int(hit.iloc[0]) if len(hit) else 0


# ---------------------------------------------------------------------------
# Whole imports
# ---------------------------------------------------------------------------

def import_generain_model(checkpoint: str | os.PathLike[str], model_type: str, rows: np.ndarray,
                          *, n_head: int = GENERAIN_SHAPE["n_head"]) -> GPT | BertMLM:
    """A GeneRAIN checkpoint as our model, its gene rows in the run's vocabulary order.

    Parameters
    ----------
    checkpoint : path-like
        The released ``GeneRAIN.*.pth`` (:func:`read_generain_checkpoint`).
    model_type : str
        ``gpt`` (GPT_Binning_By_Gene, GPT_protein_coding_lncRNAs),
        ``bert_pred_genes`` or ``bert_pred_expr``.
    rows : np.ndarray
        :attr:`ImportedVocabulary.rows`.
    n_head : int
        Attention heads (4 in every released model; not stored in the file).

    Raises
    ------
    InputError
        If the checkpoint is unreadable or not of that model type, or (BERT_Pred_Expr)
        its expression vocabulary is not the 101 bin tokens.
    """
    sd = read_generain_checkpoint(checkpoint, model_type)
    cfg, state = from_hf_state_dict(model_type, sd, source=str(checkpoint),
                                    **{**GENERAIN_SHAPE, "n_head": n_head})
    if model_type == "bert_pred_expr" and cfg.vocab_size != N_EXPR_BINS + 1:
        raise InputError(f"{checkpoint}: word embedding has {cfg.vocab_size} rows; BERT_Pred_Expr's are the "
                         f"{N_EXPR_BINS + 1} expression bins (is this a BERT_Pred_Genes checkpoint?)")
    cfg, state = reindex_genes(model_type, cfg, state, rows)
    return build_imported(model_type, cfg, state)


def import_geneformer_model(model_dir: str | os.PathLike[str], rows: np.ndarray, *, eos_token: int = 0) -> BertMLM:
    """A Geneformer directory as our ``bert_pred_genes`` model, rows in the run's vocabulary order.

    ``eos_token``: our id of V2's ``<eos>`` (:func:`eos_token_id`); the model
    then reads framed inputs ``<cls> genes... <eos>`` as Geneformer V2 does.

    Raises
    ------
    InputError
        As :func:`read_geneformer_model`; also if the config's sizes disagree with the weights.
    """
    config, sd = read_geneformer_model(model_dir)
    cfg, state = from_hf_state_dict(
        "bert_pred_genes", {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()},
        n_head=int(config["num_attention_heads"]), activation=str(config.get("hidden_act", "relu")),
        layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
        dropout=float(config.get("hidden_dropout_prob", 0.02)), source=str(model_dir))
    if cfg.vocab_size != int(config.get("vocab_size", cfg.vocab_size)):
        raise InputError(f"{model_dir}: config.json vocab_size {config['vocab_size']} but the word embedding "
                         f"has {cfg.vocab_size} rows")
    cfg, state = reindex_genes("bert_pred_genes", cfg, state, rows)
    cfg = ModelConfig(**{**cfg.to_dict(), "eos_token": int(eos_token)})
    return build_imported("bert_pred_genes", cfg, state)


def generain_bin_reference(npy: str | os.PathLike[str], symbols: str | os.PathLike[str],
                           vocab: pd.DataFrame, gene_map: pd.DataFrame) -> BinReference:
    """GeneRAIN's released reference as a :class:`generain.normalize.BinReference` over the vocabulary's genes.

    Columns are matched to genes through the gene index's own symbol -> Ensembl
    mapping (``gene_map``); genes of the vocabulary without a column are left
    out (they are never tokens, as in the authors' code).
    ``n_training_samples`` is estimated as n_points / 0.005.
    """
    names, values = read_generain_reference(npy, symbols)
    sym2ens = dict(zip(gene_map.loc[gene_map["status"] == "mapped", "key"],
                       gene_map.loc[gene_map["status"] == "mapped", "ensembl_id"]))
    keep = [i for i, s in enumerate(names) if s in sym2ens]
    if not keep:
        raise InputError(f"{symbols}: none of the reference's genes is in the model's vocabulary")
    ids = np.array([sym2ens[names[i]] for i in keep], dtype=object)
    return BinReference(ids, values[keep], GENERAIN_N_BINS, int(round(values.shape[1] / 0.005)))
