"""Hardware reads (NVML, psutil) behind one sampler interface. Imports no textual."""
