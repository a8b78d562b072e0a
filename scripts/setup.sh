#!/usr/bin/env bash
# Everything the site needs on a fresh Debian/Ubuntu machine, idempotent and quick the
# second time: Debian packages (as root), the engines, .venv, the frontend build, the
# database, the course content, demo accounts, and the lab images.
#   scripts/setup.sh          what bin/serve needs
#   scripts/setup.sh --test   also what the test suite needs (Chromium, PostgreSQL, Redis)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
MODE="${1:-serve}"
VAR="$ROOT/var"
mkdir -p "$VAR/log" "$VAR/stamps"
say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }

# -- Debian packages -------------------------------------------------------------------------
PACKAGES=(python3-venv python3-dev gcc gettext git iptables nodejs npm
  docker.io debootstrap busybox-static cpio qemu-utils qemu-system-x86
  libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients libvirt-dev pkg-config)
if [ "$MODE" = "--test" ]; then PACKAGES+=(chromium fonts-noto-cjk postgresql redis-server); fi
missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# Node may come from elsewhere (nodesource); do not replace a working one.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -r -a missing <<< "${missing[*]:-}"
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "Missing Debian packages: ${missing[*]} (run this script as root to install them)" >&2
    exit 1
  fi
  say "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$VAR/log/apt.log"
fi

# -- Engines ---------------------------------------------------------------------------------
"$ROOT/scripts/start-dockerd.sh"
"$ROOT/scripts/start-libvirtd.sh"

# -- Python ----------------------------------------------------------------------------------
lock_hash="$(sha256sum requirements.lock pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -x .venv/bin/python ] || [ "$(cat "$VAR/stamps/venv" 2>/dev/null)" != "$lock_hash" ]; then
  say "Python environment (.venv) from requirements.lock"
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q --require-hashes -r requirements.lock
  echo "$lock_hash" > "$VAR/stamps/venv"
fi

# -- Frontend --------------------------------------------------------------------------------
# protocol.py is where frontend/src/protocol-constants.js is generated from.
front_hash="$(cd frontend && cat package.json package-lock.json build.mjs ../apps/terminals/protocol.py $(find src -type f | sort) | sha256sum | cut -c1-16)"
if [ ! -f frontend/dist/lab.js ] || [ "$(cat "$VAR/stamps/frontend" 2>/dev/null)" != "$front_hash" ]; then
  say "Frontend (npm ci, build)"
  (cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run -s build)
  echo "$front_hash" > "$VAR/stamps/frontend"
fi

# -- Django ----------------------------------------------------------------------------------
say "Database, translations, course content"
# The migrations were squashed when apps/ was split into one app per concern (there was no
# deployment to migrate). A development database from before that is kept aside, not mixed.
if [ -f "$VAR/db.sqlite3" ] && .venv/bin/python - "$VAR/db.sqlite3" <<'PY'
import sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute(
    "SELECT 1 FROM sqlite_master WHERE name='django_migrations'").fetchall()
old = rows and sqlite3.connect(sys.argv[1]).execute(
    "SELECT 1 FROM django_migrations WHERE app='labs'").fetchall()
sys.exit(0 if old else 1)
PY
then
  mv "$VAR/db.sqlite3" "$VAR/db.sqlite3.before-squash"
  rm -f "$VAR/db.sqlite3-wal" "$VAR/db.sqlite3-shm" "$VAR/demo-accounts.txt"
  say "Old development database kept as var/db.sqlite3.before-squash; a new one is made"
fi
.venv/bin/python manage.py compilemessages -v0 --ignore=.venv
.venv/bin/python manage.py migrate -v0
.venv/bin/python manage.py load_content
.venv/bin/python manage.py collectstatic --noinput -v0

# -- Lab images (built locally from Debian packages; no registry needed) ---------------------
say "Lab images"
.venv/bin/python -m provisioning.images.docker_base >/dev/null
if [ -f provisioning/images/vm_templates.py ]; then
  .venv/bin/python -m provisioning.images.vm_templates all --dir "$VAR/vm/templates"
fi
