"""The GPU: adapter, device, limits, buffers, and the shader loader with its pipeline cache.

Shaders are WGSL files in `shaders/`, one op per file. A kernel that works on weights is composed
as common.wgsl + quant_<type>.wgsl + <kernel>.wgsl; sizes go in as WGSL `override` constants, so
one module serves every shape and a pipeline is keyed by (file, type, entry point, constants).
"""
from __future__ import annotations

import functools
import os
import time
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

# (adapter name part, SMs): GPUs that run one 256-invocation prompt-product tile an SM at a time
# (GPU.mmq_slots); the first match counts
MMQ_SLOTS = (("H100 PCIe", 114), ("H100", 132), ("H200", 132))
STORAGE = None  # filled lazily: wgpu.BufferUsage flags

# snippets a kernel always needs, composed before it (runtime choices, such as the reduction of
# matvec.wgsl, are passed to pipeline() as `snippets`)
KERNEL_SNIPPETS = {"matvec": ("rope", "quant_out"), "rope_kv": ("rope",), "attention": ("quant_out",), "attn_decode": ("quant_out",),
                   "attn_merge": ("quant_out",), "matmul": ("store_rows",),
                   "matmul_q8": ("rope", "store_rows"), "argmax_embed": ("argmax", "embed"),
                   "sample": ("argmax", "embed", "argmax_embed")}


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


