"""Rule predict_lncrna: property classifiers applied to every lncRNA."""
from generain.stages import lncrna
from generain.utils import run_step

sm = snakemake  # noqa: F821
# params hold top_k; properties_per_batch only bounds memory and comes from the config
p = {**sm.config["lncrna"], **sm.params.lncrna}
run_step(
    sm.log[0], lncrna.predict_lncrna,
    embedding=sm.input.embedding, classifiers=sm.input.classifiers, catalogue=sm.input.catalogue,
    top_k=p["top_k"], properties_per_batch=p["properties_per_batch"], out_predictions=sm.output.predictions,
    out_top=sm.output.top,
)
