"""Print the README's quick-start command number N (1: demo and report, 2: tests), verbatim.

CI runs the commands as the README states them, so a change to either shows in CI.
Exit 2 with a message if the README has no such command.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

readme = Path(__file__).resolve().parent.parent / "README.md"
text = readme.read_text()
section = re.search(r"^## Quick start\n(.*?)^## ", text, flags=re.S | re.M)
if section is None:
    sys.exit(f"{readme}: no '## Quick start' section")
blocks = re.findall(r"^```bash\n(.*?)\n```", section.group(1), flags=re.S | re.M)
n = int(sys.argv[1])
if not 1 <= n <= len(blocks) or "\n" in blocks[n - 1].strip():
    sys.exit(f"{readme}: quick start command {n} is not one line in a ```bash block (found {len(blocks)} blocks)")
print(blocks[n - 1].strip())
