# syntax=docker/dockerfile:1
# The smokegate container image: `smokegate` as entrypoint, every extra (PostgreSQL, MySQL, Redis,
# gRPC, server), helm + kubectl for `helm-test`, non-root (UID 65532), read-only-root friendly.
#
#   docker build -t smokegate:0.1.0 \
#     --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg CREATED="$(date -u -d @"$(git log -1 --format=%ct)" +%Y-%m-%dT%H:%M:%SZ)" .
#
# scripts/image/build.sh builds the same image without a Docker daemon (mmdebstrap + umoci) and is
# what `make image` and the tests use; see docs/image.md. To keep the two identical, both read
#   scripts/image/debian-packages.txt   the Debian packages,
#   scripts/image/dpkg-slim             the dpkg excludes (no docs, man pages, translations),
#   scripts/image/constraints.txt       the exact Python packages (and pip/setuptools) versions,
#   scripts/image/install-venv.sh       how /opt/smokegate is made (wheels only, compiled .pyc),
#   scripts/image/strip-venv.sh         debug symbols stripped from the wheels' shared objects,
#   scripts/image/finish-rootfs.py      the user, /data and the clean-up,
#   scripts/kube/get-helm.sh            helm + kubectl (the binaries the test suite uses),
# and build.sh takes the image config (USER, ENV, WORKDIR, ENTRYPOINT, CMD, VOLUME, EXPOSE, LABEL)
# from the final stage below. tests/image/test_image.py fails when they drift apart.
#
# linux/amd64 only: the helm and kubectl binaries come from an amd64 build.

ARG DEBIAN_IMAGE=debian:bookworm-slim

# ---- builder: the wheel, the venv and helm/kubectl, with the final image's own interpreter ----
FROM ${DEBIAN_IMAGE} AS builder
ARG SOURCE_DATE_EPOCH
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
COPY scripts/image/dpkg-slim /etc/dpkg/dpkg.cfg.d/smokegate-slim
COPY scripts/image/debian-packages.txt /tmp/debian-packages.txt
# The runtime packages (so the venv's interpreter is the final image's /usr/bin/python3), plus
# python3-venv (a pip to bootstrap with) and binutils (strip).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      $(sed 's/#.*//' /tmp/debian-packages.txt) python3-venv binutils \
 && rm -rf /var/lib/apt/lists/*
COPY . /src
RUN pip_pin="$(grep '^pip==' /src/scripts/image/constraints.txt)" \
 && B=/tmp/smokegate-build && mkdir -p $B/dist $B/wheels \
 && python3 -m venv /tools \
 && /tools/bin/pip install -q "$pip_pin" \
 && /tools/bin/pip download -q --no-deps -d $B "$pip_pin" \
 && /tools/bin/pip wheel -q --no-deps --build-constraint /src/scripts/image/constraints.txt \
      -w $B/dist /src \
 && sh /src/scripts/image/install-venv.sh /opt/smokegate $B/wheels $B/dist/smokegate-*.whl \
      $B/pip-*.whl /src/scripts/image/constraints.txt \
 && sh /src/scripts/image/strip-venv.sh /opt/smokegate \
 && PYTHON=/tools/bin/python bash /src/scripts/kube/get-helm.sh /opt/kube-bin

# ---- the image ----
FROM ${DEBIAN_IMAGE}
# Label values; build.sh passes them from git (docker build: --build-arg, see above).
# VERSION must equal smokegate.__version__ (a test checks it).
ARG VERSION=0.1.0
ARG REVISION=
ARG CREATED=
# Placeholder until the project has a public home; override with --build-arg SOURCE_URL=...
ARG SOURCE_URL=https://github.com/smokegate/smokegate
COPY scripts/image/dpkg-slim /etc/dpkg/dpkg.cfg.d/smokegate-slim
RUN --mount=type=bind,source=scripts/image,target=/mnt/smokegate-image \
    apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      $(sed 's/#.*//' /mnt/smokegate-image/debian-packages.txt) \
 && python3 /mnt/smokegate-image/finish-rootfs.py /
COPY --from=builder /opt/smokegate /opt/smokegate
COPY --from=builder /opt/kube-bin/helm /opt/kube-bin/kubectl /usr/local/bin/

LABEL org.opencontainers.image.title="smokegate" \
      org.opencontainers.image.description="Verify Kubernetes deployments after Flux deploys them: declarative smoke suites, CI gate, reports." \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
# Writable paths: /tmp (HOME and every cache: helm, kubectl, Python) and /data (the working
# directory: the SQLite history, reports). Mount an emptyDir / tmpfs on /tmp and a volume on /data
# with readOnlyRootFilesystem: true; nothing else is ever written.
ENV PATH=/opt/smokegate/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    XDG_CONFIG_HOME=/tmp/.config \
    XDG_DATA_HOME=/tmp/.local/share \
    LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080/tcp
ENTRYPOINT ["smokegate"]
CMD ["--help"]
