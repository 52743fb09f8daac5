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
from collections.abc import Iterable, Mapping, Sequence

from tests.servers.process import (
    ServerNotFoundError,
    ServerProcess,
    ServerStartError,
    accepting,
    find_binary,
    free_port,
    read_logs,
)

_CANDIDATES = ("/usr/sbin/dnsmasq", "/usr/local/sbin/dnsmasq")


class DnsmasqNotFoundError(ServerNotFoundError):
    """dnsmasq is not installed: tests that need it fail loudly instead of skipping."""


class DnsmasqStartError(ServerStartError):
    """dnsmasq exited or never answered; the message carries its output."""


def find_dnsmasq() -> str:
    found = find_binary("dnsmasq", _CANDIDATES, path_first=False)
    if found is None:
        raise DnsmasqNotFoundError(
            "dnsmasq not found (looked in /usr/sbin and PATH): install it with "
            "`apt-get install -y dnsmasq-base` (`make test` does)"
        )
    return found


class DnsmasqServer(ServerProcess):
    """dnsmasq answering fixed records on ``127.0.0.1:port``.

    ``hosts``: name -> addresses (A/AAAA, plus PTR records for them);
    ``cnames``: alias -> target (the target must be one of ``hosts`` or another alias);
    ``srv``: (service name, target, port, priority, weight);
    ``txt``: name -> strings of one TXT record;
    ``mx``: (name, exchange, preference);
    ``ptr``: reverse name -> target;
    ``local_domains``: domains answered locally only (unknown names: NXDOMAIN).
    """

    label = "dnsmasq"
    tmp_prefix = "smokegate-dnsmasq-"
    start_error = DnsmasqStartError
    log_files = ("stderr.log", "dnsmasq.log")

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
        super().__init__(start_timeout=10.0)
        self.binary = find_dnsmasq()
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

    def log(self) -> str:
        return read_logs(self._tmp / "dnsmasq.log", tail=4000) if self._tmp else ""

    # -- internals ----------------------------------------------------------------------------

    def _pick_ports(self) -> None:
        self.port = free_port(udp=True)  # dnsmasq needs the port free for both UDP and TCP

    def _launch(self) -> None:
        assert self._tmp is not None
        self._spawn(
            [
                self.binary,
                "--keep-in-foreground",  # not --no-daemon: that also changes TCP handling (no fork)
                "--conf-file=/dev/null",  # never /etc/dnsmasq.conf
                "--no-resolv",
                "--no-hosts",
                "--no-poll",
                f"--port={self.port}",
                f"--listen-address={self.host}",
                "--bind-interfaces",
                f"--pid-file={self._tmp / 'dnsmasq.pid'}",
                # As root dnsmasq would switch to `nobody`; staying as ourselves keeps it able to
                # write its files and lets us signal it.
                f"--user={getpass.getuser()}",
                f"--log-facility={self._tmp / 'dnsmasq.log'}",
                "--log-queries",
                *self._records,
            ]
        )
        self._wait_ready(accepting(self.host, self.port))

    def _read_log(self) -> str:
        return super()._read_log()[-4000:]
