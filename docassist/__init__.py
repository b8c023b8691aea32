"""docassist: an offline document assistant with a Llama engine on the GPU through WebGPU."""

__version__ = "0.1.0"
