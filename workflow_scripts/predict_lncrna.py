"""Rule predict_lncrna: property classifiers applied to every lncRNA."""
from generain import pipeline
from generain.utils import run_step

sm = snakemake  # noqa: F821
p = sm.params.lncrna
run_step(
    sm.log[0], pipeline.predict_lncrna,
    embedding=sm.input.embedding, classifiers=sm.input.classifiers, catalogue=sm.input.catalogue,
    top_k=p["top_k"], properties_per_batch=p["properties_per_batch"], out_predictions=sm.output.predictions,
    out_top=sm.output.top,
)
