"""Figures of the workbook: distance curves, ranked lists, attention overlays, montages.

Every function takes data (DataFrames, arrays, records) and returns a matplotlib Figure;
notebooks only call these. Sections below are grouped by the part of the workbook that
first needed them.
"""
from __future__ import annotations

import matplotlib.pyplot as plt  # noqa: F401  (used by the sections below)
import numpy as np  # noqa: F401
