"""Routes, link reservations and DRAM ports of the simulator's interconnect, by hand."""

from __future__ import annotations

import pytest

from conftest import INPUTS
from stream.errors import StreamError
from stream.hardware import load_hardware
from stream.simulation.network import Network


@pytest.fixture(scope="module")
def mesh():
    return Network(load_hardware(INPUTS / "hardware" / "mesh_4x4.yaml"))


def hops(net: Network, src: int, dst: int) -> list[tuple[int, ...]]:
    """The cores each link of the route joins, in order."""
    return [net.acc.links[l].cores for l in net.routes[net.route(src, dst)]]


def test_mesh_routes_x_before_y(mesh):
    # core i sits at (i % 4, i // 4): 0 -> 11 goes east along row 0, then south along column 3
    assert hops(mesh, 0, 11) == [(0, 1), (1, 2), (2, 3), (3, 7), (7, 11)]
    # and back: west along row 2 first, then north along column 0
    assert hops(mesh, 11, 0) == [(10, 11), (9, 10), (8, 9), (4, 8), (0, 4)]
    # a bus is one hop: 0 -> 15 rides the south bus from 12 (4 hops) rather than 6 mesh links
    assert hops(mesh, 0, 15) == [(0, 4), (4, 8), (8, 12), (12, 13, 14, 15, 18)]
    assert hops(mesh, 5, 5) == []


def test_mesh_reaches_dram_through_the_south_bus(mesh):
    # the HBM (18) hangs on the bus of cores 12..15: core 1 goes down column 1 to 13, then the bus
    route = hops(mesh, 1, 18)
    assert route[:3] == [(1, 5), (5, 9), (9, 13)] and route[3] == (12, 13, 14, 15, 18)
    assert mesh.bus(mesh.route(13, 18)) is not None and mesh.bus(mesh.route(1, 18)) is None


def test_transfers_on_a_link_are_first_come_first_served(mesh):
    net = Network(mesh.acc)
    rid = net.route(0, 1)
    # 128-bit link: 1000 bits take ceil(1000 / 128) = 8 cycles
    assert net.occupy(0, rid, 0, 1, 1000) == (0, 8)
    assert net.occupy(3, rid, 0, 1, 256) == (8, 10)  # waits for the first
    assert net.occupy(20, rid, 0, 1, 128) == (20, 21)  # the link is free again
    # a route through 0-1 and 1-2 waits for its busiest link; 0-1 is free from 21
    assert net.occupy(0, net.route(0, 2), 0, 2, 128) == (21, 22)
    assert net.link_busy[net.routes[rid][0]] == 8 + 2 + 1 + 1


def test_dram_port_is_shared_by_every_core(mesh):
    net = Network(mesh.acc)
    # one 512-bit read/write port: 13 and 14 both read 5120 bits = 10 cycles each, one after the other
    assert net.occupy(0, net.route(18, 13), 18, 13, 5120) == (0, 10)
    assert net.occupy(0, net.route(18, 14), 18, 14, 5120) == (10, 20)
    # the HBM prices 512-bit words from 256-bit bursts at 2048 pJ: ceil(5120 / 256) x 256/512 x 2048
    assert net.dram_energy(18, 13, 5120) == 10 * 2048.0
    assert net.dram_energy(12, 13, 5120) == 0.0


def test_a_link_without_bandwidth_is_refused(write):
    hardware = (INPUTS / "hardware" / "quad_core.yaml").read_text().replace(
        "{type: link, cores: [0, 1], bandwidth: 128}", "{type: link, cores: [0, 1], bandwidth: 0}")
    for name in ("tpu_32x32", "pool_3x3x8", "simd_64", "dram"):
        write(f"cores/{name}.yaml", (INPUTS / "hardware" / "cores" / f"{name}.yaml").read_text())
    path = write("quad.yaml", hardware)
    with pytest.raises(StreamError, match="bandwidth"):
        Network(load_hardware(path))
