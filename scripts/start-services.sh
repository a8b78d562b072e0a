#!/usr/bin/env bash
# PostgreSQL and Redis for the production-mode tests, started by hand (no systemd), on
# loopback only. Idempotent. Prints nothing when both already answer.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$ROOT/var/log"
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "==> starting PostgreSQL"
  cluster="$(pg_lsclusters -h | awk 'NR==1 {print $1" "$2}')"
  if [ -z "$cluster" ]; then pg_createcluster 15 main >/dev/null; cluster="15 main"; fi
  pg_ctlcluster $cluster start
  for _ in $(seq 1 40); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.25; done
fi
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='labsite'\"" | grep -q 1 ||
  su postgres -c "psql -qc \"CREATE ROLE labsite LOGIN CREATEDB PASSWORD 'labsite'\""
if ! redis-cli -p 6390 ping >/dev/null 2>&1; then
  echo "==> starting Redis on 127.0.0.1:6390"
  redis-server --port 6390 --bind 127.0.0.1 --daemonize yes --save '' --appendonly no \
    --logfile "$ROOT/var/log/redis.log"
  for _ in $(seq 1 40); do redis-cli -p 6390 ping >/dev/null 2>&1 && break; sleep 0.25; done
fi
