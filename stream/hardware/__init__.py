"""Hardware IR and loader: ``load_hardware(path)`` reads a system YAML and its core files."""

from stream.hardware.ir import Accelerator, Core, Link, Memory, OperationalArray, Port
from stream.hardware.loader import load_core, load_hardware

__all__ = ["Accelerator", "Core", "Link", "Memory", "OperationalArray", "Port", "load_core", "load_hardware"]
