"""The four reproduced papers, one package each, on the shared core.

=================  ======================================================  ==================
package            paper                                                   notebook
=================  ======================================================  ==================
``bcloss``         batch-contrastive loss (001)                            ``01_bcloss``
``maskreid``       MaskReID, short ICME (000) and long (003) versions      ``02_maskreid``
``sal``            self-attention learning (004)                           ``03_sal``
``magnifiernet``   MagnifierNet (002)                                      ``04_magnifiernet``
=================  ======================================================  ==================

Each package has the same files: ``__init__`` (citation, table -> notebook cell map),
``config`` (a frozen config whose defaults ARE the paper's recipe), ``model`` (the
registered network), ``experiments`` (variants as data, stages, training) and ``tables``
(the published cells each variant fills). ``common`` holds what they share (data from a
config, one variant trained and evaluated through the run store). A notebook starts with
``from reidnb.papers import maskreid as paper``. Nothing below ``papers`` imports it.
"""
from __future__ import annotations

import importlib

__all__ = ["PAPERS", "import_all"]

#: package name -> notebook id.
PAPERS: dict[str, str] = {"bcloss": "01_bcloss", "maskreid": "02_maskreid", "sal": "03_sal",
                          "magnifiernet": "04_magnifiernet"}


def import_all() -> None:
    """Import every paper package (registers their networks and config classes)."""
    for name in PAPERS:
        importlib.import_module(f"{__name__}.{name}")
