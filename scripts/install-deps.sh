#!/usr/bin/env bash
# Installs the Debian packages dbs's test bed needs (real MariaDB, Redis, Ceph RGW as S3),
# but only those that are missing. Safe to run repeatedly. Needs root (or sudo).
set -euo pipefail

pkgs=(mariadb-server mariadb-client mariadb-backup redis-server redis-tools zstd sqlite3
      ceph-mon ceph-osd radosgw ceph-common curl age mydumper systemd zsh fish
      prometheus nftables)  # prometheus: promtool checks the metrics text and examples/prometheus rules;
      # nftables: kernel byte counters for the 100 MiB/s gateway cap test
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
