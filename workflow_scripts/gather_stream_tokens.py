"""Rule gather_stream_tokens: token shards and index of the streaming path."""
from generain.stages import stream
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], stream.gather_stream_tokens,
    parts=list(sm.input.parts), validation_fraction=sm.params.validation_fraction, seed=sm.params.seed,
    out_shards=sm.output.shards, out_index=sm.output.index,
)
