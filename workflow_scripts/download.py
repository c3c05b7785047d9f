"""Rule download: fetch a file over HTTP, resuming partial transfers; verify its sha256; rename atomically."""
from generain import download
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(sm.log[0], download.download, url=sm.params.url, dest=sm.output[0], sha256=sm.params.sha256)
