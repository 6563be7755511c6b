#!/usr/bin/env bash
# Install Debian packages the project needs, only where a command it provides is missing.
# usage: scripts/ensure-debian-packages.sh COMMAND:PACKAGE [COMMAND:PACKAGE ...]
set -euo pipefail
missing=()
for pair in "$@"; do
  cmd=${pair%%:*}
  pkg=${pair#*:}
  # also where Debian keeps daemons and versioned PostgreSQL binaries, outside a user's PATH
  extra=$(printf '%s:' /usr/sbin /usr/local/sbin /usr/lib/postgresql/*/bin)
  if ! PATH="$PATH:$extra" command -v "$cmd" >/dev/null 2>&1; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: apt-get is not available here; install these packages yourself: ${missing[*]}" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "error: installing ${missing[*]} needs root; run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "installed: ${missing[*]}"
