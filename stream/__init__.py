"""stream: a multi-core layer-fusion dataflow simulator for DNN accelerators."""

__version__ = "0.1.0"
