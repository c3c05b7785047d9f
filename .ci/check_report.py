"""Check that a Snakemake report exists and lists the report's sections.

Usage: python .ci/check_report.py results/demo/report.html
The section names are the `category=` values of the rules' report() outputs; each
must appear in the report (Snakemake embeds them in the page's data). Exit 1 if
the file is missing or a section is not listed, naming what is missing.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
report = Path(sys.argv[1])
if not report.is_file() or report.stat().st_size == 0:
    sys.exit(f"{report}: the report was not written")
sections = sorted({m for f in (root / "rules").glob("*.smk") for m in re.findall(r'(?<!sub)category="([^"]+)"', f.read_text())})
if not sections:
    sys.exit(f"{root / 'rules'}: no report categories found")
numbers = [s.split(".", 1)[0] for s in sections]
if len(set(numbers)) != len(numbers):
    sys.exit(f"report sections are numbered twice: {sections}")
html = report.read_text(errors="replace")
missing = [s for s in sections if s not in html]
if missing:
    sys.exit(f"{report}: sections not listed in the report: {missing}")
print(f"{report}: {report.stat().st_size / 1e6:.1f} MB, sections {sections}")
