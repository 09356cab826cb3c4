"""Links: UDP (listen / connect), TCP, serial and log files behind one small interface, via pymavlink.

URLs (``LinkConfig.url``):
- ``udpin:127.0.0.1:14540``  listen (PX4 SITL's onboard link sends to 14540); replies go to the last peer
- ``udpout:127.0.0.1:14580`` send to a fixed address
- ``tcp:127.0.0.1:5760``     connect (ArduPilot SITL SERIAL0); the connect itself has a timeout
- ``serial:/dev/ttyACM0:921600`` or a bare device path (baud from ``LinkConfig.baud``)
- ``file:flight.tlog`` or a path ending in .tlog: replay; records come back with their logged time

Recording: with ``LinkConfig.tlog_path`` every decoded incoming frame and every frame we send is appended to a
.tlog (8-byte big-endian Unix microseconds, then the frame: what QGroundControl, MAVProxy and pymavlink read),
stamped with the link clock plus ``tlog_clock_offset_s`` (default: Unix time minus the link clock at open), so
``autonomy replay`` can line the camera frames up with it. A failing disk stops the recording (counted in
``LinkStats.tlog_errors``), never the link.

Every wait has a timeout. Garbage, truncated frames, bad CRCs and bad signatures become counted drops
(``LinkStats``), never exceptions. Opening failures raise ``LinkError`` with the reason.

Signing (MAVLink 2, AUTOPILOT_SPEC section 10): with a 32-byte key every frame we send is signed. Incoming
unsigned frames are let through the parser (PX4 <= 1.16 does not sign telemetry) but carry ``_signed=False``;
the bridge refuses unsigned or badly signed *commands* and counts them.
"""

from __future__ import annotations

import hashlib
import os
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from autonomy.mavlink.clock import Clock, MonotonicClock
from autonomy.mavlink.errors import LinkError
from autonomy.mavlink.wire import mavutil


@dataclass(frozen=True)
class LinkConfig:
    url: str
    baud: int = 921600
    source_system: int = 1          # PX4 tracks a companion only when its sysid equals the vehicle's
    source_component: int = 191     # MAV_COMP_ID_ONBOARD_COMPUTER
    connect_timeout_s: float = 3.0
    signing_key: bytes | None = None       # 32 bytes; or derived from a passphrase file, see load_signing_key
    signing_link_id: int = 0
    # UDP only: message ids decoded (others skipped undecoded, counted); None decodes everything
    accept_ids: frozenset[int] | None = None
    tlog_path: str | None = None            # record the link to this .tlog (appended); None: no recording
    tlog_clock_offset_s: float | None = None  # tlog stamp = link clock + this; None: Unix time - clock at open


class TlogWriter:
    """Appends MAVLink frames to a .tlog: ``>Q`` Unix microseconds, then the frame bytes."""

    def __init__(self, path: str | Path, offset_s: float, flush_every: int = 200) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = self.path.open("ab")
        self.offset_s = float(offset_s)
        self._flush_every = flush_every
        self._n = 0

    def write(self, t_s: float, frame: bytes) -> None:
        self._f.write(struct.pack(">Q", max(int((t_s + self.offset_s) * 1e6), 0)) + frame)
        self._n += 1
        if self._n % self._flush_every == 0:
            self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()


def load_signing_key(path: str | Path) -> bytes:
    """A 32-byte signing key from a file: 64 hex characters, 32 raw bytes, or a passphrase (SHA-256 of it,
    as MAVProxy's ``signing setup`` does)."""
    p = Path(path)
    if not p.is_file():
        raise LinkError(f"signing key file {p} does not exist")
    raw = p.read_bytes()
    text = raw.strip()
    try:
        if len(text) == 64:
            return bytes.fromhex(text.decode())
    except ValueError:
        pass
    if len(raw) == 32:
        return raw
    return hashlib.sha256(text).digest()


