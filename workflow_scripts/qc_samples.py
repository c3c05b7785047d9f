"""Rule qc_samples: GeneRAIN's sample QC over all ingested datasets."""
from generain.qc import QCCriteria
from generain.stages import qc
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], qc.qc_samples,
    matrices=list(sm.input.matrices), tables=list(sm.input.tables), criteria=QCCriteria(**sm.params.criteria),
    out_table=sm.output.table, out_plot=sm.output.plot,
)
