"""Key-usage audit: every key a loader accepts either changes what is loaded, or the tool
says in a warning line that it is read but not modelled.

For every YAML input file (the bundled ones, and the peer's in both dialects where they
are present), each key is changed in a copy of the file, one at a time (the first
occurrence of each key path per file), and the copy is loaded as a run would load it:
hardware to the accelerator, a core file to its core, a workload to its layers, a mapping
to the plans it gives the workload and hardware it was written for. The key passes if the
load fails (it is checked), if what was loaded differs, or if a warning or note of either
load names it. A key that changes nothing silently fails the test: that is a loader
dropping a key.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import INPUTS, PEERS, needs_peers
from stream.errors import StreamError
from stream.hardware import load_hardware
from stream.hardware.loader import load_core
from stream.mapping import load_mapping, plan_layers
from stream.workload import load_workload

# dict keys that are names or ids chosen by the file, not keys of the format
DYNAMIC = {"cores", "memories", "core_coordinates", "operand_precision", "operand_source", "padding", "dataflows",
           "operator_costs", "loop_kinds"}


def _mutated(value):
    """A different value of the same kind, or None for containers (their keys are audited)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 1.5 + 1
    if isinstance(value, str):
        pair = re.fullmatch(r"\s*(\w+)\s*,\s*(\w+|\*)\s*", value)
        if pair:  # the field's "DIM, N" forms: another count
            dim, count = pair.groups()
            return f"{dim}, {int(count) + 1}" if count.isdigit() else f"{dim}, 2"
        return value + "_x"
    if isinstance(value, list) and value and not isinstance(value[0], dict):
        first = _mutated(value[0])
        return None if first is None else [first] + value[1:]
    return None


def _occurrences(data, path=()):
    """(path, normalised path) of every key whose value can be changed, first occurrence of
    each normalised path only."""
    seen, out = set(), []

    def walk(node, path, norm):
        if isinstance(node, dict):
            for key, value in node.items():
                shown = "*" if (norm and norm[-1] in DYNAMIC) or isinstance(key, int) else str(key)
                here, here_norm = path + (key,), norm + (shown,)
                if _mutated(value) is not None and here_norm not in seen:
                    seen.add(here_norm)
                    out.append((here, here_norm))
                walk(value, here, here_norm)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, path + (i,), norm + ("[]",))

    walk(data, tuple(path), ())
    return out


