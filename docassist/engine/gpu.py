"""The GPU: adapter, device, limits, buffers, and the shader loader with its pipeline cache.

Shaders are WGSL files in `shaders/`, one op per file. A kernel that works on weights is composed
as common.wgsl + quant_<type>.wgsl + <kernel>.wgsl; sizes go in as WGSL `override` constants, so
one module serves every shape and a pipeline is keyed by (file, type, entry point, constants).
"""
from __future__ import annotations

import functools
import os
from importlib import resources
from pathlib import Path

import numpy as np

from docassist.errors import GPUError, GPUMemoryError

# Limits we ask for: the adapter's own values (WebGPU's defaults are far below what GPUs have).
_LIMITS = ("max-storage-buffer-binding-size", "max-buffer-size", "max-storage-buffers-per-shader-stage",
           "max-compute-workgroup-storage-size", "max-compute-invocations-per-workgroup",
           "max-compute-workgroup-size-x", "max-compute-workgroups-per-dimension",
           "max-bind-groups", "max-bindings-per-bind-group")
_FEATURES = ("shader-f16", "subgroup", "timestamp-query")

STORAGE = None  # filled lazily: wgpu.BufferUsage flags


def shader_dir() -> Path:
    env = os.environ.get("DOCASSIST_SHADERS")
    if env:
        return Path(env)
    try:
        p = Path(str(resources.files("docassist.shaders")))
        if (p / "common.wgsl").exists():
            return p
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parents[2] / "shaders"


@functools.lru_cache(maxsize=None)
def _read(name: str) -> str:
    return (shader_dir() / f"{name}.wgsl").read_text()


class GPU:
    """One adapter and device for the process; pipelines cached by key."""

    def __init__(self):
        if not os.environ.get("XDG_RUNTIME_DIR"):
            # Mesa's window-system probing complains on stderr without one; we draw nothing
            import tempfile

            os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="docassist-rt-")
        try:
            import wgpu
        except Exception as e:  # ImportError or a missing native library
            raise GPUError(f"the WebGPU runtime (wgpu) cannot be loaded: {e}") from None
        self.wgpu = wgpu
        try:
            adapter = wgpu.gpu.request_adapter_sync(power_preference="high-performance")
        except Exception as e:
            adapter = None
            why = str(e).splitlines()[0] if str(e) else type(e).__name__
        else:
            why = "none found"
        if adapter is None:
            raise GPUError(f"no GPU adapter available ({why}); install a Vulkan, Metal or D3D12 driver "
                           "(on Linux without a GPU: apt-get install mesa-vulkan-drivers)")
        self.adapter = adapter
        self.features = [f for f in _FEATURES if f in adapter.features]
        limits = {k: adapter.limits[k] for k in _LIMITS if k in adapter.limits}
        try:
            self.device = adapter.request_device_sync(required_features=self.features, required_limits=limits)
        except Exception as e:
            raise GPUError(f"could not open the GPU device: {str(e).splitlines()[0]}") from None
        self.limits = self.device.limits
        self.max_binding = int(self.limits["max-storage-buffer-binding-size"])
        self.max_buffer = int(self.limits["max-buffer-size"])
        self.info = adapter.info
        self._modules: dict = {}
        self._pipelines: dict = {}
        self.allocated = 0  # bytes of buffers we created

    # -- buffers ---------------------------------------------------------------------------
    def buffer(self, nbytes: int, usage=None, label: str = "", data=None):
        wgpu = self.wgpu
        if usage is None:
            usage = wgpu.BufferUsage.STORAGE | wgpu.BufferUsage.COPY_DST | wgpu.BufferUsage.COPY_SRC
        nbytes = max(16, (int(nbytes) + 15) // 16 * 16)
        if nbytes > self.max_buffer:
            raise GPUMemoryError(f"a {nbytes / 2**20:.0f} MiB buffer ({label}) exceeds the adapter's "
                                 f"maximum buffer size ({self.max_buffer / 2**20:.0f} MiB)")
        try:
            buf = self.device.create_buffer(size=nbytes, usage=usage, label=label)
        except Exception as e:  # wgpu raises on allocation failure (out-of-memory or validation)
            raise GPUMemoryError(f"out of GPU memory allocating {nbytes / 2**20:.0f} MiB for {label} "
                                 f"({self.allocated / 2**30:.2f} GiB already in use): "
                                 f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
        self.allocated += nbytes
        if data is not None:
            self.write(buf, data)
        return buf

    def write(self, buf, data, offset: int = 0):
        arr = np.ascontiguousarray(data)
        mv = memoryview(arr).cast("B")
        n = len(mv)
        if n % 4:
            pad = np.zeros(n + (-n) % 4, np.uint8)
            pad[:n] = np.frombuffer(mv, np.uint8)
            mv = memoryview(pad)
        self.device.queue.write_buffer(buf, offset, mv)

    def read(self, buf, nbytes: int, dtype=np.float32, offset: int = 0) -> np.ndarray:
        raw = self.device.queue.read_buffer(buf, offset, nbytes)
        return np.frombuffer(raw, dtype=dtype).copy()

    # -- shaders ---------------------------------------------------------------------------
    def module(self, kernel: str, wtype: str | None = None):
        key = (kernel, wtype)
        mod = self._modules.get(key)
        if mod is None:
            parts = [_read("common")]
            if wtype is not None:
                parts.append(_read(f"quant_{wtype}"))
            parts.append(_read(kernel))
            try:
                mod = self.device.create_shader_module(code="\n".join(parts), label=f"{kernel}:{wtype}")
            except Exception as e:
                raise GPUError(f"shader {kernel} ({wtype}) failed to compile on this adapter: "
                               f"{str(e).splitlines()[0]}") from None
            self._modules[key] = mod
        return mod

    def pipeline(self, kernel: str, wtype: str | None = None, entry: str = "main", **constants):
        key = (kernel, wtype, entry, tuple(sorted(constants.items())))
        pipe = self._pipelines.get(key)
        if pipe is None:
            consts = {k: (float(v) if isinstance(v, float) else int(v)) for k, v in constants.items()}
            try:
                pipe = self.device.create_compute_pipeline(
                    layout="auto",
                    compute={"module": self.module(kernel, wtype), "entry_point": entry, "constants": consts},
                    label=f"{kernel}:{wtype}:{entry}")
            except Exception as e:
                raise GPUError(f"pipeline {kernel}/{entry} ({wtype}) failed on this adapter: "
                               f"{str(e).splitlines()[0]}") from None
            self._pipelines[key] = pipe
        return pipe

    def bind(self, pipeline, buffers: dict):
        """A bind group for binding index -> buffer (created once, at load time)."""
        entries = [{"binding": i, "resource": {"buffer": b, "offset": 0, "size": b.size}}
                   for i, b in sorted(buffers.items())]
        return self.device.create_bind_group(layout=pipeline.get_bind_group_layout(0), entries=entries)

    def report(self) -> dict:
        info = dict(self.info)
        return {
            "adapter": info.get("device", ""),
            "vendor": info.get("vendor", ""),
            "architecture": info.get("architecture", ""),
            "driver": info.get("description", ""),
            "backend": info.get("backend_type", ""),
            "adapter_type": info.get("adapter_type", ""),
            "features": sorted(str(f) for f in self.adapter.features),
            "enabled_features": list(self.features),
            "limits": {k: int(self.limits[k]) for k in _LIMITS if k in self.limits},
        }


@functools.lru_cache(maxsize=1)
def get_gpu() -> GPU:
    return GPU()


def adapter_report() -> dict:
    """Adapter name, backend, driver, features and limits (for `docassist doctor`)."""
    return get_gpu().report()
