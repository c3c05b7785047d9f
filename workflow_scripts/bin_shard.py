"""Rule bin_shard: streaming pass 2 (bins against the merged reference, tokens) on one shard."""
from generain.stages import stream
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], stream.bin_stream_shard,
    plan=sm.input.plan, shard=int(sm.wildcards.shard), qc_table=sm.input.qc, sketch=sm.input.sketch,
    scratch=sm.input.scratch, genes=sm.input.genes, reference=sm.input.reference, vocab=sm.input.vocab,
    species_name=sm.params.species, length=sm.params.length, out_tokens=sm.output.tokens,
    orthologs=sm.input.orthologs[0] if sm.input.orthologs else None,
)
