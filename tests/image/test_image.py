"""The container image, built for real and run from its own root filesystem.

The fixture runs ``scripts/image/build.sh`` (mmdebstrap + umoci, no daemon; the layer is cached
by a hash of its inputs, so this takes seconds unless something changed), unpacks the OCI layout
with ``umoci raw unpack``, and runs commands inside that root filesystem the way a container
runtime with ``readOnlyRootFilesystem: true`` would: own mount and PID namespaces, the root
mounted read-only, tmpfs on /tmp and /data, the image's user (65532), environment and working
directory (scripts/image/run-in-rootfs.sh). Nothing is faked but the runtime itself: no Docker
engine can run here. Needs root (chroot, mounts), as CI has.

The sizes are printed at the end of the module and written to $SMOKEGATE_ARTIFACTS_DIR/image/.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.util
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import textwrap
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import smokegate
from tests.helpers import free_port
from tests.image.conftest import IMAGE_SUMMARY

REPO = Path(__file__).resolve().parents[2]
IMAGE_SCRIPTS = REPO / "scripts" / "image"
RUN_IN_ROOTFS = IMAGE_SCRIPTS / "run-in-rootfs.sh"
ARTIFACTS = Path(os.environ.get("SMOKEGATE_ARTIFACTS_DIR", REPO / "artifacts")) / "image"
# Budgets that catch bloat (e.g. a dependency pulling in a compiler or docs), with ~20% room.
MAX_COMPRESSED_MB = 160
MAX_UNPACKED_MB = 460


def _load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


dockerfile_config = _load("dockerfile_config", IMAGE_SCRIPTS / "dockerfile_config.py")


@dataclass
class Image:
    layout: Path
    tag: str
    manifest: dict[str, Any]
    config: dict[str, Any]
    rootfs: Path
    build_seconds: float
    build_log: str
    sizes: dict[str, int] = field(default_factory=dict)

    @property
    def runtime(self) -> dict[str, Any]:
        return self.config["config"]

    @property
    def labels(self) -> dict[str, str]:
        return self.runtime["Labels"]

    def blob(self, digest: str) -> Path:
        return self.layout / "blobs" / digest.replace(":", "/")


def _tree_size(path: Path) -> int:
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            st = (Path(dirpath) / name).lstat()
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total


@pytest.fixture(scope="module")
def image(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Image]:
    if os.geteuid() != 0:
        pytest.skip("the image build and the in-image runs need root (mmdebstrap, chroot)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", str(IMAGE_SCRIPTS / "build.sh")],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=REPO,
    )
    seconds = time.monotonic() - started
    log = proc.stdout + proc.stderr
    (ARTIFACTS / "build.log").write_text(log)
    if proc.returncode != 0:
        pytest.fail(f"scripts/image/build.sh failed ({proc.returncode}):\n{log[-4000:]}")
    layout, _, tag = proc.stdout.strip().splitlines()[-1].rpartition(":")
    layout_path = Path(layout)
    index = json.loads((layout_path / "index.json").read_text())
    (entry,) = [
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
    ]
    manifest = json.loads((layout_path / "blobs" / entry["digest"].replace(":", "/")).read_text())
    config = json.loads(
        (layout_path / "blobs" / manifest["config"]["digest"].replace(":", "/")).read_text()
    )
    rootfs = tmp_path_factory.mktemp("image") / "rootfs"
    subprocess.run(
        ["umoci", "raw", "unpack", "--image", f"{layout}:{tag}", str(rootfs)],
        check=True,
        capture_output=True,
    )
    img = Image(layout_path, tag, manifest, config, rootfs, seconds, log)
    img.sizes = {
        "compressed": sum(layer["size"] for layer in manifest["layers"]),
        "unpacked": _tree_size(rootfs),
        "helm": (rootfs / "usr/local/bin/helm").stat().st_size,
        "kubectl": (rootfs / "usr/local/bin/kubectl").stat().st_size,
        "venv": _tree_size(rootfs / "opt/smokegate"),
        "python-stdlib": _tree_size(rootfs / "usr/lib/python3.11"),
    }
    img.sizes["debian-rest"] = img.sizes["unpacked"] - sum(
        img.sizes[k] for k in ("helm", "kubectl", "venv", "python-stdlib")
    )
    yield img
    _report(img, request)
    shutil.rmtree(rootfs, ignore_errors=True)


def _report(img: Image, request: pytest.FixtureRequest) -> None:
    mb = {k: round(v / 1e6, 1) for k, v in img.sizes.items()}
    cached = "is cached" in img.build_log
    summary = {
        "image": f"{img.layout}:{img.tag}",
        "manifest_digest": next(
            m["digest"] for m in json.loads((img.layout / "index.json").read_text())["manifests"]
        ),
        "layers": [layer["digest"] for layer in img.manifest["layers"]],
        "sizes_mb": mb,
        "build_seconds": round(img.build_seconds, 1),
        "layer_from_cache": cached,
    }
    (ARTIFACTS / "report.json").write_text(json.dumps(summary, indent=2) + "\n")
    request.config.stash[IMAGE_SUMMARY] = (
        f"image {img.tag}: {mb['compressed']} MB compressed, {mb['unpacked']} MB unpacked "
        f"(venv {mb['venv']}, helm {mb['helm']}, kubectl {mb['kubectl']}, "
        f"Python stdlib {mb['python-stdlib']}, rest of Debian {mb['debian-rest']}); "
        f"build.sh {img.build_seconds:.0f}s ({'layer cached' if cached else 'layer built'})"
    )


@dataclass
class Result:
    code: int
    out: str
    err: str


def _runtime_options(img: Image, *, data: Path | None, extra: list[str]) -> list[str]:
    """The run-in-rootfs.sh options that play the container runtime for this image's config."""
    rc = img.runtime
    uid, _, gid = rc["User"].partition(":")
    opts = ["--ro", "--user", rc["User"], "--workdir", rc["WorkingDir"]]
    for env in rc["Env"]:
        opts += ["--env", env]
    for volume in rc.get("Volumes", {}):
        if data is not None:
            opts += ["--bind", f"{data}:{volume}"]
        else:
            opts += ["--tmpfs", f"{volume}:uid={uid},gid={gid or uid},mode=0755"]
    return opts + extra


