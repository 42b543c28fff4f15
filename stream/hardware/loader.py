"""Read an accelerator (a system file plus one file per core) into the hardware IR.

Three forms load, each decided per file:

* **classic** (Stream 2025 / ZigZag 2) system files: ``cores: {id: file}``,
  ``offchip_core: file``, ``core_connectivity: ["0, 1", ...]`` with one global
  ``bandwidth`` and ``unit_energy_cost``. Classic memories give ``r_bw``/``w_bw`` and
  port *counts* (``r_port``, ``w_port``, ``rw_port``) plus one ``ports`` dict per
  operand mapping directions to port names (``fh: w_port_1``).
* **2026** system files: ``offchip_core_id``, ``core_coordinates`` and
  ``core_connectivity: [{type: link|bus, cores: [...], bandwidth: N}]``; memories list
  named ports with ``bandwidth_min``/``bandwidth_max`` and an ``allocation``.
* **ours**: the 2026 form with ``version: 1`` at the top of the file, plus the optional
  system key ``clock_hz`` (default 1 GHz; also accepted in 2026 files). Here ``name``
  (and a core's ``type``) are required and the field's extras that would be silently
  ignored (``mem_type``) or that belong to the classic form are refused.

Every form rejects unknown keys (the field's forms accept every key their files use) and
duplicate keys. Units are the field's: sizes in bits, bandwidths in bits per cycle,
``r_cost``/``w_cost`` in pJ per full-width access, ``unit_energy_cost`` in pJ per bit.

Interpretations of the classic form:

* The off-chip core gets id ``max(core ids) + 1`` and, as classic Stream assumed, every
  other core reaches it directly: after the listed links we add one link per core to
  the off-chip core, with the bandwidth of the DRAM's widest read port and the global
  ``unit_energy_cost``.
* Ports: ``r_port_i`` reads at ``r_bw``, ``w_port_i`` writes at ``w_bw``, ``rw_port_i``
  does both at ``max(r_bw, w_bw)``. The access granularity (``Port.bw_min``) is
  ``min_r_granularity``/``min_w_granularity`` when given, else the port's bandwidth; an
  ``rw`` port reads at the one and writes at the other.

Both forms: a port's ``bandwidth_min`` defaults to its ``bandwidth_max``; the core named
by ``offchip_core_id`` is the off-chip core (no other core may be of type offchip);
core files resolve relative to the system file, then ``<dir>/cores/<basename>``, then
``<dir>/<basename>`` (the field's files point at paths of their own repository).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any


from stream.hardware.ir import (
    DEFAULT_PREFETCH_DEPTH, DIRECTIONS, MEMORY_OPERANDS, Accelerator, Core, Link, Memory, OperationalArray, Port,
)
from stream.spec import (
    ANY_VALUE, Where, check_keys, expect_bool, expect_dict, expect_int, expect_list, expect_number, expect_str,
    load_yaml, split_pair, unmodelled, unmodelled_note,
)

CORE_TYPES = {
    "compute": "compute", "zigzag.compute": "compute",
    "offchip": "offchip", "zigzag.offchip": "offchip",
    "memory": "memory", "zigzag.memory": "memory",
}
PORT_KINDS = ("read", "write", "read_write")
WRITE_DIRECTIONS = ("fh", "fl")  # data written into this memory; tl/th read out of it
OUTPUT_ONLY_DIRECTIONS = ("fl", "th")

CLASSIC_MEMORY_KEYS = ("r_bw", "w_bw", "r_port", "w_port", "rw_port")
MEMORY_OPTIONAL = ("area", "latency", "auto_cost_extraction", "force_double_buffering")
MEMORY_REQUIRED = ("size", "r_cost", "w_cost", "operands", "ports", "served_dimensions")
ARRAY_REQUIRED = ("dimensions", "sizes", "unit_energy")
ARRAY_OPTIONAL = ("unit_area", "input_precision", "systolic_dimensions")

# Keys the field's files carry that no part of our model uses: each is read (and checked),
# and reported in one warning line per file when its value would change the field's result.
# The value is the behaviour we model (ANY_VALUE: reported whenever present).
UNMODELLED_SYSTEM = {"technology_node": ANY_VALUE}  # no cost model scales with the node
UNMODELLED_CORE = {"operand_precision": ANY_VALUE}  # the workload's precisions are the ones used
# no area model; precisions: the workload's; systolic_dimensions (zigzag-dse 3.9's own cores):
# ZigZag's systolic drain term, not in our cost model yet
UNMODELLED_ARRAY = {"unit_area": ANY_VALUE, "input_precision": ANY_VALUE, "systolic_dimensions": ANY_VALUE}
UNMODELLED_MEMORY = {
    "area": ANY_VALUE,  # no area model
    "latency": ANY_VALUE,  # accesses cost bandwidth, not a fixed latency
    "mem_type": ANY_VALUE,  # the field's CACTI hint; costs come from r_cost/w_cost
    "auto_cost_extraction": False,  # true asks CACTI for costs; ours come from the file
    "force_double_buffering": False,  # double-buffered operands are not modelled
}


# ---------------------------------------------------------------------------------------
# system files


def load_hardware(path: str | os.PathLike) -> Accelerator:
    """Load a system file (any of the three forms) and every core file it names."""
    data, where = load_yaml(path, unique_keys=True)
    expect_dict(data, where)
    if "version" in data:
        _check_version(data, where)
        return _load_system(data, where, ours=True)
    links = data.get("core_connectivity")
    classic = "offchip_core" in data or "bandwidth" in data or (
        isinstance(links, list) and any(isinstance(entry, str) for entry in links))
    return _load_classic_system(data, where) if classic else _load_system(data, where, ours=False)


def _load_system(data: dict, where: Where, ours: bool) -> Accelerator:
    """2026 form (and ours when ``ours``)."""
    optional = ("name", "unit_energy_cost", "core_coordinates", "core_memory_sharing", "technology_node", "clock_hz",
                "default_mapping")
    required = ("cores", "offchip_core_id", "core_connectivity")
    if ours:
        check_keys(data, where, required=("version", "name") + required, optional=optional)
    else:
        check_keys(data, where, required=required, optional=optional)
    name = _name(data, where, Path(where.file).stem)
    node = data.get("technology_node")
    if node is not None and (isinstance(node, bool) or not isinstance(node, (str, int, float))):
        raise (where / "technology_node").error("a node name such as n3 or 28", node)
    clock_hz = _number(data.get("clock_hz", 1e9), where / "clock_hz", positive=True)
    unit_energy = _number(data.get("unit_energy_cost", 0), where / "unit_energy_cost", minimum=0)

    refs = _core_refs(data["cores"], where / "cores")
    offchip_id = expect_int(data["offchip_core_id"], where / "offchip_core_id", minimum=0)
    if offchip_id not in refs:
        raise (where / "offchip_core_id").error(f"one of the core ids {sorted(refs)}", offchip_id)
    cores = _load_cores(refs, where, offchip_id)

    links = []
    entries = expect_list(data["core_connectivity"], where / "core_connectivity")
    for i, entry in enumerate(entries):
        links.append(_link(entry, where / "core_connectivity" / i, len(links), cores, unit_energy))

    coordinates = ()
    if data.get("core_coordinates") is not None:
        coordinates = _coordinates(data["core_coordinates"], where / "core_coordinates", cores)
    shadowed = ()
    if "unit_energy_cost" in data and entries and all("unit_energy_cost" in e for e in entries):
        shadowed = (f"{where.file}: unit_energy_cost is the default for links that set none, and every "
                    "core_connectivity entry sets its own: it applies to no link",)
    return _accelerator(name, cores, links, offchip_id, data, where, shadowed, clock_hz=clock_hz,
                        coordinates=coordinates)


def _load_classic_system(data: dict, where: Where) -> Accelerator:
    check_keys(data, where, required=("cores", "offchip_core", "core_connectivity"),
               optional=("name", "bandwidth", "unit_energy_cost", "core_memory_sharing", "default_mapping"))
    name = _name(data, where, Path(where.file).stem)
    unit_energy = _number(data.get("unit_energy_cost", 0), where / "unit_energy_cost", minimum=0)
    refs = _core_refs(data["cores"], where / "cores")
    offchip_id = max(refs) + 1
    refs[offchip_id] = (expect_str(data["offchip_core"], where / "offchip_core"), where / "offchip_core")
    cores = _load_cores(refs, where, offchip_id)

    entries = expect_list(data["core_connectivity"], where / "core_connectivity")
    if entries and "bandwidth" not in data:
        raise (where / "bandwidth").error("this key to be present", note="core_connectivity links need it")
    bandwidth = _number(data["bandwidth"], where / "bandwidth", positive=True) if "bandwidth" in data else None
    links = []
    for i, entry in enumerate(entries):
        at = where / "core_connectivity" / i
        pair = tuple(_core_id(x, at, cores) for x in split_pair(entry, at))
        if pair[0] == pair[1]:
            raise at.error("two different cores", entry)
        links.append(Link(len(links), "link", pair, bandwidth, unit_energy))

    # Classic Stream let every core reach DRAM directly; make that explicit.
    dram_bw = cores[offchip_id].top_memory.read_bw
    for core_id in sorted(cores):
        if core_id != offchip_id:
            links.append(Link(len(links), "link", (core_id, offchip_id), dram_bw, unit_energy))
    unused = ()
    if bandwidth is not None and not entries:
        unused = (f"{where.file}: bandwidth is that of the core_connectivity links, and there are none "
                  "(each core reaches DRAM at the DRAM port's bandwidth): it applies to no link",)
    return _accelerator(name, cores, links, offchip_id, data, where, unused)


def _accelerator(name, cores, links, offchip_id, data, where, notes=(), **extra) -> Accelerator:
    sharing = ()
    if data.get("core_memory_sharing") is not None:
        sharing = _memory_sharing(data["core_memory_sharing"], where / "core_memory_sharing", cores, links)
    _check_reachable(cores, links, sharing, offchip_id, where)
    mapping = None
    if data.get("default_mapping") is not None:
        mapping = _default_mapping(data["default_mapping"], where / "default_mapping")
    notes = tuple(notes) + unmodelled_note(where.file, unmodelled(data, where, UNMODELLED_SYSTEM))
    system_dir = Path(where.file).parent
    for file in dict.fromkeys(c.source_file for c in cores.values()):
        core = next(c for c in cores.values() if c.source_file == file)
        shown = system_dir / os.path.relpath(file, system_dir.resolve())  # as the system file was named
        notes += unmodelled_note(str(shown), core.unmodelled)
    return Accelerator(
        name=name,
        cores=tuple(cores[i] for i in sorted(cores)),
        links=tuple(links),
        offchip_core_id=offchip_id,
        memory_sharing=sharing,
        source_file=where.file,
        default_mapping=mapping,
        warnings=notes,
        **extra,
    )


def _default_mapping(raw: Any, where: Where) -> str:
    """``default_mapping: ../mappings/x.yaml``, relative to the system file: the mapping a
    run takes when it is given none."""
    path = Path(where.file).parent / expect_str(raw, where)
    if not path.is_file():
        raise where.error("a mapping file, relative to the system file", raw, note=f"no file {path}")
    return os.path.normpath(path)


def _core_refs(raw: Any, where: Where) -> dict[int, tuple[str, Where]]:
    """``cores: {id: file}`` -> {id: (file reference, where)}."""
    refs: dict[int, tuple[str, Where]] = {}
    for key, ref in expect_dict(raw, where).items():
        at = where / str(key)
        core_id = expect_int(int(key) if isinstance(key, str) and key.strip().isdigit() else key, at, minimum=0)
        if core_id in refs:
            raise at.error("each core id once", key, note="duplicate core id")
        refs[core_id] = (expect_str(ref, at), at)
    if not refs:
        raise where.error("at least one core")
    return refs


def _load_cores(refs: dict[int, tuple[str, Where]], where: Where, offchip_id: int) -> dict[int, Core]:
    """Load every core file once (the field's systems repeat one file many times)."""
    base = Path(where.file).parent
    parsed: dict[Path, Core] = {}
    cores = {}
    for core_id, (ref, at) in refs.items():
        path = _resolve_core_file(ref, base, at)
        if path not in parsed:
            parsed[path] = load_core(path, core_id)
        core = dataclasses.replace(parsed[path], id=core_id)
        if core_id == offchip_id:
            core = dataclasses.replace(core, kind="offchip")
        elif core.kind == "offchip":
            raise at.error("a core that is not of type offchip",
                           note=f"{path} is an off-chip core but the off-chip core is {offchip_id}")
        cores[core_id] = core
    return cores


def _resolve_core_file(ref: str, base: Path, at: Where) -> Path:
    name = Path(ref).name
    candidates = [base / ref, base / "cores" / name, base / name]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    tried = ", ".join(dict.fromkeys(str(c) for c in candidates))
    raise at.error("an existing core file", ref, note=f"tried {tried}")


def _core_id(value: Any, where: Where, cores: dict[int, Core]) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    core_id = expect_int(value, where, minimum=0)
    if core_id not in cores:
        raise where.error(f"one of the core ids {sorted(cores)}", value)
    return core_id


def _id_list(raw: Any, where: Where, cores: dict[int, Core]) -> tuple[int, ...]:
    """``[0, 1]`` or the classic ``"0, 1"`` -> distinct existing core ids."""
    items = raw.split(",") if isinstance(raw, str) else expect_list(raw, where)
    ids = tuple(_core_id(x, where, cores) for x in items)
    if len(ids) < 2 or len(set(ids)) != len(ids):
        raise where.error("two or more different core ids", raw)
    return ids


def _link(raw: Any, where: Where, link_id: int, cores: dict[int, Core], unit_energy: float) -> Link:
    raw = expect_dict(raw, where)
    check_keys(raw, where, required=("type", "cores", "bandwidth"), optional=("unit_energy_cost",))
    kind = raw["type"]
    if kind not in ("link", "bus"):
        raise (where / "type").error("link or bus", kind)
    ids = _id_list(raw["cores"], where / "cores", cores)
    if kind == "link" and len(ids) != 2:
        raise (where / "cores").error("exactly two cores for a link", raw["cores"], note="use type: bus for more")
    bandwidth = _number(raw["bandwidth"], where / "bandwidth", positive=True)
    energy = _number(raw.get("unit_energy_cost", unit_energy), where / "unit_energy_cost", minimum=0)
    return Link(link_id, kind, ids, bandwidth, energy)


def _coordinates(raw: Any, where: Where, cores: dict[int, Core]) -> tuple:
    coords = {}
    for key, xy in expect_dict(raw, where).items():
        at = where / str(key)
        core_id = _core_id(key, at, cores)
        xy = expect_list(xy, at)
        if len(xy) != 2:
            raise at.error("[x, y]", xy)
        coords[core_id] = (expect_int(xy[0], at / 0), expect_int(xy[1], at / 1))
    return tuple(sorted(coords.items()))


def _memory_sharing(raw: Any, where: Where, cores: dict[int, Core], links: list[Link]) -> tuple:
    groups = []
    for i, entry in enumerate(expect_list(raw, where)):
        group = _id_list(entry, where / i, cores)
        # Sharing cores talk through their common memory; a link between them would be a
        # second, contradictory path (the field's validator refuses it too).
        for link in links:
            both = [c for c in group if c in link.cores]
            if len(both) >= 2:
                raise (where / i).error("cores that no core_connectivity entry also joins", entry,
                                        note=f"cores {both[0]} and {both[1]} share a link (link {link.id})")
        _check_shared_memories(group, cores, where / i)
        groups.append(group)
    return tuple(groups)


def _check_shared_memories(group: tuple[int, ...], cores: dict[int, Core], where: Where) -> None:
    """Cores sharing memory share their top memories, matched by name (not by position in
    their files): every member needs the same names, each memory identical in every
    attribute (the field's tool refuses non-identical top memories too)."""
    first = cores[group[0]]
    names = sorted(m.name for m in first.top_memories)
    for core_id in group[1:]:
        core = cores[core_id]
        other = sorted(m.name for m in core.top_memories)
        if other != names:
            raise where.error("cores whose top memories have the same names", list(group),
                              note=f"core {group[0]} has {names}, core {core_id} has {other}")
        for memory in core.top_memories:
            mine = next(m for m in first.top_memories if m.name == memory.name)
            if memory != mine:
                raise where.error("cores whose shared memories are identical", list(group),
                                  note=f"memory {memory.name} of core {core_id} differs from core {group[0]}'s")


def _check_reachable(cores, links, sharing, offchip_id, where: Where) -> None:
    """Every core must reach DRAM, or its weights and outputs have nowhere to come from."""
    groups = [link.cores for link in links] + list(sharing)
    reached, frontier = {offchip_id}, [offchip_id]
    while frontier:
        current = frontier.pop()
        for group in groups:
            if current in group:
                for other in group:
                    if other not in reached:
                        reached.add(other)
                        frontier.append(other)
    missing = sorted(set(cores) - reached)
    if missing:
        raise (where / "core_connectivity").error(
            f"links that connect every core to the off-chip core {offchip_id}", note=f"cores {missing} are cut off")


# ---------------------------------------------------------------------------------------
# core files


def load_core(path: str | os.PathLike, core_id: int) -> Core:
    """Load one core file (classic, 2026 or ours) as the core with id ``core_id``."""
    data, where = load_yaml(path, unique_keys=True)
    expect_dict(data, where)
    ours = "version" in data
    if ours:
        _check_version(data, where)
        check_keys(data, where, required=("version", "name", "type", "memories", "operational_array"),
                   optional=("dataflows", "operator_types", "operator_costs", "operand_precision", "prefetch_depth",
                             "dma_channels", "blocking_writeback"))
    else:
        check_keys(data, where, required=("memories",),
                   optional=("name", "type", "operational_array", "multipliers", "dataflows",
                             "operator_types", "operator_costs", "operand_precision", "prefetch_depth",
                             "dma_channels", "blocking_writeback"))
    name = _name(data, where, Path(where.file).stem)
    kind = "compute"
    if "type" in data:
        kind = CORE_TYPES.get(data["type"])
        if kind is None:
            raise (where / "type").error("compute, offchip or memory (or zigzag.compute, ...)", data["type"])

    array_key = "operational_array" if "operational_array" in data else "multipliers"
    if array_key not in data:
        raise (where / "operational_array").error("this key to be present", note="missing required key")
    if "operational_array" in data and "multipliers" in data:
        raise (where / "multipliers").error("either operational_array or multipliers, not both")
    array = _array(data[array_key], where / array_key)

    memories_raw = expect_dict(data["memories"], where / "memories")
    if not memories_raw:
        raise (where / "memories").error("at least one memory")
    memories = tuple(
        _memory(str(mem_name), raw, where / "memories" / str(mem_name), array.dims, ours)
        for mem_name, raw in memories_raw.items()
    )

    dataflows = ()
    if data.get("dataflows") is not None:
        dataflows = _dataflows(data["dataflows"], where / "dataflows", array.dims)
    operator_types = None
    if "operator_types" in data:
        operator_types = _operator_types(data["operator_types"], where / "operator_types")
    operator_costs = ()
    if data.get("operator_costs") is not None:
        operator_costs = _operator_costs(data["operator_costs"], where / "operator_costs", operator_types)
    if "operand_precision" in data:
        expect_dict(data["operand_precision"], where / "operand_precision")
    found = unmodelled(data, where, UNMODELLED_CORE)
    if isinstance(data.get(array_key), dict):
        found += unmodelled(data[array_key], where / array_key, UNMODELLED_ARRAY)
    for mem_name, raw in memories_raw.items():
        found += [path.replace(f"memories.{mem_name}.", "memories.*.", 1)
                  for path in unmodelled(raw, where / "memories" / str(mem_name), UNMODELLED_MEMORY)]
    depth = expect_int(data.get("prefetch_depth", DEFAULT_PREFETCH_DEPTH), where / "prefetch_depth", minimum=1)
    channels = data.get("dma_channels")
    if channels is not None:
        channels = expect_int(channels, where / "dma_channels", minimum=1)
    return Core(core_id, name, kind, array, memories, dataflows, operator_types, str(Path(where.file)),
                operator_costs=operator_costs, unmodelled=tuple(dict.fromkeys(found)), prefetch_depth=depth,
                dma_channels=channels,
                blocking_writeback=expect_bool(data.get("blocking_writeback", False), where / "blocking_writeback"))


def _array(raw: Any, where: Where) -> OperationalArray:
    raw = expect_dict(raw, where)
    check_keys(raw, where, required=ARRAY_REQUIRED, optional=ARRAY_OPTIONAL)
    dims = tuple(expect_str(d, where / "dimensions" / i) for i, d in enumerate(expect_list(raw["dimensions"], where / "dimensions")))
    if len(set(dims)) != len(dims):
        raise (where / "dimensions").error("distinct dimension names", raw["dimensions"])
    sizes = tuple(expect_int(s, where / "sizes" / i, minimum=0) for i, s in enumerate(expect_list(raw["sizes"], where / "sizes")))
    if len(sizes) != len(dims):
        raise (where / "sizes").error(f"one size per dimension ({len(dims)} for {list(dims)})", raw["sizes"])
    return OperationalArray(
        dims=dims,
        sizes=sizes,
        unit_energy=_number(raw["unit_energy"], where / "unit_energy", minimum=0),
        unit_area=_number(raw.get("unit_area", 0), where / "unit_area", minimum=0),
    )


def _memory(name: str, raw: Any, where: Where, dims: tuple[str, ...], ours: bool) -> Memory:
    raw = expect_dict(raw, where)
    classic = not ours and any(k in raw for k in CLASSIC_MEMORY_KEYS)
    if ours:
        check_keys(raw, where, required=MEMORY_REQUIRED, optional=MEMORY_OPTIONAL)
    elif classic:
        check_keys(raw, where, required=MEMORY_REQUIRED + CLASSIC_MEMORY_KEYS,
                   optional=MEMORY_OPTIONAL + ("mem_type", "min_r_granularity", "min_w_granularity"))
    else:
        check_keys(raw, where, required=MEMORY_REQUIRED, optional=MEMORY_OPTIONAL + ("mem_type",))

    operands = _operands(raw["operands"], where / "operands")
    ports = _classic_ports(raw, where, operands) if classic else _named_ports(raw["ports"], where / "ports", operands)
    _check_port_coverage(ports, operands, where / "ports")

    served = expect_list(raw["served_dimensions"], where / "served_dimensions")
    for i, dim in enumerate(served):
        if dim not in dims:
            raise (where / "served_dimensions" / i).error(f"one of the array dimensions {list(dims)}", dim)
    if len(set(served)) != len(served):
        raise (where / "served_dimensions").error("each dimension once", served)
    if "mem_type" in raw:
        expect_str(raw["mem_type"], where / "mem_type")

    return Memory(
        name=name,
        size_bits=expect_int(raw["size"], where / "size", minimum=1),
        r_cost=_number(raw["r_cost"], where / "r_cost", minimum=0),
        w_cost=_number(raw["w_cost"], where / "w_cost", minimum=0),
        operands=operands,
        ports=ports,
        served_dimensions=tuple(served),
        area=_number(raw.get("area", 0), where / "area", minimum=0),
        latency=expect_int(raw.get("latency", 1), where / "latency", minimum=0),
        auto_cost_extraction=expect_bool(raw.get("auto_cost_extraction", False), where / "auto_cost_extraction"),
        double_buffering=expect_bool(raw.get("force_double_buffering", False), where / "force_double_buffering"),
    )


def _operands(raw: Any, where: Where) -> tuple[str, ...]:
    items = expect_list(raw, where)
    for i, op in enumerate(items):
        if op not in MEMORY_OPERANDS:
            raise (where / i).error("one of I1, I2, O", op)
    if not items or len(set(items)) != len(items):
        raise where.error("a non-empty list of distinct operands from I1, I2, O", raw)
    return tuple(items)


def _named_ports(raw: Any, where: Where, operands: tuple[str, ...]) -> tuple[Port, ...]:
    ports = []
    for i, entry in enumerate(expect_list(raw, where)):
        at = where / i
        entry = expect_dict(entry, at)
        check_keys(entry, at, required=("name", "type", "bandwidth_max", "allocation"), optional=("bandwidth_min",))
        name = expect_str(entry["name"], at / "name")
        if any(p.name == name for p in ports):
            raise (at / "name").error("a port name not used before in this memory", name)
        kind = entry["type"]
        if kind not in PORT_KINDS:
            raise (at / "type").error("read, write or read_write", kind)
        bw_max = _number(entry["bandwidth_max"], at / "bandwidth_max", positive=True)
        bw_min = _number(entry.get("bandwidth_min", bw_max), at / "bandwidth_min", positive=True)
        if bw_min > bw_max:
            raise (at / "bandwidth_min").error(f"a granularity <= bandwidth_max ({bw_max:g})", entry["bandwidth_min"])
        allocation = []
        for j, item in enumerate(expect_list(entry["allocation"], at / "allocation")):
            allocation.append(_allocation(item, at / "allocation" / j, operands, kind))
        ports.append(Port(name, kind, bw_min, bw_max, tuple(allocation)))
    return tuple(ports)


def _allocation(raw: Any, where: Where, operands: tuple[str, ...], kind: str) -> tuple[str, str]:
    """``"I1, tl"`` -> ("I1", "tl"), checked against the memory and the port's kind."""
    operand, direction = split_pair(raw, where)
    if operand not in operands:
        raise where.error(f"an operand this memory holds ({', '.join(operands)})", raw)
    if direction not in DIRECTIONS:
        raise where.error("a direction fh, tl, fl or th", raw)
    if direction in OUTPUT_ONLY_DIRECTIONS and operand != "O":
        raise where.error(f"fh or tl for the input operand {operand}", raw, note="fl and th carry outputs only")
    writes = direction in WRITE_DIRECTIONS
    if (writes and kind == "read") or (not writes and kind == "write"):
        needed = "write or read_write" if writes else "read or read_write"
        raise where.error(f"{direction} on a {needed} port", raw, note=f"this port is {kind}")
    return operand, direction


def _classic_ports(raw: dict, where: Where, operands: tuple[str, ...]) -> tuple[Port, ...]:
    """Classic port counts + per-operand direction dicts -> named ports."""
    r_bw = _number(raw["r_bw"], where / "r_bw", positive=True)
    w_bw = _number(raw["w_bw"], where / "w_bw", positive=True)
    r_gran = _granularity(raw, "min_r_granularity", r_bw, "r_bw", where)
    w_gran = _granularity(raw, "min_w_granularity", w_bw, "w_bw", where)
    rw_bw = max(r_bw, w_bw)
    rw_read = r_gran if "min_r_granularity" in raw else rw_bw
    rw_write = w_gran if "min_w_granularity" in raw else rw_bw
    spec = {  # prefix -> (kind, bw_min, bw_max)
        "r_port": ("read", r_gran, r_bw),
        "w_port": ("write", w_gran, w_bw),
        "rw_port": ("read_write", rw_read, rw_bw),
    }
    counts = {prefix: expect_int(raw[prefix], where / prefix, minimum=0) for prefix in spec}
    kinds = {f"{prefix}_{i}": prefix for prefix in spec for i in range(1, counts[prefix] + 1)}
    names = list(kinds)
    allocations: dict[str, list[tuple[str, str]]] = {n: [] for n in names}

    entries = expect_list(raw["ports"], where / "ports")
    if len(entries) != len(operands):
        raise (where / "ports").error(f"one entry per operand ({len(operands)}: {', '.join(operands)})",
                                      note=f"got {len(entries)} entries")
    for i, (operand, entry) in enumerate(zip(operands, entries)):
        at = where / "ports" / i
        entry = expect_dict(entry, at)
        check_keys(entry, at, optional=DIRECTIONS)
        for direction, port_name in entry.items():
            if port_name not in allocations:
                declared = ", ".join(f"{p}: {counts[p]}" for p in spec)
                raise (at / direction).error(f"one of the declared ports {names}", port_name, note=declared)
            kind = spec[kinds[port_name]][0]
            allocations[port_name].append(_allocation([operand, direction], at / direction, operands, kind))
    return tuple(Port(n, *spec[kinds[n]], tuple(allocations[n]),
                      bw_min_write=rw_write if kinds[n] == "rw_port" and rw_write != rw_read else None)
                 for n in names)


def _granularity(raw: dict, key: str, bandwidth: float, bw_key: str, where: Where) -> float:
    if key not in raw:
        return bandwidth
    value = _number(raw[key], where / key, positive=True)
    if value > bandwidth:
        raise (where / key).error(f"a granularity <= {bw_key} ({bandwidth:g})", raw[key])
    return value


def _check_port_coverage(ports: tuple[Port, ...], operands: tuple[str, ...], where: Where) -> None:
    """Each (operand, direction) on exactly one port; every direction the operand uses covered."""
    owner: dict[tuple[str, str], str] = {}
    for port in ports:
        for pair in port.allocation:
            if pair in owner:
                raise where.error(f"{pair[0]}, {pair[1]} allocated to one port",
                                  note=f"both {owner[pair]} and {port.name} carry it")
            owner[pair] = port.name
    for operand in operands:
        needed = DIRECTIONS if operand == "O" else ("fh", "tl")
        for direction in needed:
            if (operand, direction) not in owner:
                raise where.error(f"a port allocated to {operand}, {direction}",
                                  note=f"{operand} needs ports for {', '.join(needed)}")


def _dataflows(raw: Any, where: Where, dims: tuple[str, ...]) -> tuple:
    """``{D1: ["K, 32"], ...}`` -> (("D1", (("K", 32),)), ...)."""
    result = []
    for array_dim, entries in expect_dict(raw, where).items():
        at = where / str(array_dim)
        if array_dim not in dims:
            raise at.error(f"one of the array dimensions {list(dims)}", array_dim)
        unrolls = []
        for i, entry in enumerate(expect_list(entries, at)):
            layer_dim, factor = split_pair(entry, at / i)
            unrolls.append((layer_dim, expect_int(factor, at / i, minimum=1)))
        result.append((array_dim, tuple(unrolls)))
    return tuple(result)


def _operator_types(raw: Any, where: Where) -> tuple[str, ...]:
    items = expect_list(raw, where)
    if not items:
        raise where.error("a non-empty list of operator types", raw, note="leave the key out for any operator")
    types = tuple(expect_str(t, where / i) for i, t in enumerate(items))
    if len(set(types)) != len(types):
        raise where.error("each operator type once", raw)
    return types


def _operator_costs(raw: Any, where: Where, operator_types: tuple[str, ...] | None) -> tuple:
    """``{Exp: 4, ...}`` -> (("Exp", 4.0), ...), sorted: cycles (and multiples of ``unit_energy``)
    per element operation per lane; operator types left out cost 1."""
    costs = {}
    for op_type, value in expect_dict(raw, where).items():
        at = where / str(op_type)
        op_type = expect_str(op_type, at)
        if operator_types is not None and op_type not in operator_types:
            raise at.error(f"an operator type this core runs ({', '.join(operator_types)})", op_type)
        costs[op_type] = float(_number(value, at, positive=True))
    return tuple(sorted(costs.items()))


# ---------------------------------------------------------------------------------------
# small helpers


def _check_version(data: dict, where: Where) -> None:
    if data["version"] != 1:
        raise (where / "version").error("1", data["version"])


def _name(data: dict, where: Where, default: str) -> str:
    return expect_str(data["name"], where / "name") if "name" in data else default


def _number(value: Any, where: Where, minimum: float | None = None, positive: bool = False) -> float:
    return expect_number(value, where, minimum=minimum, positive=positive)
