"""A throwaway DNS server for tests: Debian's dnsmasq in the foreground on a loopback port.

    with DnsmasqServer(hosts={"a.test": ["10.0.0.1", "fd00::1"]},
                       cnames={"alias.test": "a.test"}) as dns:
        ...  # query 127.0.0.1:dns.port

It reads no configuration, hosts file or resolv.conf and forwards nothing: it answers only the
records given, and (``local_domains``, default ``test``) NXDOMAIN for any other name in those
domains. Everything it writes lives in a private temporary directory.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

_CANDIDATES = ("/usr/sbin/dnsmasq", "/usr/local/sbin/dnsmasq")


class DnsmasqNotFoundError(RuntimeError):
    """dnsmasq is not installed: tests that need it fail loudly instead of skipping."""


class DnsmasqStartError(RuntimeError):
    """dnsmasq exited or never answered; the message carries its output."""


def find_dnsmasq() -> str:
    found = next((p for p in _CANDIDATES if os.access(p, os.X_OK)), None) or shutil.which("dnsmasq")
    if found is None:
        raise DnsmasqNotFoundError(
            "dnsmasq not found (looked in /usr/sbin and PATH): install it with "
            "`apt-get install -y dnsmasq-base` (`make test` does)"
        )
    return found


def _free_udp_tcp_port() -> int:
    # dnsmasq needs the port free for both UDP and TCP.
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port for UDP and TCP")


class DnsmasqServer:
    """dnsmasq answering fixed records on ``127.0.0.1:port``.

    ``hosts``: name -> addresses (A/AAAA, plus PTR records for them);
    ``cnames``: alias -> target (the target must be one of ``hosts`` or another alias);
    ``srv``: (service name, target, port, priority, weight);
    ``txt``: name -> strings of one TXT record;
    ``mx``: (name, exchange, preference);
    ``ptr``: reverse name -> target;
    ``local_domains``: domains answered locally only (unknown names: NXDOMAIN).
    """

    def __init__(
        self,
        *,
        hosts: Mapping[str, Sequence[str]] | None = None,
        cnames: Mapping[str, str] | None = None,
        srv: Iterable[tuple[str, str, int, int, int]] = (),
        txt: Mapping[str, Sequence[str]] | None = None,
        mx: Iterable[tuple[str, str, int]] = (),
        ptr: Mapping[str, str] | None = None,
        local_domains: Sequence[str] = ("test",),
        ttl: int = 60,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.binary = find_dnsmasq()
        self.port = 0
        self.host = "127.0.0.1"
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: Path | None = None
        args = [f"--local-ttl={ttl}"]
        args += [f"--local=/{d}/" for d in local_domains]
        for name, addrs in (hosts or {}).items():
            args += [f"--host-record={name},{addr}" for addr in addrs]
        args += [f"--cname={alias},{target}" for alias, target in (cnames or {}).items()]
        args += [f"--srv-host={n},{t},{p},{prio},{w}" for n, t, p, prio, w in srv]
        for name, strings in (txt or {}).items():
            # On the command line dnsmasq keeps quotes literally: strings go bare (no commas).
            args.append(f"--txt-record={name}," + ",".join(strings))
        args += [f"--mx-host={n},{e},{pref}" for n, e, pref in mx]
        args += [f"--ptr-record={n},{t}" for n, t in (ptr or {}).items()]
        self._records = [*args, *extra_args]

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> DnsmasqServer:
        self._dir = Path(tempfile.mkdtemp(prefix="smokegate-dnsmasq-"))
        self.port = _free_udp_tcp_port()
        log = self._dir / "dnsmasq.log"
        cmd = [
            self.binary,
            "--keep-in-foreground",  # not --no-daemon: that also changes TCP handling (no fork)
            "--conf-file=/dev/null",  # never /etc/dnsmasq.conf
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            f"--port={self.port}",
            f"--listen-address={self.host}",
            "--bind-interfaces",
            f"--pid-file={self._dir / 'dnsmasq.pid'}",
            # As root dnsmasq would switch to `nobody`; staying as ourselves keeps it able to
            # write its files and lets us signal it.
            f"--user={getpass.getuser()}",
            f"--log-facility={log}",
            "--log-queries",
            *self._records,
        ]
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self._wait_ready(log)
        return self

    def _wait_ready(self, log: Path) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                out = self._proc.stdout.read().decode() if self._proc.stdout else ""
                self._cleanup()
                raise DnsmasqStartError(
                    f"dnsmasq exited with {self._proc.returncode}: {out.strip()}\n{_read(log)}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise DnsmasqStartError(f"dnsmasq did not listen on {self.address} within 10s")

    def log(self) -> str:
        return _read(self._dir / "dnsmasq.log") if self._dir else ""

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc is not None and self._proc.stdout:
            self._proc.stdout.close()
        self._cleanup()

    def _cleanup(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> DnsmasqServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-4000:]
    except OSError:
        return ""
