"""What a training GPU is doing: utilisation, memory, temperature and power, from NVML.

NVML (``nvidia-ml-py``, imported as ``pynvml``) reads the driver's counters without touching the
CUDA context, in well under a millisecond. Each process samples its own GPU a few times a
minute (the session asks) and the leader gathers them, so the stats panel shows every GPU of the
run, on one machine or several. Without CUDA nothing here is used; without a driver or the
package, ``GpuMonitor.sample`` answers None and the panel shows no GPU rows.

NVML numbers its GPUs its own way (``CUDA_VISIBLE_DEVICES`` does not apply to it), so a
process's GPU is found by its UUID, which CUDA and NVML both report.
"""

from __future__ import annotations

from typing import Any

import torch

# a sample: {"index", "name", "util", "mem_used_mb", "mem_total_mb", "temp_c", "power_w", "power_limit_w"}
GpuSample = dict[str, Any]


class GpuMonitor:
    def __init__(self, device: torch.device):
        self.device = device
        self.nvml: Any = None
        self.handle: Any = None
        self.failed = device.type != "cuda"

    def _open(self) -> bool:
        if self.failed:
            return False
        if self.handle is not None:
            return True
        try:
            import pynvml

            pynvml.nvmlInit()
            index = self.device.index if self.device.index is not None else torch.cuda.current_device()
            uuid = str(torch.cuda.get_device_properties(index).uuid)
            try:
                self.handle = pynvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith("GPU-") else f"GPU-{uuid}")
            except pynvml.NVMLError:
                self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            self.nvml, self.index = pynvml, index
            return True
        except Exception:  # no package, no driver, an old driver: no GPU rows, training goes on
            self.failed = True
            return False

    def sample(self) -> GpuSample | None:
        if not self._open():
            return None
        nvml, h = self.nvml, self.handle

        def read(fn: Any, *args: Any) -> Any:
            try:
                return fn(h, *args)
            except nvml.NVMLError:  # a counter this GPU does not have
                return None

        util = read(nvml.nvmlDeviceGetUtilizationRates)
        mem = read(nvml.nvmlDeviceGetMemoryInfo)
        power = read(nvml.nvmlDeviceGetPowerUsage)
        limit = read(nvml.nvmlDeviceGetEnforcedPowerLimit)
        name = read(nvml.nvmlDeviceGetName)
        return {
            "index": self.index,
            "name": name.decode() if isinstance(name, bytes) else name,
            "util": None if util is None else util.gpu,
            "mem_used_mb": None if mem is None else mem.used / 2**20,
            "mem_total_mb": None if mem is None else mem.total / 2**20,
            "temp_c": read(nvml.nvmlDeviceGetTemperature, nvml.NVML_TEMPERATURE_GPU),
            "power_w": None if power is None else power / 1000,
            "power_limit_w": None if limit is None else limit / 1000,
        }
