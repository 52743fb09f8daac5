#!/usr/bin/env bash
# Install the Debian packages the tests and benchmarks talk to (real servers, not mocks), but only
# when something is missing: a second `make test` must not touch apt at all.
set -euo pipefail

# binary-to-check:package
wanted=(
  /usr/sbin/nginx:nginx-light
  /usr/sbin/dnsmasq:dnsmasq-base
  /usr/bin/redis-server:redis-server
  /usr/sbin/mariadbd:mariadb-server
  /usr/bin/pg_ctlcluster:postgresql
  /usr/bin/wrk:wrk
  /usr/bin/curl:curl
  /usr/bin/prometheus-blackbox-exporter:prometheus-blackbox-exporter
  /usr/bin/chromium:chromium
  /usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf:fonts-liberation
  /usr/bin/promtool:prometheus   # promtool: checks and unit-tests deploy/alerts
  /usr/bin/amtool:prometheus-alertmanager   # amtool: checks deploy/alerts/alertmanager.example.yaml
  /usr/bin/npm:npm   # npm (and node): installs newman for the newman kind's tests (install-test-tools.sh)
)
missing=()
for item in "${wanted[@]}"; do
  bin=${item%%:*}; pkg=${item#*:}
  [ -e "$bin" ] || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=sudo
else
  sudo_cmd=
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Another apt may hold the lock (e.g. unattended upgrades): wait instead of failing.
$sudo_cmd apt-get -o DPkg::Lock::Timeout=600 update -qq
$sudo_cmd apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts packaged services on install; the tests start their own on private ports.
for svc in nginx redis-server mariadb postgresql prometheus-blackbox-exporter; do
  $sudo_cmd service "$svc" stop >/dev/null 2>&1 || true
done
# The prometheus packages start their servers; the tests only need promtool and amtool.
$sudo_cmd service prometheus stop >/dev/null 2>&1 || true
$sudo_cmd service prometheus-alertmanager stop >/dev/null 2>&1 || true
