"""Repo Guardian: keeps a small language model fluent in a team's own code."""

from __future__ import annotations

import os

# PyTorch's OpenMP workers spin by default; on a shared 2-core machine that makes small ops
# hundreds of times slower. It only takes effect if set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
