"""Where to run: CUDA with float16 when CTranslate2 sees a GPU, else CPU with int8."""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)


class DeviceUnavailable(RuntimeError):
    """A GPU was requested but none is visible (and no fallback was allowed)."""


@dataclass(frozen=True)
class DeviceChoice:
    device: str
    compute_type: str


def cuda_devices() -> int:
    import ctranslate2

    try:
        return int(ctranslate2.get_cuda_device_count())
    except Exception:  # noqa: BLE001 - a broken CUDA install counts as no GPU
        return 0


def choose_device(requested: str = "auto", compute_type: str | None = None, fallback: bool = False) -> DeviceChoice:
    """Resolve 'auto' | 'cpu' | 'cuda' into a device and precision; 'cuda' without a GPU is an error unless `fallback`."""
    if requested not in ("auto", "cpu", "cuda"):
        raise DeviceUnavailable(f"unknown device '{requested}' (auto, cpu or cuda)")
    has_gpu = requested != "cpu" and cuda_devices() > 0
    if requested == "cuda" and not has_gpu:
        if not fallback:
            raise DeviceUnavailable("device 'cuda' requested but CTranslate2 sees no CUDA GPU; use --device cpu or --fallback-to-cpu")
        log.warning("no CUDA GPU visible: falling back to CPU (int8)")
    device = "cuda" if has_gpu else "cpu"
    return DeviceChoice(device, compute_type or ("float16" if device == "cuda" else "int8"))