def _reason(e: Exception) -> str:
    """The line of a wgpu error that says what is wrong: its first line is often only
    "Validation Error", the compiler's message ("... parsing error: ...") comes further down."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    for ln in lines[1:]:
        if "error" in ln.lower():
            return ln
    return lines[0] if lines else type(e).__name__


@functools.lru_cache(maxsize=None)
def _second_type(wtype: str | None) -> str:
    """quant_<wtype>.wgsl as the second weight of a matvec.wgsl product (NA): every name it
    declares suffixed _b, its bindings moved up by 16. None: the names matvec.wgsl needs, unused."""
    if wtype is None:
        return ("const SUBS_b: u32 = 1u;\n"
                "fn dotqn_b(row: u32, jn: u32, xq: array<vec4<u32>, 8>, xs: array<vec4<f32>, 4>) -> f32 { return 0.0; }\n")
    import re

    code = _read(f"quant_{wtype}")
    names = set(re.findall(r"\bfn\s+(\w+)", code))
    names |= set(re.findall(r"\b(?:override|const)\s+(\w+)\s*:", code))
    names |= set(re.findall(r"var<storage[^>]*>\s+(\w+)\s*:", code))
    code = re.sub(r"\b(" + "|".join(sorted(names)) + r")\b", r"\1_b", code)
    return re.sub(r"@binding\((\d+)\)", lambda m: f"@binding({int(m.group(1)) + 16})", code)


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
            why = _reason(e)
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
        info = dict(adapter.info)
        # smallest subgroup the adapter may run (0: no subgroup operations); wgpu-py spells the
        # info key two ways across versions, and some drivers report a floor below what runs
        # (NVIDIA through Vulkan: 4, where every subgroup has 32 lanes), see _probe_subgroup
        self._reported_subgroup_min = (int(info.get("subgroup_min_size") or info.get("stackgroup_min_size") or 0)
                                       if "subgroup" in self.features else 0)
        self._subgroup_min = None
        # naga's runtime checks (index clamping of shader arrays, loop bounding) cost registers and
        # instructions in the inner loops (prefill took 2x as long with them on an H200). Buffer
        # accesses stay bounds-checked by the driver (robust buffer access); our kernels index
        # their own arrays within bounds by construction (tested at odd sizes).
        # DOCASSIST_SHADER_CHECKS=1 turns them back on.
        self.checked = os.environ.get("DOCASSIST_SHADER_CHECKS", "0") == "1"
        self._modules: dict = {}
        self._pipelines: dict = {}
        self.allocated = 0  # bytes of buffers we created
        self._uploads = None  # queue of (buffer, array) while begin_uploads() is on
        self.compile_seconds = 0.0   # spent creating shader modules and pipelines

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
                                 f"{_reason(e)}") from None
        self.allocated += nbytes
        if data is not None:
            if self._uploads is not None:
                self._uploads.put((buf, data))
            else:
                self.write(buf, data)
        return buf

    # -- uploads in the background (model load) ----------------------------------------------
    def begin_uploads(self, depth: int = 2):
        """From here on, buffer(..., data=) returns once the buffer exists and a worker thread
        writes the data (the native write releases the GIL), so the caller converts and repacks
        the next tensor meanwhile. At most `depth` arrays wait, so host memory holds a few
        tensors, never the model. end_uploads() waits for the writes and raises their error."""
        import queue
        import threading

        self._uploads = queue.Queue(maxsize=depth)
        self._upload_error = None

        def work(q=self._uploads):
            while True:
                item = q.get()
                if item is None:
                    return
                if self._upload_error is None:
                    try:
                        self.write(*item)
                    except Exception as e:   # reported by end_uploads
                        self._upload_error = e

        self._upload_thread = threading.Thread(target=work, name="docassist-upload", daemon=True)
        self._upload_thread.start()

    def end_uploads(self, raise_errors: bool = True):
        if self._uploads is None:
            return
        self._uploads.put(None)
        self._upload_thread.join()
        self._uploads = None
        err, self._upload_error = self._upload_error, None
        if err is not None and raise_errors:
            raise GPUMemoryError(f"uploading the model to the GPU failed: "
                                 f"{_reason(err)}") from None

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

    # -- submissions and read-back -------------------------------------------------------------
    # wgpu-py resolves a buffer map through a thread that polls the device with wait=True, which
    # waits for *every* submission made so far, and it submits an empty command buffer before
    # each map for reading. A ring of in-flight decode steps read that way drained to empty at
    # each read. Where the native functions are there, a submission returns its index and a
    # map waits for that submission alone, on the calling thread.
    def submit(self, command_buffer):
        """Submit one command buffer; returns its submission index (None without the native path)."""
        nat = self._native_map()
        if nat is None:
            self.device.queue.submit([command_buffer])
            return None
        ffi, lib, _ = nat
        return lib.wgpuQueueSubmitForIndex(self.device.queue._internal, 1,
                                           ffi.new("WGPUCommandBuffer[1]", [command_buffer._internal]))

    def read_mapped(self, buf, nbytes: int, index=None) -> bytes:
        """The first nbytes of a MAP_READ buffer once submission `index` (from submit(); None:
        everything submitted) has finished."""
        nat = self._native_map()
        size = (int(nbytes) + 3) // 4 * 4
        if nat is None:
            buf.map_sync(self.wgpu.MapMode.READ, 0, size)
            try:
                return bytes(buf.read_mapped(0, nbytes))
            finally:
                buf.unmap()
        ffi, lib, state = nat
        key = state["next"] = state["next"] + 1
        info = ffi.new("WGPUBufferMapCallbackInfo *")
        info.mode = lib.WGPUCallbackMode_AllowProcessEvents
        info.callback = state["cb"]
        info.userdata1 = ffi.cast("void *", key)
        lib.wgpuBufferMapAsync(buf._internal, lib.WGPUMapMode_Read, 0, size, info[0])
        idx = ffi.new("WGPUSubmissionIndex *", index) if index is not None else ffi.NULL
        dev = self.device._internal
        done = state["done"]
        while key not in done:   # the callback runs inside a poll (ours, or wgpu-py's thread's)
            lib.wgpuDevicePoll(dev, 1, idx)
        status = done.pop(key)
        if status != lib.WGPUMapAsyncStatus_Success:
            raise GPUError(f"reading a result back from the GPU failed (map status {status})")
        try:
            ptr = lib.wgpuBufferGetConstMappedRange(buf._internal, 0, size)
            return bytes(ffi.buffer(ptr, nbytes))
        finally:
            lib.wgpuBufferUnmap(buf._internal)

    @functools.lru_cache(maxsize=1)
    def _native_map(self):
        if os.environ.get("DOCASSIST_NATIVE_MAP", "1") == "0":
            return None
        try:
            from wgpu.backends.wgpu_native._api import ffi, lib

            state = {"next": 0, "done": {}}

            @ffi.callback("void(WGPUMapAsyncStatus, WGPUStringView, void *, void *)")
            def cb(status, message, u1, u2):
                state["done"][int(ffi.cast("uintptr_t", u1))] = int(status)

            state["cb"] = cb
            for f in ("wgpuQueueSubmitForIndex", "wgpuBufferMapAsync", "wgpuDevicePoll",
                      "wgpuBufferGetConstMappedRange", "wgpuBufferUnmap"):
                getattr(lib, f)
            return ffi, lib, state
        except (ImportError, AttributeError):
            return None

    # -- shaders ---------------------------------------------------------------------------
    def module(self, kernel: str, wtype: str | None = None, snippets: tuple = ()):
        """common.wgsl + quant_<wtype>.wgsl + each snippet (given, then the kernel's own) +
        <kernel>.wgsl, compiled once."""
        key = (kernel, wtype, snippets)
        mod = self._modules.get(key)
        if mod is None:
            parts = [_read("common")]
            types = wtype.split("+") if wtype else []
            if types:
                parts.append(_read(f"quant_{types[0]}"))
            if kernel == "matvec":    # the second weight type of a two-weight product, or a stub
                parts.append(_second_type(types[1] if len(types) > 1 else None))
            parts += [_read(s) for s in snippets + KERNEL_SNIPPETS.get(kernel, ())]
            parts.append(_read(kernel))
            try:
                mod = self.create_module("\n".join(parts), f"{kernel}:{wtype}")
            except Exception as e:
                raise GPUError(f"shader {kernel} ({wtype}) failed to compile on this adapter: "
                               f"{_reason(e)}") from None
            self._modules[key] = mod
        return mod

    def create_module(self, code: str, label: str):
        """A shader module of `code` compiled as the engine's kernels are (without naga's runtime
        checks unless self.checked): benchmarks that time raw instruction rates use it too, or
        they would time the loop bounding's instructions."""
        if self.checked:
            return self.device.create_shader_module(code=code, label=label)
        from wgpu.backends.wgpu_native._api import GPUShaderModule, ffi, lib, libf, new_struct_p, to_c_string_view

        src = new_struct_p("WGPUShaderSourceWGSL *", code=to_c_string_view(code))
        src[0].chain.next = ffi.NULL
        src[0].chain.sType = lib.WGPUSType_ShaderSourceWGSL
        desc = new_struct_p("WGPUShaderModuleDescriptor *", nextInChain=ffi.cast("WGPUChainedStruct *", src),
                            label=to_c_string_view(label))
        mid = libf.wgpuDeviceCreateShaderModuleTrusted(self.device._internal, desc, 0)  # 0: no runtime checks
        if mid == ffi.NULL:
            raise RuntimeError("shader module creation failed")
        return GPUShaderModule(label, mid, self.device)

    def pipeline(self, kernel: str, wtype: str | None = None, entry: str = "main", snippets: tuple = (),
                 **constants):
        key = (kernel, wtype, entry, snippets, tuple(sorted(constants.items())))
        pipe = self._pipelines.get(key)
        if pipe is None:
            t0 = time.perf_counter()
            consts = {k: (float(v) if isinstance(v, float) else int(v)) for k, v in constants.items()}
            try:
                pipe = self.device.create_compute_pipeline(
                    layout="auto",
                    compute={"module": self.module(kernel, wtype, snippets), "entry_point": entry, "constants": consts},
                    label=f"{kernel}:{wtype}:{entry}")
            except Exception as e:
                raise GPUError(f"pipeline {kernel}/{entry} ({wtype}) failed on this adapter: "
                               f"{str(e).splitlines()[0]}") from None
            self._pipelines[key] = pipe
            self.compile_seconds += time.perf_counter() - t0
        return pipe

    def dispatch_all(self, cp, calls):
        """set_pipeline, set_bind_group(0), dispatch for each (pipeline, bind group, grid) in one
        compute pass. Straight to the native functions where the wgpu-py build exposes them: a
        7B decode step has ~290 dispatches, and the Python wrappers cost ~2 us of each."""
        fast = self._native_calls()
        if fast is None:
            for pipe, bg, g in calls:
                cp.set_pipeline(pipe)
                cp.set_bind_group(0, bg)
                cp.dispatch_workgroups(*g)
            return
        sp, sb, dw, null = fast
        h = cp._internal
        for pipe, bg, g in calls:
            sp(h, pipe._internal)
            sb(h, 0, bg._internal, 0, null)
            dw(h, g[0], g[1], g[2])

    @functools.lru_cache(maxsize=1)
    def _native_calls(self):
        try:
            from wgpu.backends.wgpu_native._api import ffi, lib

            return (lib.wgpuComputePassEncoderSetPipeline, lib.wgpuComputePassEncoderSetBindGroup,
                    lib.wgpuComputePassEncoderDispatchWorkgroups, ffi.NULL)
        except (ImportError, AttributeError):
            return None

    @property
    def subgroup_min(self) -> int:
        """Lanes every subgroup is guaranteed to have here (0: no subgroup operations)."""
        if self._subgroup_min is None:
            self._subgroup_min = self._reported_subgroup_min
            vendor = int(dict(self.info).get("vendor_id", 0) or 0)
            if self._subgroup_min and vendor in (0x10DE, 0x1002):   # NVIDIA (32), AMD (32 or 64)
                self._subgroup_min = max(self._subgroup_min, self._probe_subgroup())
        return self._subgroup_min

    def _probe_subgroup(self) -> int:
        """The smallest subgroup size seen across a 256-wide workgroup."""
        code = ("@group(0) @binding(0) var<storage, read_write> O: array<atomic<u32>>;\n"
                "@compute @workgroup_size(256) fn main(@builtin(subgroup_size) n: u32) { atomicMin(&O[0], n); }")
        try:
            mod = self.device.create_shader_module(code=code, label="subgroup-probe")
            pipe = self.device.create_compute_pipeline(layout="auto", compute={"module": mod, "entry_point": "main"})
            out = self.buffer(16, data=np.full(4, 0xFFFFFFFF, np.uint32), label="subgroup-probe")
            enc = self.device.create_command_encoder()
            cp = enc.begin_compute_pass()
            cp.set_pipeline(pipe)
            cp.set_bind_group(0, self.bind(pipe, {0: out}))
            cp.dispatch_workgroups(1)
            cp.end()
            self.device.queue.submit([enc.finish()])
            n = int(self.read(out, 4, np.uint32)[0])
            out.destroy()
            self.allocated -= 16
            return n if 0 < n <= 128 else 0
        except Exception:
            return 0

    def matvec_config(self) -> dict:
        """Decode-product shape for this adapter: lanes per row, rows per lane group, workgroup
        size, and the reduction. Subgroup shuffles where every subgroup holds a whole row group
        (NVIDIA, AMD: 32 or more); shared memory elsewhere (any WebGPU adapter). Override for
        benchmarks: DOCASSIST_MATVEC=lanes,rows,wg,subgroup|workgroup."""
        lanes, rows, wg = 32, 4, 256
        reduce = "reduce_subgroup" if self.subgroup_min >= lanes else "reduce_workgroup"
        env = os.environ.get("DOCASSIST_MATVEC")
        if env:
            a = env.split(",")
            lanes, rows, wg = int(a[0]), int(a[1]), int(a[2])
            reduce = "reduce_" + a[3] if len(a) > 3 else reduce
        if reduce == "reduce_subgroup" and self.subgroup_min < lanes:
            reduce = "reduce_workgroup"
        return {"LANES": lanes, "R": rows, "WG": wg, "reduce": reduce}

    def mmq_slots(self) -> int:
        """Prompt-product tiles (matmul_q8.wgsl, 64 x 128, 256 invocations) the adapter runs at
        once: its SM count on the NVIDIA parts where one such tile an SM was measured (an H200:
        a product's time steps in rounds of 132 tiles); 0 (unknown) elsewhere, which leaves every
        product whole. DOCASSIST_MMQ_SLOTS overrides (benchmarks, tests)."""
        env = os.environ.get("DOCASSIST_MMQ_SLOTS")
        if env:
            return int(env)
        name = str(dict(self.info).get("device", ""))
        for part, sms in MMQ_SLOTS:
            if part in name:
                return sms
        return 0

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
            "subgroup_lanes": self.subgroup_min,
            "decode_product": self.matvec_config(),
            "shader_runtime_checks": self.checked,
            "limits": {k: int(self.limits[k]) for k in _LIMITS if k in self.limits},
        }


@functools.lru_cache(maxsize=1)
def get_gpu() -> GPU:
    return GPU()


def adapter_report() -> dict:
    """Adapter name, backend, driver, features and limits (for `docassist doctor`)."""
    return get_gpu().report()
