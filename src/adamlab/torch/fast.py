"""Dispatch of Adam/AdamW steps to the fused kernels (stub: filled in next)."""

from __future__ import annotations


def check_available() -> None:
    raise RuntimeError("fused=True: no fused kernel is available yet")


def adam_step(opt, group, core_opt, params, *, required=False):
    return params