@dataclass
class LinkStats:
    """Counters (monotonic, never reset) of what the link received and dropped."""

    received: int = 0
    sent: int = 0
    bad_data: int = 0            # garbage, truncated frames, bad CRC, unparseable
    bad_signature: int = 0       # signed frames whose signature failed (signing configured)
    unsigned: int = 0            # unsigned frames while signing is configured
    send_errors: int = 0
    skipped: int = 0             # well-formed frames not decoded (UDP, id not in LinkConfig.accept_ids)
    tlog_written: int = 0        # frames recorded to LinkConfig.tlog_path
    tlog_errors: int = 0         # recording failures (the recording stops at the first one)
    datagrams: int = 0           # UDP datagrams read (the lockstep world's delivery barrier counts them)
    by_reason: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str) -> None:
        self.bad_data += 1
        key = reason.split(" ")[0:3]
        k = " ".join(key)
        self.by_reason[k] = self.by_reason.get(k, 0) + 1


def _frame_len(data: bytes, i: int) -> int:
    """Length of the MAVLink frame starting at ``data[i]`` (0 when it is not a frame start)."""
    magic = data[i]
    if magic == 0xFD:
        if i + 3 > len(data):
            return 0
        return 12 + data[i + 1] + (13 if data[i + 2] & 0x01 else 0)
    if magic == 0xFE:
        if i + 2 > len(data):
            return 0
        return 8 + data[i + 1]
    return 0


def _split_frames(data: bytes, accept: frozenset[int]) -> list[bytes] | None:
    """The accepted frames of a datagram, or None when it does not consist of whole frames."""
    out = []
    i, n = 0, len(data)
    while i < n:
        flen = _frame_len(data, i)
        if flen == 0 or i + flen > n:
            return None
        msgid = (data[i + 7] | data[i + 8] << 8 | data[i + 9] << 16) if data[i] == 0xFD else data[i + 5]
        if msgid in accept:
            out.append(data[i:i + flen])
        i += flen
    return out


def _count_frames(data: bytes) -> int:
    i = k = 0
    while i < len(data):
        i += _frame_len(data, i) or len(data)
        k += 1
    return k


class _TcpConn(mavutil.mavtcp):
    """mavutil's TCP link with a connect timeout and without its print-and-retry reconnect loop."""

    def __init__(self, device: str, timeout_s: float, **kw) -> None:
        self._timeout_s = timeout_s
        self.closed_by_peer = False
        super().__init__(device, retries=0, **kw)

    def do_connect(self) -> None:
        self.port = socket.create_connection(self.destination_addr, timeout=self._timeout_s)
        self.port.setblocking(False)
        self.port.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_disconnect(self) -> None:
        self.closed_by_peer = True

    def handle_eof(self) -> None:
        self.closed_by_peer = True

    def reconnect(self) -> None:  # the bridge decides when to reconnect
        return

    def recv(self, n=None):
        if self.closed_by_peer:
            return b""
        return super().recv(n)


