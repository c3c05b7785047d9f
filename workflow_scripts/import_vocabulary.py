"""Rule import_vocabulary: a published model's gene index as the run's vocabulary, with its reference."""
from generain.stages import pretrained
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], pretrained.import_vocabulary,
    fmt=sm.params.format, gene_index=sm.input.gene_index, reference=sm.input.reference,
    gene_table=sm.input.gene_table, out_vocab=sm.output.vocab, out_gene_map=sm.output.gene_map,
    out_token_rows=sm.output.token_rows, out_reference=sm.output.reference, out_summary=sm.output.summary,
)
