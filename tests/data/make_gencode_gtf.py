"""Write tests/data/gencode.v36.genes.gtf.gz: GENCODE v36 gene records as GTF, from real coordinates.

Source: Debian r-bioc-tcgabiolinksgui.data 1.18.0+dfsg-1 (the package
resources/build_resources.py builds annotation/genes.tsv from), file
usr/lib/R/site-library/TCGAbiolinksGUI.data/data/gencode.v36.annotation.genes.rda:
a GRanges of the 60,660 GENCODE v36 genes (seqnames, ranges, strand;
elementMetadata gene_id, gene_type, gene_name, hgnc_id, level). Every record
becomes one GTF `gene` line (columns 2, 6 and 8 as GENCODE writes them:
source GENCODE, score and frame "."), in the GRanges' order (chr1..chrM, by
start). tests/test_annotation.py reads it back with the workflow's GTF reader
and compares it with annotation/genes.tsv.

    apt-get download r-bioc-tcgabiolinksgui.data=1.18.0+dfsg-1
    dpkg-deb -x r-bioc-tcgabiolinksgui.data_1.18.0+dfsg-1_all.deb x
    pip install rdata
    python tests/data/make_gencode_gtf.py x/usr/lib/R/site-library/TCGAbiolinksGUI.data/data/gencode.v36.annotation.genes.rda
"""
import gzip
import sys
import warnings
from pathlib import Path

import numpy as np
import rdata


def rle(obj) -> np.ndarray:
    return np.repeat(np.asarray(obj.values, dtype=object), np.asarray(obj.lengths))


def main(rda: str) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Missing constructor")
        g = rdata.read_rda(rda)["gencode.v36.annotation.genes"]
    meta = g.elementMetadata.listData
    chrom, strand = rle(g.seqnames), rle(g.strand)
    start = np.asarray(g.ranges.start, dtype=np.int64)
    end = start + np.asarray(g.ranges.width, dtype=np.int64) - 1
    out = Path(__file__).with_name("gencode.v36.genes.gtf.gz")
    with gzip.GzipFile(out, "wb", mtime=0) as raw:
        raw.write(b"##description: GENCODE v36 gene records from TCGAbiolinksGUI.data 1.18.0 (tests/data/make_gencode_gtf.py)\n")
        for i in range(len(start)):
            attrs = [f'gene_id "{meta["gene_id"][i]}"', f'gene_type "{meta["gene_type"][i]}"',
                     f'gene_name "{meta["gene_name"][i]}"', f'level {int(meta["level"][i])}']
            hgnc = meta["hgnc_id"][i]
            if isinstance(hgnc, str) and hgnc:
                attrs.append(f'hgnc_id "{hgnc}"')
            raw.write(f"{chrom[i]}\tGENCODE\tgene\t{start[i]}\t{end[i]}\t.\t{strand[i]}\t.\t{'; '.join(attrs)};\n"
                      .encode())
    print(f"{out}: {len(start)} gene records")


if __name__ == "__main__":
    main(sys.argv[1])