def _set(data, path, value):
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _strip(obj):
    """What a load gives, without its warnings and notes (those are how it reports)."""
    if dataclasses.is_dataclass(obj):
        drop = {"warnings", "notes", "unmodelled", "source_file", "where"}
        return tuple((f.name, _strip(getattr(obj, f.name))) for f in dataclasses.fields(obj) if f.name not in drop)
    if isinstance(obj, dict):
        return tuple((k, _strip(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return tuple(_strip(x) for x in obj)
    return obj


def _hardware(path):
    acc = load_hardware(path)
    return _strip(acc), acc.warnings


def _core(path):
    core = load_core(path, 0)
    return _strip(core), core.unmodelled


def _workload(path):
    w = load_workload(path)
    return _strip((w.name, w.layers)), w.warnings


def _mapping_for(workload, hardware):
    w, acc = load_workload(workload), load_hardware(hardware)

    def load(path):
        m = load_mapping(path)
        plans = plan_layers(w, acc, m)
        return _strip(plans), tuple(n for p in plans.values() for n in p.notes)

    return load


def _matched_rules(mapping_path, workload_path) -> set[int] | None:
    """Indices of the rules that apply to some layer (keys of the others cannot matter)."""
    m, w = load_mapping(mapping_path), load_workload(workload_path)
    used = {id(m.rule_for(l)) for l in w.layers}
    return {i for i, rule in enumerate(m.rules) if id(rule) in used}


def _audit(path: Path, load, root: Path, tmp_path: Path, skip=lambda p: False) -> list[str]:
    """Silently dropped keys of ``path`` (a file under ``root``, copied to ``tmp_path``)."""
    copy_root = tmp_path / "copy"
    shutil.copytree(root, copy_root)
    target = copy_root / path.relative_to(root)
    original_text = target.read_text()
    data = yaml.safe_load(original_text)
    base, base_notes = load(target)
    dropped = []
    for keys, norm in _occurrences(data):
        if skip(keys):
            continue
        changed = yaml.safe_load(original_text)
        _set(changed, keys, _mutated(_get(changed, keys)))
        target.write_text(yaml.safe_dump(changed, sort_keys=False))
        try:
            got, notes = load(target)
        except StreamError:
            continue  # checked, and refused out loud
        finally:
            target.write_text(original_text)
        if got == base and not _named_in(keys, norm, (*notes, *base_notes)):
            dropped.append(".".join(norm))
    shutil.rmtree(copy_root)
    return dropped


def _path_text(keys) -> str:
    """A key path as the loaders' messages write it: ``layers[0].inter_core_tiling``."""
    text = ""
    for key in keys:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text


def _named_in(keys, norm, notes) -> bool:
    """Does a warning or note name the key, or a key above it, as a whole path (concrete,
    or with ``*`` for names and any index for list items)?"""
    pattern_of = {}
    for path in (keys, tuple(-1 if k == "[]" else k for k in norm)):
        for end in range(len(path), 0, -1):
            text = re.escape(_path_text(path[:end])).replace(r"\[\-1\]", r"\[\d*\]")
            pattern_of[text] = re.compile(text + r"(?=[\s,:;)]|$)")
    return any(p.search(n) for p in pattern_of.values() for n in notes)


def _get(data, keys):
    for key in keys:
        data = data[key]
    return data


def _rule_skip(mapping_path, workload_path):
    matched = _matched_rules(mapping_path, workload_path)
    data = yaml.safe_load(Path(mapping_path).read_text())
    in_layers = isinstance(data, dict)

    def skip(keys):
        index = keys[1] if in_layers and keys[0] == "layers" and len(keys) > 1 else (keys[0] if not in_layers else None)
        return isinstance(index, int) and index not in matched

    return skip


# -- the bundled inputs ------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((INPUTS / "hardware").glob("*.yaml")), ids=lambda p: p.name)
def test_bundled_hardware_keys_are_all_used(path, tmp_path):
    assert _audit(path, _hardware, INPUTS, tmp_path) == []


@pytest.mark.parametrize("path", sorted((INPUTS / "hardware" / "cores").glob("*.yaml")), ids=lambda p: p.name)
def test_bundled_core_keys_are_all_used(path, tmp_path):
    assert _audit(path, _core, INPUTS, tmp_path) == []


@pytest.mark.parametrize("path", sorted((INPUTS / "workloads").glob("*.yaml")), ids=lambda p: p.name)
def test_bundled_workload_keys_are_all_used(path, tmp_path):
    assert _audit(path, _workload, INPUTS, tmp_path) == []


BUNDLED_MAPPINGS = [("quad_core", "resnet18.yaml"), ("hetero", "resnet18.yaml"), ("single_core", "resnet18.yaml"),
                    ("mesh_4x4", "resnet18.yaml"), ("ssm", "mamba_block.yaml"), ("ssm_mamba_block", "mamba_block.yaml")]


@pytest.mark.parametrize("mapping, workload", BUNDLED_MAPPINGS, ids=[m for m, _ in BUNDLED_MAPPINGS])
def test_bundled_mapping_keys_are_all_used(mapping, workload, tmp_path):
    hardware = INPUTS / "hardware" / f"{mapping.split('_mamba')[0]}.yaml"
    path, w = INPUTS / "mappings" / f"{mapping}.yaml", INPUTS / "workloads" / workload
    assert _audit(path, _mapping_for(w, hardware), INPUTS, tmp_path, _rule_skip(path, w)) == []


# -- the peer's files --------------------------------------------------------------------



def _peer(pattern):
    return sorted(PEERS.glob(pattern)) if PEERS.is_dir() else []


@needs_peers
@pytest.mark.parametrize("path", _peer("*/hardware/*.yaml"), ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_peer_hardware_keys_are_all_used(path, tmp_path):
    assert _audit(path, _hardware, path.parent, tmp_path) == []


@needs_peers
@pytest.mark.parametrize("path", _peer("*/hardware/cores/*.yaml"), ids=lambda p: f"{p.parents[2].name}/{p.name}")
def test_peer_core_keys_are_all_used(path, tmp_path):
    assert _audit(path, _core, path.parent, tmp_path) == []


@needs_peers
@pytest.mark.parametrize("path", _peer("*/workload/*.yaml"), ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_peer_workload_keys_are_all_used(path, tmp_path):
    assert _audit(path, _workload, path.parent, tmp_path) == []


def _peer_mapping_cases():
    from test_field_files import WRITTEN_FOR

    return [(m, h, ws[0]) for m, h, ws in WRITTEN_FOR]


@needs_peers
@pytest.mark.parametrize("mapping, hardware, workload", _peer_mapping_cases(), ids=lambda x: x.split("/")[-1])
def test_peer_mapping_keys_are_all_used(mapping, hardware, workload, tmp_path):
    path = PEERS / mapping
    assert _audit(path, _mapping_for(PEERS / workload, PEERS / hardware), path.parent, tmp_path,
                  _rule_skip(path, PEERS / workload)) == []


def test_the_audit_notices_a_dropped_key(tmp_path, monkeypatch):
    """If the mapping step dropped group tilings again, the audit would say so."""
    import stream.mapping as mapping_step

    monkeypatch.setattr(mapping_step, "group_tiling", lambda *args: {})
    path, w = INPUTS / "mappings" / "ssm_mamba_block.yaml", INPUTS / "workloads" / "mamba_block.yaml"
    dropped = _audit(path, _mapping_for(w, INPUTS / "hardware" / "ssm.yaml"), INPUTS, tmp_path, _rule_skip(path, w))
    assert dropped == ["fusion_groups.[].intra_core_tiling.[].dim", "fusion_groups.[].intra_core_tiling.[].tile"]
