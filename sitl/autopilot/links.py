"""Non-blocking MAVLink 2 transports of the simulated autopilots (127.0.0.1 only).

- :class:`UdpLink`: PX4-style onboard link. Binds ``127.0.0.1:local_port`` and sends to
  ``127.0.0.1:remote_port`` at once; the first sender is latched as the partner for good and packets from any
  other address are dropped (AUTOPILOT_SPEC.md §1, ``mavlink_receiver.cpp``).
- :class:`TcpServerLink`: ArduPilot SERIAL0-style ``tcp:5760``. One client at a time; a second client is
  accepted and closed at once. When the client leaves, the next one may connect.

Both parse with pymavlink's MAVLink 2 parser in robust mode: garbage and truncated frames are counted in
``stats.rx_bad`` and never raise.

Lockstep delivery barrier (``UdpLink.barrier``): in the lockstep world (``sitl.world``) a datagram sent in one
simulated step must be read in the next read, whatever the OS scheduling. The world sets ``barrier`` to a
function giving how many datagrams its peers have sent to this link so far; ``poll`` then waits (``select``,
at most ``barrier_timeout_s`` of wall time) until it has read that many, and raises :class:`SitlLinkError`
naming the link when they do not come (a lost datagram), never hangs. ``None`` (default): plain non-blocking
reads, as the real-time server does.
"""

from __future__ import annotations

import errno
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from autonomy.mavlink.wire import dialect

x25crc = dialect.x25crc

HOST = "127.0.0.1"
_MAX_TX_BUFFER = 1 << 20


class SitlLinkError(OSError):
    """A simulated-autopilot link could not be opened (port in use, bad port)."""


@dataclass
class LinkStats:
    rx_msgs: int = 0
    rx_bad: int = 0
    rx_foreign: int = 0  # datagrams from a non-latched sender (UDP) or refused extra clients (TCP)
    tx_msgs: int = 0
    tx_dropped: int = 0
    rx_datagrams: int = 0  # UDP datagrams read (all senders): the lockstep world's delivery barrier counts them
    tx_datagrams: int = 0  # UDP datagrams handed to the kernel


class _Sink:
    def __init__(self, link: _LinkBase) -> None:
        self._link = link

    def write(self, buf: bytes) -> None:
        self._link._write(bytes(buf))


class _LinkBase:
    kind = "?"

    def __init__(self, sysid: int, compid: int) -> None:
        self.stats = LinkStats()
        self._sysid, self._compid = sysid, compid
        # PX4 v1.15/v1.16 (MAV_PROTO_VER 0): MAVLink 1 until the first MAVLink 2 frame arrives
        self.v1_until_v2 = False
        self._mav = self._new_parser()

    def _new_parser(self):
        mav = dialect.MAVLink(_Sink(self), srcSystem=self._sysid, srcComponent=self._compid)
        mav.robust_parsing = True
        return mav

    def _decode(self, data: bytes) -> list:
        out = []
        try:
            msgs = self._mav.parse_buffer(data) or []
        except Exception:  # noqa: BLE001 - any parser failure is a counted drop, never a crash
            self.stats.rx_bad += 1
            self._mav = self._new_parser()
            return out
        for m in msgs:
            if m.get_type() == "BAD_DATA" or m.get_type().startswith("UNKNOWN"):
                self.stats.rx_bad += 1
                continue
            if self.v1_until_v2 and m.get_msgbuf()[:1] == b"\xfd":
                self.v1_until_v2 = False
            self.stats.rx_msgs += 1
            out.append(m)
        return out

    def send(self, msg) -> None:
        """Encode (MAVLink 2, our sysid/compid, next sequence number) and send; never raises."""
        if not self.connected:
            return
        try:
            if self.v1_until_v2:
                if msg.get_msgId() > 255:
                    return  # not representable in MAVLink 1: the v1-mode autopilot does not send it
                self._mav.send(msg, force_mavlink1=True)
            else:
                self._mav.send(msg)
            self.stats.tx_msgs += 1
        except (OSError, ValueError, TypeError, dialect.MAVError):
            self.stats.tx_dropped += 1

    def send_raw(self, msgid: int, payload: bytes, crc_extra: int) -> None:
        """Send a MAVLink 2 message the dialect lacks (e.g. PX4's EVENT, 410), sharing our sequence counter.

        ``payload`` is the full wire-order payload; trailing zero bytes are truncated as MAVLink 2 requires.
        """
        if not self.connected or self.v1_until_v2:
            return
        body = payload.rstrip(b"\x00") or b"\x00"
        seq = self._mav.seq
        self._mav.seq = (seq + 1) % 256
        hdr = bytes([len(body), 0, 0, seq, self._sysid, self._compid]) + msgid.to_bytes(3, "little")
        crc = x25crc(hdr + body)
        crc.accumulate([crc_extra])
        self._write(b"\xfd" + hdr + body + crc.crc.to_bytes(2, "little"))
        self.stats.tx_msgs += 1

    @property
    def connected(self) -> bool:
        return True

    def _write(self, buf: bytes) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        """Send what was queued this tick (messages are batched into datagrams / stream writes)."""