class Link:
    """One open MAVLink transport. Thread-safe send; receive from one thread only.

    ``recv(max_wait_s)`` returns a list of ``(msg, t_recv_s)``: messages with their arrival time on the
    injected clock (for log files, the recorded time, seconds). BAD_DATA never leaves this class.
    """

    def __init__(self, config: LinkConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or MonotonicClock()
        self.stats = LinkStats()
        self._send_lock = threading.Lock()
        self._conn = None
        self._udp = False
        self.is_log = False
        self._tlog: TlogWriter | None = None
        self._tlog_lock = threading.Lock()     # the receive thread and senders both record
        self.open()

    # ---------------------------------------------------------------- open / close
    def open(self) -> None:
        cfg = self.config
        url = cfg.url
        kw = {"source_system": cfg.source_system, "source_component": cfg.source_component}
        try:
            if url.startswith("udpin:"):
                conn = mavutil.mavudp(url[6:], input=True, **kw)
            elif url.startswith(("udpout:", "udp:")):
                conn = mavutil.mavudp(url.split(":", 1)[1], input=False, **kw)
            elif url.startswith("tcp:"):
                conn = _TcpConn(url[4:], cfg.connect_timeout_s, **kw)
            elif url.startswith("file:") or url.endswith(".tlog"):
                path = url.removeprefix("file:")
                if not os.path.isfile(path):
                    raise LinkError(f"log file {path} does not exist")
                conn = mavutil.mavlogfile(path, **kw)
                self.is_log = True
            else:
                conn = self._open_serial(url)
        except LinkError:
            raise
        except (OSError, ValueError) as exc:
            raise LinkError(f"cannot open MAVLink link {url!r}: {type(exc).__name__}: {exc}") from exc
        conn.robust_parsing = True
        conn.mav.robust_parsing = True
        if cfg.signing_key is not None:
            if len(cfg.signing_key) != 32:
                conn.close()
                raise LinkError(f"signing key must be 32 bytes, got {len(cfg.signing_key)}")
            conn.setup_signing(cfg.signing_key, sign_outgoing=True,
                               allow_unsigned_callback=self._allow_unsigned, link_id=cfg.signing_link_id)
        self._conn = conn
        self._udp = isinstance(conn, mavutil.mavudp)
        if cfg.tlog_path and not self.is_log and self._tlog is None:
            off = cfg.tlog_clock_offset_s
            if off is None:
                off = time.time() - self.clock.now_s()   # the file format's Unix time, not a decision input
            try:
                self._tlog = TlogWriter(cfg.tlog_path, off)
            except OSError as exc:
                conn.close()
                self._conn = None
                raise LinkError(f"cannot record the link to {cfg.tlog_path}: {exc}") from exc

    def _open_serial(self, url: str):
        spec = url.removeprefix("serial:")
        device, baud = spec, self.config.baud
        if ":" in spec:
            device, b = spec.rsplit(":", 1)
            if b.isdigit():
                baud = int(b)
        if not os.path.exists(device):
            raise LinkError(f"serial device {device} does not exist (url {url!r})")
        try:
            return mavutil.mavserial(device, baud=baud, source_system=self.config.source_system,
                                     source_component=self.config.source_component)
        except ImportError as exc:
            raise LinkError(f"serial links need pyserial (pip install pyserial): {exc}") from exc
        except Exception as exc:  # pyserial's SerialException is not an OSError on every version
            raise LinkError(f"cannot open serial device {device} at {baud} baud: {exc}") from exc

    def _allow_unsigned(self, _mav, _msgid: int) -> bool:
        # Let unsigned frames through the parser; the bridge decides per message (commands refused).
        self.stats.unsigned += 1
        return True

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
            self._conn = None
        with self._tlog_lock:
            if self._tlog is not None:
                self._tlog.close()
                self._tlog = None

    def _record(self, t_s: float, msg) -> None:
        with self._tlog_lock:
            w = self._tlog
            if w is None:
                return
            try:
                w.write(t_s, bytes(msg.get_msgbuf()))
                self.stats.tlog_written += 1
            except (OSError, ValueError, TypeError):
                self.stats.tlog_errors += 1
                w.close()
                self._tlog = None

    @property
    def is_open(self) -> bool:
        if self._conn is None:
            return False
        return not getattr(self._conn, "closed_by_peer", False)

    @property
    def tlog_clock_offset_s(self) -> float | None:
        """Unix time minus the link clock as stamped in the recording (None when not recording)."""
        w = self._tlog
        return None if w is None else w.offset_s

    @property
    def signing(self) -> bool:
        return self.config.signing_key is not None

    @property
    def mav(self):
        """The pymavlink encoder (``*_encode`` methods) for building messages to ``send``."""
        if self._conn is None:
            raise LinkError(f"link {self.config.url!r} is closed")
        return self._conn.mav

    # ---------------------------------------------------------------- I/O
    def wait_readable(self, max_wait_s: float) -> bool:
        conn = self._conn
        if conn is None or self.is_log or max_wait_s <= 0:
            return True
        fd = getattr(conn, "fd", None)
        if fd is None:
            return True
        try:
            r, _, _ = select.select([fd], [], [], max_wait_s)
        except (OSError, ValueError):
            return False
        return bool(r)

    def recv(self, max_wait_s: float = 0.0, max_msgs: int = 1000) -> list:
        """Messages that arrived, as ``[(msg, t_recv_s)]``; waits at most ``max_wait_s`` for the first."""
        conn = self._conn
        if conn is None:
            return []
        if max_wait_s > 0 and not self.wait_readable(max_wait_s):
            return []
        if self._udp:
            return self._recv_udp(conn, max_msgs)
        out = []
        sig = conn.mav.signing
        for _ in range(max_msgs):
            badsig_before = sig.badsig_count
            try:
                msg = conn.recv_msg()
            except Exception as exc:  # noqa: BLE001 - a library failure on bad input is a drop, not a crash
                if isinstance(exc, OSError) and not isinstance(exc, BlockingIOError) \
                        and hasattr(conn, "closed_by_peer"):
                    conn.closed_by_peer = True
                    break
                self.stats.drop(f"exception {type(exc).__name__}")
                continue
            if sig.badsig_count != badsig_before:
                self.stats.bad_signature += sig.badsig_count - badsig_before
            if msg is None:
                break
            if msg.get_type() == "BAD_DATA":
                self.stats.drop(str(getattr(msg, "reason", "bad data")))
                continue
            self.stats.received += 1
            if self.is_log:
                out.append((msg, float(getattr(msg, "_timestamp", 0.0))))
            else:
                t_recv = self.clock.now_s()
                out.append((msg, t_recv))
                if self._tlog is not None:
                    self._record(t_recv, msg)
        return out

    def _recv_udp(self, conn, max_datagrams: int) -> list:
        """UDP fast path: one datagram holds whole frames, so frames whose id is not in ``accept_ids`` are
        skipped (counted in ``stats.skipped``) without being decoded; the rest go to pymavlink's parser.
        Anything that does not walk as frames (garbage, truncation) goes to the parser whole and comes back
        as counted BAD_DATA."""
        out = []
        mav = conn.mav
        sig = mav.signing
        accept = self.config.accept_ids
        for _ in range(max_datagrams):
            try:
                data = conn.recv()
            except OSError as exc:
                self.stats.drop(f"exception {type(exc).__name__}")
                break
            if not data:
                break
            self.stats.datagrams += 1
            t_recv = self.clock.now_s()
            chunks = _split_frames(data, accept) if accept is not None else [data]
            if chunks is None:
                chunks = [data]
            else:
                self.stats.skipped += _count_frames(data) - len(chunks)
            for chunk in chunks:
                badsig_before = sig.badsig_count
                try:
                    msgs = mav.parse_buffer(chunk) or []
                except Exception as exc:  # noqa: BLE001
                    self.stats.drop(f"exception {type(exc).__name__}")
                    continue
                if sig.badsig_count != badsig_before:
                    self.stats.bad_signature += sig.badsig_count - badsig_before
                for msg in msgs:
                    if msg.get_type() == "BAD_DATA":
                        self.stats.drop(str(getattr(msg, "reason", "bad data")))
                        continue
                    self.stats.received += 1
                    out.append((msg, t_recv))
                    if self._tlog is not None:
                        self._record(t_recv, msg)
        return out

    def send(self, msg) -> bool:
        """Pack (sign when configured) and send; False (counted) when the transport refused it."""
        conn = self._conn
        if conn is None or self.is_log:
            return False
        with self._send_lock:
            try:
                conn.mav.send(msg)
            except Exception:  # noqa: BLE001 - counted, the caller's loop goes on
                self.stats.send_errors += 1
                return False
            if self._tlog is not None:
                self._record(self.clock.now_s(), msg)
        self.stats.sent += 1
        return True

    def send_raw(self, data: bytes) -> None:
        """Raw bytes (tests inject garbage through this on a peer link)."""
        with self._send_lock:
            self._conn.write(data)
