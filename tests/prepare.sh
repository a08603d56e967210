# Makes this machine ready for the tests; sourced by tests/run.sh (make
# test) and .ci/run, so both prepare it the same way.
#
#   prepare_packages   Debian packages the tests run: FreeRADIUS (server,
#                      PostgreSQL and MySQL drivers, radclient), Chromium and
#                      its fonts. Installed when missing (as root).
#   start_services     PostgreSQL, MariaDB and Redis, when they are down
#                      (.ci/run only: make test uses whatever answers).
#   prepare_backends   For each local server that answers: the test roles,
#                      and TEST_POSTGRES_URL / TEST_MYSQL_URL / TEST_REDIS_URL
#                      exported (a URL already set is kept). A server that
#                      does not answer is left out, and its tests skip.
#                      TEST_SQLITE_ONLY=1 (make test-sqlite) leaves all out.

TEST_PACKAGES=(freeradius freeradius-postgresql freeradius-mysql freeradius-utils chromium fonts-liberation)

prepare_log() { printf '\n==> %s\n' "$*"; }

prepare_packages() {
  local missing=() pkg
  for pkg in "${TEST_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
      echo "error: the tests need these Debian packages: ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
      return 1
    fi
    prepare_log "Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
  # The package starts its own daemon on 1812/1813; the tests start theirs.
  if command -v systemctl >/dev/null 2>&1; then systemctl stop freeradius >/dev/null 2>&1 || true; fi
  pkill -x freeradius >/dev/null 2>&1 || true
  # The tests copy the stock configuration; a package can be "installed"
  # with its /etc/freeradius removed, which only a reinstall restores.
  local file
  for file in /etc/freeradius/3.0/radiusd.conf /etc/freeradius/3.0/mods-available/sql \
    /etc/freeradius/3.0/mods-config/sql/main/{postgresql,mysql}/queries.conf \
    /usr/lib/freeradius/rlm_sql_{postgresql,mysql}.so; do
    [[ -e $file ]] || {
      echo "missing $file: apt-get install --reinstall -o Dpkg::Options::=--force-confmiss freeradius-config freeradius-postgresql freeradius-mysql" >&2
      return 1
    }
  done
}

postgres_answers() { pg_isready -h 127.0.0.1 -p 5432 -q >/dev/null 2>&1; }
mariadb_answers() { mariadb-admin -h 127.0.0.1 -uroot ping >/dev/null 2>&1; }
redis_answers() { redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; }

prepare_wait_for() { # name, check command...
  local name=$1 _
  shift
  for _ in $(seq 1 60); do "$@" && return 0; sleep 1; done
  echo "$name did not come up" >&2
  return 1
}

start_services() {
  prepare_log "Services"
  if ! postgres_answers; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
  fi
  prepare_wait_for PostgreSQL postgres_answers
  if ! mariadb_answers; then
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  fi
  prepare_wait_for MariaDB mariadb_answers
  if ! redis_answers; then
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
  fi
  prepare_wait_for Redis redis_answers
}

# ispd_test may create (and drop) its own databases, nothing more: each
# test makes a fresh database and drops it. ispd_test_freeradius is the
# role FreeRADIUS logs in as in the end-to-end tests, with only the grants
# of deploy/freeradius (tests/it/freeradius.rs applies them per database).
prepare_postgres_roles() {
  psql -h 127.0.0.1 -U postgres -d postgres -v ON_ERROR_STOP=1 -q <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ispd_test') THEN
    CREATE ROLE ispd_test LOGIN CREATEDB PASSWORD 'ispd_test';
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ispd_test_freeradius') THEN
    CREATE ROLE ispd_test_freeradius LOGIN PASSWORD 'ispd_test_freeradius';
  END IF;
END $$;
SQL
}

# WITH GRANT OPTION: the FreeRADIUS tests grant table privileges in their
# own databases to ispd_test_freeradius.
prepare_mariadb_roles() {
  mariadb -h 127.0.0.1 -uroot <<'SQL'
CREATE USER IF NOT EXISTS 'ispd_test'@'localhost' IDENTIFIED BY 'ispd_test';
CREATE USER IF NOT EXISTS 'ispd_test'@'127.0.0.1' IDENTIFIED BY 'ispd_test';
GRANT ALL PRIVILEGES ON `ispd\_test%`.* TO 'ispd_test'@'localhost' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON `ispd\_test%`.* TO 'ispd_test'@'127.0.0.1' WITH GRANT OPTION;
CREATE USER IF NOT EXISTS 'ispd_test_freeradius'@'%' IDENTIFIED BY 'ispd_test_freeradius';
CREATE DATABASE IF NOT EXISTS ispd_test;
FLUSH PRIVILEGES;
SQL
}

prepare_backends() {
  if [[ ${TEST_SQLITE_ONLY:-} == 1 ]]; then
    unset TEST_POSTGRES_URL TEST_MYSQL_URL TEST_REDIS_URL
    return 0
  fi
  if [[ -z ${TEST_POSTGRES_URL:-} ]] && postgres_answers && prepare_postgres_roles; then
    export TEST_POSTGRES_URL="postgres://ispd_test:ispd_test@127.0.0.1:5432/postgres"
  fi
  if [[ -z ${TEST_MYSQL_URL:-} ]] && mariadb_answers && prepare_mariadb_roles; then
    export TEST_MYSQL_URL="mysql://ispd_test:ispd_test@127.0.0.1:3306/ispd_test"
  fi
  if [[ -z ${TEST_REDIS_URL:-} ]] && redis_answers; then
    export TEST_REDIS_URL="redis://127.0.0.1:6379"
  fi
}
