"""Rule export_embeddings: token-embedding matrix -> word2vec text and parquet."""
from generain.stages import embed
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], embed.export_embeddings,
    checkpoint=sm.input.checkpoint, vocab=sm.input.vocab, out_w2v=sm.output.w2v, out_parquet=sm.output.parquet,
)
