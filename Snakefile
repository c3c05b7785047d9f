# GeneRAIN workflow: bulk RNA-seq counts -> QC -> Binning-By-Gene -> tokens ->
# transformer -> gene embeddings -> property sweep -> lncRNA predictions ->
# human-mouse comparison -> report. Stages live in rules/, logic in src/generain/.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "config/schema.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"


if config.get("simulate"):

    include: "rules/simulate.smk"


include: "rules/download.smk"
include: "rules/annotation.smk"


# One data path per run (normalization.exact, read from the config alone):
# in memory, or streaming in shards for ARCHS4-scale files. Both write the
# same normalize/{species}/genes.tsv, bin_reference.h5 and token corpora.
if STREAM:

    include: "rules/stream.smk"

else:

    include: "rules/quantify.smk"
    include: "rules/ingest.smk"
    include: "rules/normalize.smk"
    include: "rules/tokenize.smk"


include: "rules/qc.smk"
include: "rules/train.smk"


if PRETRAINED:

    include: "rules/pretrained.smk"


include: "rules/sweep.smk"
include: "rules/lncrna.smk"
include: "rules/species.smk"
include: "rules/samples.smk"
include: "rules/perturb.smk"
include: "rules/attention.smk"
include: "rules/finetune.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
