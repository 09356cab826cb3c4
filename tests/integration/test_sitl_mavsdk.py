"""Optional: a real MAVSDK client (the native `mavsdk` >= 4 package) flies the simulated PX4 endpoint.

Skips when mavsdk is not installed; it is in the `test` extra, so `make test` installs and runs it.
MAVSDK binds only 127.0.0.1 here (`udpin://127.0.0.1:PORT`); the simulator runs as `autonomy sitl serve`.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.conftest import free_udp_port

mavsdk = pytest.importorskip("mavsdk")
if not hasattr(mavsdk, "Mavsdk"):
    pytest.skip("needs the native mavsdk >= 4 binding", allow_module_level=True)

from mavsdk import ComponentType, Configuration, Mavsdk
from mavsdk.plugins.action import Action
from mavsdk.plugins.offboard import Offboard, OffboardResult, VelocityNedYaw
from mavsdk.plugins.telemetry import FlightMode, Telemetry


def _wait(pred, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


def test_mavsdk_connects_arms_offboard_and_lands():
    lp, rp = free_udp_port(), free_udp_port()
    p = subprocess.Popen([sys.executable, "-m", "autonomy.cli", "sitl", "serve", "--autopilot", "px4",
                          "--local-port", str(lp), "--remote-port", str(rp), "--speedup", "2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    m = None
    try:
        assert p.stdout.readline().startswith("READY px4")
        m = Mavsdk(Configuration.create_with_component_type(ComponentType.COMPANION_COMPUTER))
        m.add_any_connection(f"udpin://127.0.0.1:{rp}")
        system = m.first_autopilot(10.0)
        assert system is not None and system.get_system_id() == 1
        tel, act, off = Telemetry(system), Action(system), Offboard(system)
        assert _wait(lambda: tel.health().is_local_position_ok and tel.health().is_armable, 15.0)
        off.set_velocity_ned(VelocityNedYaw(0.0, 0.0, 0.0, 0.0))
        assert off.start() == OffboardResult.SUCCESS
        act.arm()  # raises ActionError on refusal
        assert _wait(lambda: tel.armed() and tel.flight_mode() == FlightMode.OFFBOARD, 5.0)
        off.set_velocity_ned(VelocityNedYaw(0.0, 0.0, -2.0, 0.0))
        assert _wait(lambda: tel.position_velocity_ned().position.down_m < -4.0, 15.0)
        assert tel.in_air()
        off.set_velocity_ned(VelocityNedYaw(3.0, 0.0, 0.0, 0.0))
        assert _wait(lambda: tel.position_velocity_ned().position.north_m > 4.0, 10.0)
        act.land()
        assert _wait(lambda: tel.flight_mode() == FlightMode.LAND, 5.0)
    finally:
        if m is not None:
            m.destroy()
        p.terminate()
        p.communicate(timeout=10)
