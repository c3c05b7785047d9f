"""Rule ingest_counts: read one dataset, map its genes to Ensembl ids."""
from generain.stages import ingest
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], ingest.ingest_dataset,
    path=sm.input.counts, fmt=sm.params.fmt, name=sm.wildcards.dataset, species_name=sm.params.species,
    gene_table=sm.input.gene_table or None, out_matrix=sm.output.matrix, out_report=sm.output.report,
    id_type=sm.params.id_type, counts=sm.params.counts, read_options=sm.params.read_options,
    annotation_name=sm.params.annotation, reads=sm.input.reads[0] if sm.input.reads else None,
)
