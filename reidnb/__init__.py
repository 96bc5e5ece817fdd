"""reidnb: a notebook-driven reproduction workbook for deep person re-identification.

Papers reproduced (see ``notebooks/`` and DESIGN.md): MaskReID (ICME short and long
versions), the batch-contrastive loss, MagnifierNet and self-attention learning (SAL).
"""
__version__ = "0.1.0"
