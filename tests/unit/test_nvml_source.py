"""The NVML reader over a fake NVML: one GPU, two, none, failing fields, a GPU that vanishes."""

from tui.monitor.fake import FakeGpu, FakeNvml
from tui.monitor.nvml import NvmlSource, process_vram_bytes
from tui.monitor.sampler import Sampler

GiB = 1024**3


def test_one_gpu_all_fields_and_the_engine_marked():
    nvml = FakeNvml([FakeGpu(processes=[(10, 3 * GiB), (11, GiB)])])
    gpus, status = NvmlSource(nvml, process_name=nvml.process_name).read(engine_pid=10)
    assert status == "" and len(gpus) == 1
    g = gpus[0]
    assert g.memory_total_bytes == 24 * GiB and g.power_w == 215 and g.pcie_width == 16
    assert g.engine_bytes() == 3 * GiB
    assert [p.pid for p in g.processes] == [10, 11] and g.processes[0].is_engine


def test_two_gpus_and_per_process_vram():
    nvml = FakeNvml([FakeGpu(processes=[(7, 5 * GiB)]), FakeGpu(name="B", processes=[(7, 2 * GiB)])])
    assert process_vram_bytes(7, NvmlSource(nvml)) == (5 * GiB, 2 * GiB)
    assert process_vram_bytes(8, NvmlSource(nvml)) == (0, 0)


def test_no_driver_is_a_status_not_an_exception():
    gpus, status = NvmlSource(FakeNvml(no_driver=True)).read()
    assert gpus == () and "no NVIDIA GPU" in status


def test_failing_fields_are_none_and_the_rest_stays():
    nvml = FakeNvml([FakeGpu(failing={"fan", "power", "pcie_throughput", "processes"})])
    (g,), _ = NvmlSource(nvml).read()
    assert g.fan_percent is None and g.power_w is None and g.pcie_rx_kib_s is None
    assert g.processes == ()
    assert g.temperature_c == 61 and g.memory_used_bytes == GiB


def test_a_gpu_falling_off_the_bus_between_samples():
    nvml = FakeNvml([FakeGpu(), FakeGpu(name="flaky", vanish_after=1)])
    source = NvmlSource(nvml)
    first, _ = source.read()
    assert first[1].name == "flaky"
    second, status = source.read()
    assert status == "" and len(second) == 2
    assert "lost" in second[1].name and second[1].memory_used_bytes is None
    assert second[0].memory_used_bytes == GiB


def test_real_sampler_on_this_machine_never_raises():
    sample = Sampler().sample()
    assert sample.host.ram_total_bytes and sample.host.ram_total_bytes > 0
    assert sample.gpus or sample.gpu_status


def test_memory_only_reads_names_and_memory_and_nothing_that_samples():
    """`fit` needs the free VRAM fast: no PCIe counters (each samples for ~20 ms), no processes."""
    nvml = FakeNvml([FakeGpu(used=5 * GiB, processes=[(10, 3 * GiB)]), FakeGpu(name="B")])
    asked: list[str] = []
    spy = type("Spy", (), {"__getattr__": lambda self, name: (asked.append(name), getattr(nvml, name))[1]})()
    gpus, status = NvmlSource(spy).read(memory_only=True)
    assert status == "" and [g.name for g in gpus] == ["NVIDIA GeForce RTX 3090", "B"]
    assert gpus[0].memory_free_bytes == 19 * GiB and gpus[0].processes == ()
    assert not [a for a in asked if "Pcie" in a or "Processes" in a or "Power" in a]
