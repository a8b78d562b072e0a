#!/usr/bin/env bash
# Start Docker Engine without systemd if it is not answering; wait until it does.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if docker info >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ]; then echo "Docker Engine is not running and we are not root" >&2; exit 1; fi
mkdir -p "$ROOT/var/log"
echo "==> starting dockerd"
setsid dockerd >"$ROOT/var/log/dockerd.log" 2>&1 < /dev/null &
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 0.5
done
echo "dockerd did not come up; see var/log/dockerd.log" >&2
exit 1