def run_in_image(
    img: Image,
    *args: str,
    entrypoint: bool = True,
    data: Path | None = None,
    extra: list[str] | None = None,
    timeout: float = 120,
) -> Result:
    """Run like ``docker run --read-only --tmpfs /tmp IMAGE ARGS`` (``entrypoint=False``:
    ``--entrypoint ARGS[0]``)."""
    command = [*img.runtime["Entrypoint"], *args] if entrypoint else list(args)
    options = _runtime_options(img, data=data, extra=extra or [])
    proc = subprocess.run(
        [str(RUN_IN_ROOTFS), *options, str(img.rootfs), "--", *command],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def data_dir(tmp_path: Path, img: Image) -> Path:
    """A host directory standing in for the /data volume, owned by the image's user."""
    uid, _, gid = img.runtime["User"].partition(":")
    path = tmp_path / "data"
    path.mkdir()
    os.chown(path, int(uid), int(gid or uid))
    return path


# --- config and labels ------------------------------------------------------------------------


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_labels_describe_this_build(image: Image) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    labels = image.labels
    assert labels["org.opencontainers.image.title"] == "smokegate"
    assert labels["org.opencontainers.image.description"] == project["description"]
    assert labels["org.opencontainers.image.licenses"] == project["license"]["text"]
    assert labels["org.opencontainers.image.version"] == smokegate.__version__ == image.tag
    assert re.fullmatch(r"https://\S+", labels["org.opencontainers.image.source"])
    revision = labels["org.opencontainers.image.revision"]
    assert revision.removesuffix("-dirty") == _git("rev-parse", "HEAD")
    # created: the newest commit of the inputs (SOURCE_DATE_EPOCH), in config and history alike.
    created = labels["org.opencontainers.image.created"]
    assert created == image.config["created"] == image.config["history"][0]["created"]
    when = datetime.datetime.fromisoformat(created.replace("Z", "+00:00"))
    assert when.tzinfo is not None and when <= datetime.datetime.now(datetime.UTC)


def test_runtime_config_non_root_smokegate_entrypoint(image: Image) -> None:
    rc = image.runtime
    assert image.config["os"] == "linux" and image.config["architecture"] == "amd64"
    uid, _, gid = rc["User"].partition(":")
    # Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
    assert uid.isdigit() and gid.isdigit() and int(uid) != 0 and int(gid) != 0
    assert rc["Entrypoint"] == ["smokegate"] and rc["Cmd"] == ["--help"]
    assert rc["WorkingDir"] == "/data" and list(rc["Volumes"]) == ["/data"]
    assert list(rc["ExposedPorts"]) == ["8080/tcp"]
    env = dict(e.split("=", 1) for e in rc["Env"])
    assert env["PATH"].split(":")[0] == "/opt/smokegate/bin"
    # Every place a tool writes by default is on /tmp (an emptyDir with a read-only root).
    for name in ("HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        assert env[name] == "/tmp" or env[name].startswith("/tmp/"), name
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert [layer["mediaType"] for layer in image.manifest["layers"]] == [
        "application/vnd.oci.image.layer.v1.tar+gzip"
    ]


def test_config_is_the_dockerfiles(image: Image) -> None:
    """build.sh takes the config from the Dockerfile's final stage: every field must match what
    `docker build` would set, given the same build args."""
    labels = image.labels
    expected = dockerfile_config.image_config(
        REPO / "Dockerfile",
        {
            "VERSION": labels["org.opencontainers.image.version"],
            "REVISION": labels["org.opencontainers.image.revision"],
            "CREATED": labels["org.opencontainers.image.created"],
            "SOURCE_URL": labels["org.opencontainers.image.source"],
        },
    )
    assert image.runtime == expected


def test_dockerfile_and_build_script_share_their_inputs(image: Image) -> None:
    """The two builds stay the same image because they read the same files; each one must."""
    dockerfile = (REPO / "Dockerfile").read_text()
    build_sh = (IMAGE_SCRIPTS / "build.sh").read_text()
    shared = [
        "debian-packages.txt",
        "dpkg-slim",
        "constraints.txt",
        "install-venv.sh",
        "strip-venv.sh",
        "finish-rootfs.py",
        "get-helm.sh",
    ]
    for name in shared:
        assert name in dockerfile, f"the Dockerfile no longer uses {name}"
        assert name in build_sh, f"build.sh no longer uses {name}"
    # Both start from Debian bookworm's minimal base.
    assert "ARG DEBIAN_IMAGE=debian:bookworm-slim" in dockerfile
    assert "--variant=minbase" in build_sh and "SUITE=bookworm" in build_sh
    # `docker build .` without build args labels the right version.
    assert f"ARG VERSION={smokegate.__version__}\n" in dockerfile, (
        "bump ARG VERSION in the Dockerfile to smokegate.__version__"
    )
    # The build context .dockerignore lets through holds everything both builds read.
    allowed = re.findall(r"^!(\S+)", (REPO / ".dockerignore").read_text(), re.M)
    for line in re.findall(r"^COPY .*", dockerfile, re.M):
        path = next(w for w in line.split()[1:] if not w.startswith("--"))
        if "--from=" not in line and path != ".":
            assert any(path == a or path.startswith(a + "/") for a in allowed), path


def _dpkg_status(rootfs: Path) -> dict[str, str]:
    installed = {}
    for stanza in (rootfs / "var/lib/dpkg/status").read_text().split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " "
        )
        if fields.get("Status") == "install ok installed":
            installed[fields["Package"]] = fields["Version"]
    return installed


def test_debian_packages_are_the_list_and_minbase(image: Image) -> None:
    installed = _dpkg_status(image.rootfs)
    wanted = [
        line.split("#", 1)[0].strip()
        for line in (IMAGE_SCRIPTS / "debian-packages.txt").read_text().splitlines()
    ]
    for package in filter(None, wanted):
        assert package in installed, f"{package} is listed but not installed"
    # Merged /usr without the usrmerge package (which would pull in perl, +45 MB), no docs.
    assert "usrmerge" not in installed and "perl" not in installed
    assert (image.rootfs / "bin").is_symlink()
    assert "python3.11" in installed and installed["python3.11"].startswith("3.11.")
    (ARTIFACTS / "debian-packages.txt").write_text(
        "".join(f"{name} {version}\n" for name, version in sorted(installed.items()))
    )
    docs = [p.name for p in (image.rootfs / "usr/share/doc").rglob("*") if p.is_file()]
    assert docs and set(docs) == {"copyright"}
    assert not list((image.rootfs / "usr/share/man").rglob("*.gz"))
    assert not list((image.rootfs / "var/lib/apt/lists").glob("*_Packages*"))


def test_venv_is_exactly_the_pinned_packages(image: Image) -> None:
    import importlib.metadata

    site = image.rootfs / "opt/smokegate/lib/python3.11/site-packages"
    installed = {
        re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d.version
        for d in importlib.metadata.distributions(path=[str(site)])
    }
    assert installed.pop("smokegate") == smokegate.__version__
    pins = dict(
        line.split("==")
        for line in (IMAGE_SCRIPTS / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    unpinned = {name: v for name, v in installed.items() if pins.get(name) != v}
    assert not unpinned, (
        f"installed but not pinned in scripts/image/constraints.txt: {unpinned}; "
        "run scripts/image/build.sh --update-constraints"
    )
    # pip is only the installer: not in the image.
    assert "pip" not in installed and not (site / "pip").exists()


def test_bytecode_is_precompiled_for_a_read_only_root(image: Image) -> None:
    """Each module has its .pyc next to it (a read-only root cannot cache them at run time), as
    unchecked hash-based bytecode (no timestamps: reproducible; no source check on import)."""
    venv = image.rootfs / "opt/smokegate/lib/python3.11/site-packages"
    sources = list(venv.rglob("*.py"))
    assert len(sources) > 1000
    missing, flags = [], set()
    for source in sources:
        pyc = source.parent / "__pycache__" / f"{source.stem}.cpython-311.pyc"
        if not pyc.exists():
            missing.append(str(source.relative_to(venv)))
            continue
        flags.add(int.from_bytes(pyc.read_bytes()[4:8], "little"))
    assert not missing, missing[:20]
    assert flags == {0b01}  # hash-based, unchecked


def test_ownership_and_permissions(image: Image) -> None:
    """Root owns everything but /data (the image's user) and apt's download dir (apt's own
    user), nothing is world-writable but the sticky tmp dirs, and no file is setuid/setgid."""
    others, writable, setid = [], [], []
    for dirpath, dirnames, filenames in os.walk(image.rootfs):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            inside = "/" + str(path.relative_to(image.rootfs))
            if st.st_uid != 0:
                others.append(inside)
            sticky_dir = stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX
            if not stat.S_ISLNK(st.st_mode) and st.st_mode & stat.S_IWOTH and not sticky_dir:
                writable.append(inside)
            if st.st_mode & (stat.S_ISUID | stat.S_ISGID) and not stat.S_ISDIR(st.st_mode):
                setid.append(inside)
    assert sorted(others) == ["/data", "/var/cache/apt/archives/partial"]
    assert (image.rootfs / "data").stat().st_uid == int(image.runtime["User"].split(":")[0])
    assert writable == [] and setid == []
    passwd = (image.rootfs / "etc/passwd").read_text()
    assert "smokegate:x:65532:65532:smokegate:/tmp:/usr/sbin/nologin" in passwd.splitlines()


def test_size_within_budget(image: Image) -> None:
    assert image.sizes["compressed"] < MAX_COMPRESSED_MB * 1e6, image.sizes
    assert image.sizes["unpacked"] < MAX_UNPACKED_MB * 1e6, image.sizes


# --- running it -------------------------------------------------------------------------------


def test_version(image: Image) -> None:
    result = run_in_image(image, "--version")
    assert result.code == 0, result
    assert result.out.strip() == f"smokegate {smokegate.__version__}"


def test_no_arguments_prints_help(image: Image) -> None:
    result = run_in_image(image, *image.runtime["Cmd"])
    assert result.code == 0, result
    assert "usage: smokegate" in result.out and "serve" in result.out


def test_demo_passes_as_non_root_on_a_read_only_root(image: Image, tmp_path: Path) -> None:
    data = data_dir(tmp_path, image)
    result = run_in_image(image, "demo", data=data, extra=["--env", "NO_COLOR=1"])
    assert result.code == 0, result
    assert "PASSED" in result.out, result.out
    report = json.loads((data / "smokegate-demo-reports/report.json").read_text())
    assert report["ok"] is True and report["counts"]["total"] > 0, report["counts"]
    assert report["counts"]["failed"] == report["counts"]["error"] == 0, report["counts"]
    written = sorted(p.name for p in (data / "smokegate-demo-reports").iterdir())
    assert {"junit.xml", "report.html", "report.json"} <= set(written)
    assert all(p.stat().st_uid == 65532 for p in (data / "smokegate-demo-reports").iterdir())


def test_demo_failure_exit_code(image: Image) -> None:
    result = run_in_image(image, "demo", "--fail", extra=["--env", "NO_COLOR=1"])
    assert result.code == 1, result
    assert "FAILED" in result.out, result.out


def test_serve_help(image: Image) -> None:
    result = run_in_image(image, "serve", "--help")
    assert result.code == 0, result
    assert "--config" in result.out


def test_helm_and_kubectl_are_the_tested_binaries(image: Image) -> None:
    helm = run_in_image(image, "helm", "version", "--short", entrypoint=False)
    assert helm.code == 0 and re.match(r"v4\.\d+\.\d+", helm.out), helm
    kubectl = run_in_image(image, "kubectl", "version", "--client", entrypoint=False)
    assert kubectl.code == 0 and "Client Version: v1.35" in kubectl.out, kubectl
    # helm keeps its cache, config and data under the image's XDG dirs: all on /tmp.
    env = run_in_image(image, "helm", "env", entrypoint=False)
    paths = dict(re.findall(r'^(HELM_\w+_HOME)="([^"]*)"', env.out, re.M))
    assert set(paths) >= {"HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"}, env
    assert all(p.startswith("/tmp/") for p in paths.values()), paths
    # The very binaries the test suite drives (scripts/kube/get-helm.sh).
    kube_bin = Path(os.environ.get("SMOKEGATE_KUBE_BIN", Path.home() / ".cache/smokegate/kube/bin"))
    for name in ("helm", "kubectl"):
        assert (image.rootfs / "usr/local/bin" / name).read_bytes() == (
            kube_bin / name
        ).read_bytes()


DRIVERS = textwrap.dedent(
    """\
    import sys, ssl, sqlite3
    import psycopg, psycopg_binary, aiomysql, redis, grpc, grpc_health.v1.health_pb2
    import uvicorn, uvloop, starlette, sqlalchemy.ext.asyncio, aiosqlite, prometheus_client
    import cryptography.hazmat.bindings._rust, httptools, orjson, pydantic_core, lightkube
    print(sys.version.split()[0], psycopg.pq.__impl__, grpc.__version__, ssl.OPENSSL_VERSION)
    """
)


def test_every_extras_driver_imports(image: Image) -> None:
    result = run_in_image(image, "/opt/smokegate/bin/python", "-c", DRIVERS, entrypoint=False)
    assert result.code == 0, result
    python, impl, grpc_version, openssl = result.out.split(" ", 3)
    assert python.startswith("3.11.") and impl == "binary"
    assert grpc_version.count(".") == 2 and openssl.startswith("OpenSSL 3")


class _Target:
    """A loopback HTTP service for the in-image server's suite to check."""

    def __init__(self) -> None:
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = b'{"status": "ok"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _http(method: str, url: str, body: dict[str, Any] | None = None, token: str = "") -> Any:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read() or b"null") if resp.status != 204 else None


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, KeyError):
            last = predicate()
            if last:
                return last
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def test_serve_keeps_its_history_on_the_data_volume(image: Image, tmp_path: Path) -> None:
    """`serve` as the chart runs it: config and suites from a read-only mount, SQLite on /data,
    the root read-only. A run requested through the API is checked, stored and listed; SIGTERM
    stops it cleanly (it is PID 1, as in a container)."""
    target = _Target()
    port, token = free_port(), "image-test-token"
    conf = tmp_path / "config"
    (conf / "suites").mkdir(parents=True)
    (conf / "suites/web.yaml").write_text(
        "apiVersion: smokegate.io/v1\nkind: Suite\nmetadata: {name: web}\nspec:\n  checks:\n"
        f"    - name: health\n      http: {{url: '{target.url}/health', expect: {{status: 200}}}}\n"
    )
    (conf / "serve.yaml").write_text(
        "apiVersion: smokegate.io/v1\nkind: ServerConfig\n"
        f"listen: 127.0.0.1:{port}\n"
        "store: {url: 'sqlite:////data/history.db'}\n"
        "suites: {directories: [suites]}\n"
        "releases:\n  - match: {namespace: apps}\n    suites: [web]\n"
        "api: {token: {env: SMOKEGATE_API_TOKEN}}\n"
    )
    data = data_dir(tmp_path, image)
    opts = _runtime_options(
        image,
        data=data,
        extra=["--bind", f"{conf}:/etc/smokegate:ro", "--env", f"SMOKEGATE_API_TOKEN={token}"],
    )
    serve = ["smokegate", "serve", "--config", "/etc/smokegate/serve.yaml"]
    log = tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(RUN_IN_ROOTFS), *opts, str(image.rootfs), "--", *serve],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait(lambda: _status(f"{url}/readyz") == 200, 60, "/readyz")
        assert (data / "history.db").is_file() and (data / "history.db").stat().st_uid == 65532
        queued = _http("POST", f"{url}/api/v1/runs", {"release": "apps/web"}, token)
        job = _wait(
            lambda: (j := _http("GET", f"{url}{queued['status']}", token=token))["runId"] and j,
            60,
            "the run",
        )
        run = _http("GET", f"{url}/api/v1/runs/{job['runId']}", token=token)
        assert run["verdict"] == "passed" and run["counts"]["passed"] == 1, run
        # The command is PID 1 of its PID namespace, i.e. the only child of `unshare`.
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert len(children) == 1, children
        os.kill(int(children[0]), signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        target.close()
    assert "Traceback" not in log.read_text()


def test_python_is_the_rootfs_own(image: Image) -> None:
    """The venv runs Debian's interpreter (the wheels were chosen for it), not the build host's."""
    assert "home = /usr/bin\n" in (image.rootfs / "opt/smokegate/pyvenv.cfg").read_text()
    code = "import os, sys; print(os.path.realpath(sys.executable), sys.base_prefix)"
    result = run_in_image(image, "python3", "-c", code, entrypoint=False)
    assert result.code == 0, result
    assert result.out.split() == ["/usr/bin/python3.11", "/usr"], result