def await_datagrams(name: str, sock, drain: Callable[[], list], count: Callable[[], int], want: int,
                    timeout_s: float, error: type[Exception] = SitlLinkError) -> list:
    """The lockstep delivery barrier: ``drain()`` (non-blocking reads returning messages, each datagram counted
    in ``count()``) until ``want`` datagrams were read, waiting on ``sock`` with ``select``.

    Raises ``error`` naming ``name`` when they do not come within ``timeout_s`` seconds of wall time (a lost
    datagram, or a process stalled that long) or when more came than were sent (a foreign sender): never hangs.
    Returns the messages read while waiting.
    """
    msgs: list = []
    deadline = time.monotonic() + timeout_s
    while count() < want:
        left = deadline - time.monotonic()
        if left <= 0:
            raise error(f"{name}: lockstep barrier: {want - count()} of the {want} datagrams sent to this socket "
                        f"did not arrive within {timeout_s} s (lost)")
        select.select([sock], [], [], left)
        msgs += drain()
    if count() > want:
        raise error(f"{name}: lockstep barrier: {count()} datagrams read but only {want} were sent to this socket "
                    f"(a foreign sender?)")
    return msgs


class UdpLink(_LinkBase):
    kind = "udp"

    def __init__(self, local_port: int, remote_port: int, sysid: int = 1, compid: int = 1) -> None:
        super().__init__(sysid, compid)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._sock.bind((HOST, int(local_port)))
        except (OSError, OverflowError) as e:
            self._sock.close()
            raise SitlLinkError(f"cannot bind UDP {HOST}:{local_port}: {e}") from e
        self._sock.setblocking(False)
        self.local_port = self._sock.getsockname()[1]
        self.remote = (HOST, int(remote_port))
        self.latched = False
        self._out = bytearray()
        self.barrier: Callable[[], int] | None = None
        self.barrier_timeout_s = 5.0

    def describe(self) -> str:
        return f"udp {HOST}:{self.local_port} -> {self.remote[0]}:{self.remote[1]}"

    def fileno(self) -> int:
        return self._sock.fileno()

    def poll(self, max_packets: int = 500) -> list:
        msgs = self._drain(max_packets)
        if self.barrier is not None:
            want = self.barrier()
            if self.stats.rx_datagrams != want:
                msgs += await_datagrams(self.describe(), self._sock, lambda: self._drain(max_packets),
                                        lambda: self.stats.rx_datagrams, want, self.barrier_timeout_s)
        return msgs

    def _drain(self, max_packets: int) -> list:
        msgs = []
        for _ in range(max_packets):
            try:
                data, addr = self._sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # ICMP port unreachable surfaces here on Linux: ignore
                continue
            self.stats.rx_datagrams += 1
            if not self.latched:
                self.remote, self.latched = addr, True
            elif addr != self.remote:
                self.stats.rx_foreign += 1
                continue
            msgs.extend(self._decode(data))
        return msgs

    def _write(self, buf: bytes) -> None:
        # PX4 also packs several messages into one datagram (up to the MTU); receivers parse them in turn
        if len(self._out) + len(buf) > 1400:
            self.flush()
        self._out += buf

    def flush(self) -> None:
        if not self._out:
            return
        try:
            self._sock.sendto(self._out, self.remote)
            self.stats.tx_datagrams += 1
        except OSError:
            self.stats.tx_dropped += 1
        self._out = bytearray()

    def close(self) -> None:
        self._sock.close()


class TcpServerLink(_LinkBase):
    kind = "tcp"

    def __init__(self, port: int, sysid: int = 1, compid: int = 1, banner: bytes = b"") -> None:
        super().__init__(sysid, compid)
        self._banner = banner
        self._srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._srv.bind((HOST, int(port)))
            self._srv.listen(2)
        except (OSError, OverflowError) as e:
            self._srv.close()
            raise SitlLinkError(f"cannot listen on TCP {HOST}:{port}: {e}") from e
        self._srv.setblocking(False)
        self.port = self._srv.getsockname()[1]
        self._client: socket.socket | None = None
        self._txbuf = bytearray()
        self.connections = 0

    def describe(self) -> str:
        return f"tcp {HOST}:{self.port}"

    @property
    def connected(self) -> bool:
        return self._client is not None

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self._srv.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if self._client is None:
                c.setblocking(False)
                c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._client = c
                self._mav = self._new_parser()
                self._txbuf.clear()
                self._txbuf += self._banner  # ArduPilot SITL greets with plain text before any MAVLink
                self.connections += 1
            else:  # one client per port
                self.stats.rx_foreign += 1
                c.close()

    def _drop_client(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None
        self._txbuf.clear()

    def poll(self, max_reads: int = 64) -> list:
        self._accept()
        msgs = []
        if self._client is None:
            return msgs
        self._flush()
        for _ in range(max_reads):
            if self._client is None:
                break
            try:
                data = self._client.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._drop_client()
                break
            if not data:
                self._drop_client()
                break
            msgs.extend(self._decode(data))
        return msgs

    def _flush(self) -> None:
        while self._txbuf and self._client is not None:
            try:
                n = self._client.send(self._txbuf)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno not in (errno.EAGAIN,):
                    self._drop_client()
                return
            del self._txbuf[:n]

    def _write(self, buf: bytes) -> None:
        if self._client is None:
            return
        if len(self._txbuf) + len(buf) > _MAX_TX_BUFFER:
            self.stats.tx_dropped += 1
            return
        self._txbuf += buf

    def flush(self) -> None:
        self._flush()

    def close(self) -> None:
        self._drop_client()
        self._srv.close()
