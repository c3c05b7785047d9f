"""One module per workflow stage: paths and typed settings in, files out.

Each rule's script in ``workflow_scripts/`` imports its stage module and
makes one call; nothing here reads Snakemake objects or the config file, so
every stage can also be run from Python or a notebook. The algorithms live in
the domain modules one level up (:mod:`generain.normalize`,
:mod:`generain.tokenize`, :mod:`generain.species`, ...).

Data flow, with the rules of each stage:

=================  ==========================================================
stage module       rules
=================  ==========================================================
``annotation``     refresh_gene_table, read_gtf, select_orthologs
``quantify``       read_sample_sheet, kallisto_quant, gather_kallisto
                   (FASTQ datasets; kallisto_index is a shell rule)
``ingest``         ingest_counts
``qc``             qc_samples
``normalize``      normalize_counts, fit_bin_reference, transform_expression
``stream``         plan_shards, scan_shard, merge_stream, stream_vocab,
                   bin_shard, gather_stream_tokens, gather_pseudo_species
                   (ARCHS4 scale, instead of ingest, normalize, tokenize)
``tokenize``       tokenize_samples, make_pseudo_species
``pretrained``     import_vocabulary, import_model (config ``pretrained``:
                   published models instead of training)
``train``          train_model
``embed``          export_embeddings
``sweep``          make_baseline, catalogue_properties, sweep_properties,
                   gather_sweep, compare_embeddings
``lncrna``         predict_lncrna
``species``        make_comparison_corpus, align_species, compare_species
``samples``        embed_samples
``perturb``        perturb_genes
``attention``      attention_heads
``finetune``       finetune_genes, finetune_samples
``summary``        summarize_run
=================  ==========================================================
"""
