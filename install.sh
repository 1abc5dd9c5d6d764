#!/usr/bin/env bash
# TechTemp installer: sets up a server Pi or a sensor Pi in one command, as a
# hardened systemd service run by the unprivileged `techtemp` user.
#
#   sudo ./install.sh server [--http-port N] [--mqtt-port N] [--tls]
#   sudo ./install.sh sensor --server HOST --enroll TOKEN [--room NAME] [--tls] [--interval S] [--home ID]
#   sudo ./install.sh status
#   sudo ./install.sh uninstall [--purge [--delete-backups]] [--unregister]
#
# Run it again to upgrade: the database is backed up first, config and data
# are kept, and the previous version comes back if the new one fails its
# health check. A run that has nothing to do changes nothing ("no change").
# `./install.sh --help` lists every option.
#
# Everything below is in functions and `main` runs on the last line, so a
# download cut short does nothing.
#
# Exit codes (also in --help and the README): 0 installed or nothing to do,
# 1 `status` found a problem, 2 usage (or `uninstall --purge` with database backups
# not confirmed: nothing removed), 3 a check failed (nothing changed),
# 4 the health check failed and the previous version and config were restored,
# 5 the health check failed with nothing to restore (a first install), or the
# restore failed too, 6 a change could not be made (a file not written, a
# command failed: the run stops there), 7 the server refused or could not be
# asked (enrollment, its CA; `uninstall --unregister`: this machine is uninstalled
# all the same, the sensor's MQTT credentials still work on the server), 8 the bundle is unusable (not a bundle, wrong
# architecture or checksum, a source build failed).
#
# ShellCheck runs with every optional check (`shellcheck -o all`, test/install.test.ts)
# except these, each for a reason:
#   SC2250 (braces around every variable) and SC2292 ([[ ]] over [ ]): style only;
#     this script uses $var and [ ] where they mean the same.
#   SC2312 (a command substitution inside a command masks its status): these are
#     reads for messages and comparisons whose empty result is handled where it is used;
#     values that decide a change are assigned on their own line, where `set -e` applies.
#   SC2310/SC2311 (`set -e` is off inside a function called as a condition): each function
#     so called is listed below with why that is safe; test/install.test.ts checks that no
#     other function is called as a condition. The functions that change files
#     (put_file, put_output, ensure_dir) never are: they report a change in FILE_CHANGED.
# condition-safe (predicates: their status is their answer, they change nothing):
#   live valid_port valid_id same_meta group_has_member is_active tcp_open healthy wait_healthy
#   wants_enrollment port_is_privileged resolves
# condition-safe (reads that print a value, empty when there is none; they change nothing):
#   ini_get uid_of gid_of normal_fingerprint role_executables systemctl_files
# condition-safe (their failure is handled by the caller, which says what failed):
#   act act_live (one command, `|| warn` where a failure is not fatal)
#   sensor_check (a check: any failure inside it fails the check, whose output is shown)
#   sensor_cmd (the agent's `uid`: its failure stops the run with the agent's message)
#   sensor_last_stored (reads the agent's outbox; a failure means "not yet")
#   do_status (reads only; its status is whether everything runs and answers)
#   fleet_ssh (ssh to a host: its status is the remote command's, 255 when ssh itself failed, and
#     every caller records it in the host's row)
# shellcheck disable=SC2250,SC2292,SC2312,SC2310,SC2311
set -Eeuo pipefail

usage() {
  cat <<'EOF'
usage:
  install.sh server [--http-port N] [--mqtt-port N] [--tls [--https-port N] [--mqtts-port N]]
  install.sh sensor --server HOST --enroll TOKEN [--room NAME] [--interval S] [--home ID] [--label TEXT]
                    [--mqtt-port N] [--http-port N] [--device-uid ID] [--simulated]
                    [--tls [--https-port N] [--mqtts-port N] [--ca-fingerprint SHA256]]
  install.sh status
  install.sh uninstall [--purge [--delete-backups]] [--unregister]
  install.sh deploy (--inventory FILE | ROLE USER@HOST [key=value...]) [--jobs N] [--dist DIR]
                    [--ssh-config FILE] [--wait S]
  install.sh status|inspect (--inventory FILE | ROLE USER@HOST)
  install.sh --version | --help

roles:
  server      the central Pi: MQTT broker, database, web pages (HTTP 3000, MQTT 1883);
              --tls adds HTTPS (8443) and MQTT over TLS (8883) with a local CA made for
              this Pi's names and addresses (techtemp-server tls)
  sensor      a Pi with an AHT20 on I2C; --server is the server Pi's address, --mqtt-port
              and --http-port its ports; --enroll TOKEN an enrollment token from the server
              (sudo -u techtemp /opt/techtemp/techtemp-server enroll-token, or its web
              pages): the sensor gets its own MQTT credentials; --room places the device
              (created when missing); --interval is the reading period in seconds (default
              300); --home the MQTT home id (default home-001); --device-uid keeps an
              existing uid (default: aht20- + the MAC's last 6 hex digits); --simulated uses
              a simulated AHT20; --tls enrolls over HTTPS and speaks MQTT over TLS, trusting
              the server's CA only (--ca-fingerprint: the one install.sh server --tls printed)
  status      what is installed, whether it runs and answers
  uninstall   stops and removes the services and /opt/techtemp; keeps /etc/techtemp,
              /var/lib/techtemp and the techtemp user, which --purge removes too. With
              database backups in /var/lib/techtemp (db-backups/, backups/), --purge lists
              them and asks first on a terminal; without one it refuses (exit 2) unless
              --delete-backups confirms: copy them elsewhere first, or add --delete-backups.
              On a sensor, --unregister first has the server withdraw its MQTT credentials
              (a stolen or retired Pi's secret stops working; the device and its readings
              stay): a write API token in TECHTEMP_API_TOKEN (sudo TECHTEMP_API_TOKEN=tt_...).
              When the server refuses or cannot be reached, this machine is uninstalled
              all the same and the run ends with exit 7, naming how to withdraw them later
  deploy      from a laptop, over SSH: for each host of the inventory (one a line:
              `server pi@192.168.1.10`, `sensor pi@salon.local room=Salon server=maison.local`;
              key=value words become install.sh options, `simulated` a flag; ssh-port=N and
              cache=DIR are deploy's own), copies that role's bundle from dist/ (--dist) unless
              the same one is there, checks it against SHA256SUMS, installs it (health
              checked), and prints one table; --jobs hosts at a time (default 4). Keys only
              (BatchMode) and sudo -n: an unreachable host or a sudo password is named, and
              never stops the others. Exit 9 when a host failed (its log is printed).
              status and inspect take the same inventory.

options:
  --bundle FILE|DIR   install from a bundle (techtemp-<version>-linux-<arch>.tar.gz or its
                      unpacked directory); the default when install.sh runs inside one. From
                      a source checkout, install.sh installs the pinned Bun and builds one.
  --watchdog          also enable the Pi's hardware watchdog (no package needed: systemd feeds
                      it; with the watchdog package installed, its daemon does, as before)
  --wait S            seconds to wait for the health check (default 90)
  --dry-run           print every change without making it
  --root DIR          install into the directory tree DIR instead of /, without starting
                      anything (for images and tests); --start starts the services anyway
  --image             with --root: the tree is another machine's (a Pi's SD card on a PC):
                      nothing of this machine is probed (ports, I2C, the AHT20, the server,
                      its MAC, its processor)
  --version           the version of this install.sh and of the bundle beside it
  -h, --help          this help

bundles: techtemp-<role>-<version>-linux-<arch>.tar.gz holds what one role needs; install.sh
  checks it against SHA256SUMS beside it, and its files against the SHA256SUMS inside it,
  before changing anything (exit 8 on a mismatch).

ports: 1024 to 65535 for the server (the hardened service has no privilege to bind
  below 1024; to serve on 80, redirect it: see the README, Deployment).

exit codes:
  0  installed, or nothing to do         5  health check failed, nothing to restore
  1  status: not installed or unhealthy      (first install) or the restore failed too
  2  usage: a bad command line, or       6  a change could not be made (read-only or
     uninstall --purge not confirmed         full file system, a failed command)
  3  a check failed: nothing changed     7  the server refused or could not be asked
  4  health check failed: the previous   8  the bundle is unusable (checksum, arch)
     version and config are back         9  deploy/status: a host failed (the others ran)
EOF
}

# "TechTemp X.Y.Z": the bundle's version beside install.sh, or the source checkout's.
print_version() {
  local version=""
  if [ -f "$SCRIPT_DIR/BUNDLE" ]; then
    version=$(bundle_field "$SCRIPT_DIR" version)
  elif [ -f "$SCRIPT_DIR/package.json" ]; then
    version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$SCRIPT_DIR/package.json" | head -n 1)
  fi
  say "install.sh (TechTemp) ${version:-unknown}"
}

# ---------------------------------------------------------------- settings

init_globals() {
  COMMAND=""
  DIE_CODE=2
  FILE_CHANGED=0
  CONFIG_SAVED=()
  ROOT=""
  DRY_RUN=0
  START=0
  BUNDLE_ARG=""
  WATCHDOG=0
  WAIT_S=90
  PURGE=0
  DELETE_BACKUPS=0
  UNREGISTER=0
  UNREGISTER_FAILED=""
  UNREGISTER_REMEDY=""
  OPT_HTTP_PORT=""
  OPT_MQTT_PORT=""
  OPT_SERVER=""
  OPT_ROOM=""
  OPT_INTERVAL=""
  OPT_HOME=""
  OPT_LABEL=""
  OPT_DEVICE_UID=""
  OPT_SIMULATED=0
  OPT_IMAGE=0
  IMAGE=0
  OPT_ENROLL=""
  OPT_TLS=0
  OPT_HTTPS_PORT=""
  OPT_MQTTS_PORT=""
  OPT_CA_FINGERPRINT=""
  SETUP_LINK=""
  ENROLLED_SECRET=""
  ENROLLED_HOME=""
  ENROLLED_CA=""
  ENROLLMENT_HASH=""
  SERVER_CA=""
  CA_FINGERPRINT=""
  SERVER_TLS=0
  SENSOR_TLS=0
  HTTP_PLAIN=on

  SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  WORK=""
  LOG_FILE=""
  CHANGES=0
  CHECK_FAILURES=0
  SERVICE_USER=techtemp
  BUNDLE_DIR=""
  BUNDLE_VERSION=""
  BUNDLE_ARCH=""
  BACKUP_FILE=""
  STAMP=$(date -u +%Y%m%dT%H%M%SZ)
  # The install log's size limit before it is rotated (3 old logs are kept).
  LOG_MAX_KB=${TECHTEMP_INSTALL_LOG_MAX_KB:-1024}
}

# Paths inside the target tree (/ or --root DIR).
init_paths() {
  OPT_DIR="$ROOT/opt/techtemp"
  ETC_DIR="$ROOT/etc/techtemp"
  VAR_DIR="$ROOT/var/lib/techtemp"
  UNIT_DIR="$ROOT/etc/systemd/system"
  BACKUP_DIR="$VAR_DIR/backups"
  PREVIOUS_DIR="$OPT_DIR/previous"
  SERVER_CONF="$ETC_DIR/server.conf"
  DEVICE_CONF="$ETC_DIR/device.conf"
  CA_FILE="$ETC_DIR/ca.crt"
  TLS_DIR="$VAR_DIR/tls"
  INSTALL_CONF="$ETC_DIR/install.conf"
  DB_FILE="$VAR_DIR/techtemp.db"
  WATCHDOG_CONF="$ROOT/etc/watchdog.conf"
  SYSTEMD_WATCHDOG_CONF="$ROOT/etc/systemd/system.conf.d/techtemp-watchdog.conf"
  MODULES_FILE="$ROOT/etc/modules"
  BLACKLIST_FILE="$ROOT/etc/modprobe.d/raspi-blacklist.conf"
  BOOT_CONFIG=""
  local candidate
  for candidate in "$ROOT/boot/firmware/config.txt" "$ROOT/boot/config.txt"; do
    if [ -f "$candidate" ]; then
      BOOT_CONFIG=$candidate
      break
    fi
  done
}

# ---------------------------------------------------------------- output

say() { printf '%s\n' "$*"; }
step() { printf '==> %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }

# A problem that stops the run, with what to do about it. The exit code is
# the phase's (DIE_CODE: 2 while reading the command line, 3 during the checks,
# 6 while changing the system); die_as names another one.
die() { die_as "$DIE_CODE" "$@"; }

die_as() {
  local code=$1 problem=$2 remedy=${3:-}
  printf 'error: %s\n' "$problem" >&2
  if [ -n "$remedy" ]; then printf '  fix: %s\n' "$remedy" >&2; fi
  exit "$code"
}

# A failed check: reported with its remedy; the run stops after all checks.
check_fail() {
  printf 'check failed: %s\n' "$1" >&2
  printf '  fix: %s\n' "$2" >&2
  CHECK_FAILURES=$((CHECK_FAILURES + 1))
}

check_ok() { printf '  ok  %s\n' "$*"; }

# Runs a command that changes the system, or says what it would run.
act() {
  CHANGES=$((CHANGES + 1))
  if [ "$DRY_RUN" = 1 ]; then
    say "would run: $*"
    return 0
  fi
  say "+ $*"
  "$@"
}

# Whether services, kernel modules and packages are touched (not in a --root tree, unless --start).
live() { [ -z "$ROOT" ] || [ "$START" = 1 ]; }

# `act` for commands that act on the running system rather than on files.
act_live() {
  if live; then
    act "$@"
  elif [ "$DRY_RUN" = 1 ]; then
    say "would skip (--root): $*"
  else
    say "skipped (--root): $*"
  fi
}

# A command that failed while changing the system (a read-only or full file
# system, a refused chown…): the run stops there with exit code 6, saying where.
on_error() {
  printf 'error: a change could not be made: %s (exit %s, install.sh line %s)\n' "$2" "$3" "$1" >&2
  printf '  fix: see the message above (a read-only or full file system? sudo mount -o remount,rw /; df -h), then run install.sh again\n' >&2
  exit 6
}

on_exit() {
  local status=$?
  if [ -n "$WORK" ]; then rm -rf "$WORK"; fi
  if [ -n "$LOG_FILE" ]; then say "log: $LOG_FILE"; fi
  exit "$status"
}

# Every line from here on also goes to the log file.
# (A dry run and status change nothing and keep no log.)
start_log() {
  if [ "$DRY_RUN" = 1 ] || [ "$COMMAND" = status ] || [ "$COMMAND" = fleet ]; then return 0; fi
  LOG_FILE="$ROOT/var/log/techtemp-install.log"
  mkdir -p "$(dirname "$LOG_FILE")"
  rotate_log
  touch "$LOG_FILE"
  chmod 0600 "$LOG_FILE"
  exec > >(tee -a "$LOG_FILE") 2>&1
  say "---- $(date -u +%Y-%m-%dT%H:%M:%SZ) install.sh $COMMAND${ROOT:+ (root $ROOT)}$([ "$DRY_RUN" = 1 ] && echo ' (dry run)')"
}

# The install log is kept under LOG_MAX_KB: above it, it becomes .1 (and .1
# becomes .2, .2 becomes .3; the oldest is dropped), before this run writes.
rotate_log() {
  local size i
  size=$(stat -c %s "$LOG_FILE" 2>/dev/null || echo 0)
  [ "$size" -gt $((LOG_MAX_KB * 1024)) ] || return 0
  for i in 2 1; do
    if [ -f "$LOG_FILE.$i" ]; then mv -f "$LOG_FILE.$i" "$LOG_FILE.$((i + 1))"; fi
  done
  mv -f "$LOG_FILE" "$LOG_FILE.1"
}

# ---------------------------------------------------------------- arguments

need_value() {
  if [ $# -lt 2 ] || [ -z "$2" ]; then die "$1 needs a value" "see install.sh --help"; fi
}

valid_port() { [[ $1 =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le 65535 ]; }
valid_id() { [[ $1 =~ ^[A-Za-z0-9_-]{1,50}$ ]]; }
port_is_privileged() { [ -n "$1" ] && [ "$1" -lt 1024 ]; }

parse_args() {
  if [ $# -eq 0 ]; then
    usage
    exit 2
  fi
  while [ $# -gt 0 ]; do
    case $1 in
      server | sensor | status | uninstall)
        if [ -n "$COMMAND" ]; then die "two commands: $COMMAND and $1" "give one of server, sensor, status, uninstall"; fi
        COMMAND=$1
        # status over SSH: of an inventory, or of one host.
        if [ "$1" = status ] && [ $# -gt 1 ] && { [ "$2" = --inventory ] || [ "$2" = server ] || [ "$2" = sensor ] || [ -f "$2" ]; }; then
          parse_fleet_args "$@"
          COMMAND=fleet
          return 0
        fi
        ;;
      deploy | inspect)
        if [ -n "$COMMAND" ]; then die "two commands: $COMMAND and $1" "give one of server, sensor, status, uninstall, deploy, inspect"; fi
        parse_fleet_args "$@"
        COMMAND=fleet
        return 0
        ;;
      -h | --help)
        usage
        exit 0
        ;;
      --version)
        print_version
        exit 0
        ;;
      --dry-run) DRY_RUN=1 ;;
      --start) START=1 ;;
      --watchdog) WATCHDOG=1 ;;
      --purge) PURGE=1 ;;
      --delete-backups) DELETE_BACKUPS=1 ;;
      --unregister) UNREGISTER=1 ;;
      --simulated) OPT_SIMULATED=1 ;;
      --image) OPT_IMAGE=1 ;;
      --tls) OPT_TLS=1 ;;
      --root) need_value "$@"; ROOT=$(realpath -m "$2"); shift ;;
      --bundle) need_value "$@"; BUNDLE_ARG=$2; shift ;;
      --wait) need_value "$@"; WAIT_S=$2; shift ;;
      --http-port) need_value "$@"; OPT_HTTP_PORT=$2; shift ;;
      --mqtt-port) need_value "$@"; OPT_MQTT_PORT=$2; shift ;;
      --server) need_value "$@"; OPT_SERVER=$2; shift ;;
      --room) need_value "$@"; OPT_ROOM=$2; shift ;;
      --interval) need_value "$@"; OPT_INTERVAL=$2; shift ;;
      --home) need_value "$@"; OPT_HOME=$2; shift ;;
      --label) need_value "$@"; OPT_LABEL=$2; shift ;;
      --device-uid) need_value "$@"; OPT_DEVICE_UID=$2; shift ;;
      --enroll) need_value "$@"; OPT_ENROLL=$2; shift ;;
      --https-port) need_value "$@"; OPT_HTTPS_PORT=$2; shift ;;
      --mqtts-port) need_value "$@"; OPT_MQTTS_PORT=$2; shift ;;
      --ca-fingerprint) need_value "$@"; OPT_CA_FINGERPRINT=$2; shift ;;
      *) die "unknown argument: $1" "see install.sh --help" ;;
    esac
    shift
  done
  if [ -z "$COMMAND" ]; then die "no command" "give one of server, sensor, status, uninstall (install.sh --help)"; fi
  if [ "$ROOT" = / ]; then ROOT=""; fi
  validate_args
}

validate_args() {
  local p
  for p in "$OPT_HTTP_PORT" "$OPT_MQTT_PORT" "$OPT_HTTPS_PORT" "$OPT_MQTTS_PORT"; do
    if [ -n "$p" ] && ! valid_port "$p"; then die "port $p is not a port number" "give a number from 1 to 65535"; fi
  done
  # The hardened unit runs as an unprivileged user in its own user namespace
  # (PrivateUsers=yes, no capabilities): a port below 1024 would leave a
  # service that can never start. (The sensor's ports are the server's.)
  if [ "$COMMAND" = server ]; then
    local flag var
    for flag in http mqtt https mqtts; do
      var="OPT_${flag^^}_PORT"
      if port_is_privileged "${!var}"; then
        die "--$flag-port ${!var}: ports below 1024 need privileges the hardened service does not have" \
          "use a port from 1024 (defaults: http 3000, mqtt 1883, https 8443, mqtts 8883); to serve on port 80, redirect it (README, Deployment: ports below 1024)"
      fi
    done
  fi
  if ! [[ $WAIT_S =~ ^[0-9]+$ ]]; then die "--wait $WAIT_S is not a number of seconds" "e.g. --wait 120"; fi
  if [ -n "$OPT_INTERVAL" ] && { ! [[ $OPT_INTERVAL =~ ^[0-9]+$ ]] || [ "$OPT_INTERVAL" -lt 1 ] || [ "$OPT_INTERVAL" -gt 3600 ]; }; then
    die "--interval $OPT_INTERVAL is not a number of seconds from 1 to 3600" "e.g. --interval 300"
  fi
  if [ -n "$OPT_HOME" ] && ! valid_id "$OPT_HOME"; then die "--home $OPT_HOME is not a valid id" "use 1-50 characters of A-Z a-z 0-9 _ -"; fi
  if [ -n "$OPT_DEVICE_UID" ] && ! valid_id "$OPT_DEVICE_UID"; then
    die "--device-uid $OPT_DEVICE_UID is not a valid id" "use 1-50 characters of A-Z a-z 0-9 _ -, e.g. aht20-f49c53"
  fi
  if [ -n "$OPT_SERVER" ] && ! [[ $OPT_SERVER =~ ^[A-Za-z0-9.:_-]+$ ]]; then
    die "--server $OPT_SERVER is not a host name or address" "e.g. --server 192.168.1.10 or --server techtemp.local"
  fi
  if [ -n "$OPT_ROOM" ] && { [ ${#OPT_ROOM} -gt 100 ] || [[ $OPT_ROOM =~ [[:cntrl:]] ]]; }; then
    die "--room must be a name of at most 100 characters" "e.g. --room Salon"
  fi
  if [ -n "$OPT_LABEL" ] && [[ $OPT_LABEL =~ [[:cntrl:]] ]]; then die "--label must be one line of text" "e.g. --label 'Pi du salon'"; fi
  if [ -n "$OPT_ENROLL" ] && ! [[ $OPT_ENROLL =~ ^[A-Za-z0-9_.~+/=-]{16,200}$ ]]; then
    die "--enroll needs the enrollment token the server printed" "on the server: sudo -u techtemp /opt/techtemp/techtemp-server enroll-token"
  fi
  if [ -n "$OPT_CA_FINGERPRINT" ] && [ -z "$(normal_fingerprint "$OPT_CA_FINGERPRINT")" ]; then
    die "--ca-fingerprint $OPT_CA_FINGERPRINT is not a SHA-256 fingerprint" "copy it as install.sh server --tls printed it (AB:CD:... 32 pairs)"
  fi
  if [ "$DELETE_BACKUPS" = 1 ] && { [ "$COMMAND" != uninstall ] || [ "$PURGE" = 0 ]; }; then
    die "--delete-backups goes with uninstall --purge" "sudo ./install.sh uninstall --purge --delete-backups"
  fi
  if [ "$UNREGISTER" = 1 ] && [ "$COMMAND" != uninstall ]; then
    die "--unregister goes with uninstall" "sudo TECHTEMP_API_TOKEN=tt_... /opt/techtemp/install.sh uninstall --unregister"
  fi
  if [ "$COMMAND" = sensor ] && [ "$OPT_TLS" = 0 ] && { [ -n "$OPT_CA_FINGERPRINT" ] || [ -n "$OPT_HTTPS_PORT" ] || [ -n "$OPT_MQTTS_PORT" ]; }; then
    die "--ca-fingerprint, --https-port and --mqtts-port go with --tls" "add --tls"
  fi
}

# A SHA-256 fingerprint as 64 upper-case hex digits ("" when it is not one): AB:CD:…, abcd…, SHA256:… all match.
normal_fingerprint() {
  local fp=${1#SHA256:}
  fp=${fp#sha256:}
  fp=${fp//:/}
  fp=${fp^^}
  if [[ $fp =~ ^[0-9A-F]{64}$ ]]; then printf '%s' "$fp"; fi
}

# ---------------------------------------------------------------- small helpers

# The value of `key` in `section` of an INI file ("" = before any section), trimmed.
ini_get() {
  local file=$1 section=$2 key=$3
  [ -f "$file" ] || return 0
  awk -v want="$section" -v key="$key" '
    /^[ \t]*\[.*\][ \t]*$/ { s = $0; gsub(/^[ \t]*\[|\][ \t]*$/, "", s); section = s; next }
    section == want {
      line = $0
      if (match(line, /^[ \t]*[A-Za-z0-9_]+[ \t]*=/)) {
        k = substr(line, 1, RLENGTH - 1); gsub(/[ \t]/, "", k)
        if (k == key) { v = substr(line, RLENGTH + 1); gsub(/^[ \t]+|[ \t\r]+$/, "", v); value = v }
      }
    }
    END { printf "%s", value }' "$file"
}

# Prints `file` with `key = value` set in `section`: the line replaced where it
# is, else added at the end of the section, else in a new section. Every other
# line (comments, keys install.sh does not manage) stays as it was.
ini_set() {
  local file=$1 section=$2 key=$3 value=$4
  awk -v want="$section" -v key="$key" -v value="$value" '
    function emit_pending() { for (i = 1; i <= blanks; i++) print ""; blanks = 0 }
    BEGIN { section = ""; done = 0; blanks = 0 }
    /^[ \t]*\[.*\][ \t]*$/ {
      if (section == want && !done) { print key " = " value; done = 1 }
      emit_pending()
      s = $0; gsub(/^[ \t]*\[|\][ \t]*$/, "", s); section = s; print; next
    }
    /^[ \t]*$/ { blanks++; next }
    {
      emit_pending()
      line = $0
      if (section == want && !done && match(line, /^[ \t]*[A-Za-z0-9_]+[ \t]*=/)) {
        k = substr(line, 1, RLENGTH - 1); gsub(/[ \t]/, "", k)
        if (k == key) { print key " = " value; done = 1; next }
      }
      print
    }
    END {
      if (!done) {
        if (section != want) { if (NR > 0) print ""; if (want != "") print "[" want "]" }
        print key " = " value
      }
      emit_pending()
    }' "$file"
}

# Numeric uid/gid of a user or group of the target tree ("" when missing).
uid_of() { awk -F: -v n="$1" '$1 == n { print $3 }' "$ROOT/etc/passwd" 2>/dev/null || true; }
gid_of() { awk -F: -v n="$1" '$1 == n { print $3 }' "$ROOT/etc/group" 2>/dev/null || true; }
group_has_member() {
  awk -F: -v g="$1" -v u="$2" '$1 == g { n = split($4, m, ","); for (i = 1; i <= n; i++) if (m[i] == u) found = 1 } END { exit !found }' \
    "$ROOT/etc/group" 2>/dev/null
}

# "uid:gid" of owner spec "user:group"; unknown names stay names (dry run before the user exists).
numeric_owner() {
  local user=${1%%:*} group=${1##*:} u g
  u=$(uid_of "$user")
  g=$(gid_of "$group")
  printf '%s:%s' "${u:-$user}" "${g:-$group}"
}

# Whether `path` has `mode` (octal digits as stat prints them, e.g. 640) and `owner` ("user:group").
same_meta() { [ "$(stat -c '%a %u:%g' "$1" 2>/dev/null)" = "$2 $(numeric_owner "$3")" ]; }

# Installs `src` as `dest` with `mode` and `owner` unless it is already so:
# FILE_CHANGED is 1 when it changed something, 0 when `dest` was already right.
# Never called as a condition (`if put_file`, `put_file || true`): bash would
# ignore `set -e` inside it, and a failed write would pass for a success.
put_file() {
  local src=$1 dest=$2 mode=$3 owner=$4
  FILE_CHANGED=0
  if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
    if same_meta "$dest" "$mode" "$owner"; then return 0; fi
    FILE_CHANGED=1
    CHANGES=$((CHANGES + 1))
    if [ "$DRY_RUN" = 1 ]; then
      say "would set $dest to $mode $owner"
    else
      say "set $dest to $mode $owner"
      chmod "$mode" "$dest"
      chown "$(numeric_owner "$owner")" "$dest"
    fi
    return 0
  fi
  FILE_CHANGED=1
  CHANGES=$((CHANGES + 1))
  local what=new
  if [ -e "$dest" ]; then what=changed; fi
  if [ "$DRY_RUN" = 1 ]; then
    say "would install $dest ($what, $mode $owner)"
    return 0
  fi
  say "install $dest ($what)"
  mkdir -p "$(dirname "$dest")"
  # A copy beside it, then a rename: a running executable keeps its old inode,
  # and a power cut leaves the old file or the new one, never half of one.
  cp "$src" "$dest.tmp.$$"
  chmod "$mode" "$dest.tmp.$$"
  chown "$(numeric_owner "$owner")" "$dest.tmp.$$"
  mv -f "$dest.tmp.$$" "$dest"
  return 0
}

# `put_file` for the output of a command: put_output DEST MODE OWNER COMMAND [ARGS...].
# (Not a pipe into put_file: the end of a pipeline runs in a subshell, which would lose the change count.)
put_output() {
  local dest=$1 mode=$2 owner=$3 tmp
  shift 3
  tmp=$(mktemp "$WORK/out.XXXXXX")
  "$@" >"$tmp"
  put_file "$tmp" "$dest" "$mode" "$owner"
}

# Creates `dir` or fixes its mode and owner.
ensure_dir() {
  local dir=$1 mode=$2 owner=$3
  if [ -d "$dir" ] && same_meta "$dir" "$mode" "$owner"; then return 0; fi
  CHANGES=$((CHANGES + 1))
  if [ "$DRY_RUN" = 1 ]; then
    say "would create $dir ($mode $owner)"
    return 0
  fi
  if [ -d "$dir" ]; then say "set $dir to $mode $owner"; else say "create $dir"; fi
  mkdir -p "$dir"
  chmod "$mode" "$dir"
  chown "$(numeric_owner "$owner")" "$dir"
}

# Removes a file or directory tree that install.sh made.
remove_path() {
  local path=$1
  [ -e "$path" ] || [ -L "$path" ] || return 0
  CHANGES=$((CHANGES + 1))
  if [ "$DRY_RUN" = 1 ]; then
    say "would remove $path"
  else
    say "remove $path"
    rm -rf "$path"
  fi
}

json_escape() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\t'/\\t}
  printf '%s' "$s"
}

# HTTP with curl: prints "STATUS BODY"; STATUS is 000 when nothing answered.
# Arguments after the body go to curl (--cacert FILE, -k). A server with an owner
# account wants an API token for its write routes: TECHTEMP_API_TOKEN in the
# environment (`techtemp-server token create NAME --scope write` on the server).
http() {
  local method=$1 url=$2 body=${3:-} out
  shift 2
  shift || true
  local args=(-sS -m 10 -o - -w '\n%{http_code}' -X "$method" "$@")
  if [ -n "$body" ]; then args+=(-H 'content-type: application/json' --data-binary "$body"); fi
  if [ -n "${TECHTEMP_API_TOKEN:-}" ]; then args+=(-H "authorization: Bearer $TECHTEMP_API_TOKEN"); fi
  out=$(curl "${args[@]}" "$url" 2>/dev/null) || true
  local status=${out##*$'\n'}
  printf '%s %s' "${status:-000}" "${out%$'\n'*}"
}

# Whether something accepts TCP connections on host:port (within 5 s).
# shellcheck disable=SC2016 # $1 and $2 are the inner shell's arguments.
tcp_open() { timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null; }

bundle_field() {
  if [ -f "$1/BUNDLE" ]; then sed -n "s/^$2=//p" "$1/BUNDLE" | head -n 1; fi
}

# ---------------------------------------------------------------- the bundle

# Sets BUNDLE_DIR, BUNDLE_VERSION, BUNDLE_ARCH from --bundle, the directory
# install.sh runs in, or a build of the source checkout it belongs to.
resolve_bundle() {
  local src=$BUNDLE_ARG
  if [ -z "$src" ]; then
    if [ -f "$SCRIPT_DIR/BUNDLE" ]; then
      src=$SCRIPT_DIR
    elif [ -f "$SCRIPT_DIR/package.json" ] && [ -f "$SCRIPT_DIR/server.ts" ]; then
      build_from_source
      return 0
    else
      die "no bundle next to install.sh" "download techtemp-<version>-linux-arm64.tar.gz and run: sudo ./install.sh $COMMAND --bundle FILE"
    fi
  fi
  if [ -f "$src" ]; then
    verify_tarball "$src"
    step "unpacking $src"
    tar -xzf "$src" -C "$WORK" || die "cannot unpack $src" "download it again (it may be truncated)"
    src=$(find "$WORK" -mindepth 2 -maxdepth 2 -name BUNDLE -printf '%h\n' | head -n 1)
    [ -n "$src" ] || die "$BUNDLE_ARG is not a TechTemp bundle (no BUNDLE file inside)" "use techtemp-<version>-linux-<arch>.tar.gz from bun run build"
  fi
  [ -f "$src/BUNDLE" ] || die "$src is not a TechTemp bundle (no BUNDLE file)" "give the .tar.gz or the directory it unpacks to"
  BUNDLE_DIR=$(cd "$src" && pwd)
  BUNDLE_VERSION=$(bundle_field "$BUNDLE_DIR" version)
  BUNDLE_ARCH=$(bundle_field "$BUNDLE_DIR" arch)
  verify_bundle
}

# The SHA-256 of a file (64 hex digits).
sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# A tarball with SHA256SUMS beside it (as bun run build makes them: dist/SHA256SUMS)
# must match its line there, before it is even unpacked.
verify_tarball() {
  local tarball=$1 sums want have
  sums="$(dirname "$tarball")/SHA256SUMS"
  [ -f "$sums" ] || return 0
  want=$(awk -v f="$(basename "$tarball")" '$2 == f || $2 == "*" f { print $1; exit }' "$sums")
  if [ -z "$want" ]; then
    warn "$sums does not list $(basename "$tarball"): the tarball is not verified (its files are, against the SHA256SUMS inside)"
    return 0
  fi
  have=$(sha256_of "$tarball")
  if [ "$have" != "$want" ]; then
    die_as 8 "$tarball does not match $sums (SHA-256 $have, expected $want): nothing was changed" \
      "download or copy it again (it was damaged or changed), then check it: sha256sum -c SHA256SUMS"
  fi
  check_ok "$(basename "$tarball") matches SHA256SUMS"
}

# The files this run installs must match the bundle's own SHA256SUMS, before
# anything is changed: the role's executable, install.sh, BUNDLE and the units.
verify_bundle() {
  local sums="$BUNDLE_DIR/SHA256SUMS" exe file want have count=0
  if [ ! -f "$sums" ]; then
    warn "this bundle has no SHA256SUMS: its files are not verified (bundles from bun run build have one)"
    return 0
  fi
  exe=$(role_executables)
  # Another role's bundle: do_install says so next.
  [ -f "$BUNDLE_DIR/$exe" ] || return 0
  while read -r want file; do
    file=${file#\*}
    case $file in
      "$exe" | install.sh | BUNDLE | systemd/*.service) ;;
      *) continue ;;
    esac
    [ -f "$BUNDLE_DIR/$file" ] || continue
    have=$(sha256_of "$BUNDLE_DIR/$file")
    if [ "$have" != "$want" ]; then
      die_as 8 "the bundle's $file does not match its SHA256SUMS (SHA-256 $have, expected $want): nothing was changed" \
        "the bundle was damaged or changed: copy it again from the machine that built it (bun run build)"
    fi
    count=$((count + 1))
  done <"$sums"
  if ! grep -qE "[ *]$exe\$" "$sums"; then
    die_as 8 "the bundle's SHA256SUMS does not list $exe: nothing was changed" "use a bundle for the $COMMAND role (techtemp-$COMMAND-<version>-linux-<arch>.tar.gz)"
  fi
  check_ok "bundle files match SHA256SUMS ($count checked)"
}

# From a source checkout: the pinned Bun, then a bundle for this machine built into dist/.
build_from_source() {
  local want have arch
  want=$(sed -n 's/.*"packageManager": *"bun@\([0-9.]*\)".*/\1/p' "$SCRIPT_DIR/package.json")
  have=$(bun --version 2>/dev/null || true)
  if [ "$have" != "$want" ]; then
    step "installing Bun $want (pinned in package.json) to build from source"
    if command -v npm >/dev/null; then
      act npm install -g "bun@$want"
    else
      act bash -c "curl -fsSL https://bun.sh/install | BUN_INSTALL=/usr/local bash -s bun-v$want"
    fi
    if [ "$DRY_RUN" = 1 ]; then die "dry run from a source checkout without Bun $want: nothing to compare" "install Bun $want, or use --bundle"; fi
    have=$(bun --version 2>/dev/null || true)
    [ "$have" = "$want" ] || die "Bun $want is not on PATH after installing it (found: ${have:-none})" \
      "install it by hand (npm install -g bun@$want), or build on another machine (bun run build) and use --bundle"
  fi
  case $(uname -m) in
    aarch64 | arm64) arch=arm64 ;;
    x86_64 | amd64) arch=x64 ;;
    *) arch=unsupported ;;
  esac
  [ "$arch" != unsupported ] || check_arch_or_die
  step "building TechTemp for linux-$arch from $SCRIPT_DIR"
  (cd "$SCRIPT_DIR" && bun install --frozen-lockfile && bun scripts/build.ts --arch "$arch" --no-tar) ||
    die "the build failed (output above)" "fix the source checkout, or install from a bundle with --bundle"
  BUNDLE_DIR=$(find "$SCRIPT_DIR/dist" -mindepth 1 -maxdepth 1 -type d -name "techtemp-*-linux-$arch" | sort | tail -n 1)
  BUNDLE_VERSION=$(bundle_field "$BUNDLE_DIR" version)
  BUNDLE_ARCH=$arch
}

# ---------------------------------------------------------------- checks

# Bun runs on 64-bit only: the kernel and the userland must both be 64-bit
# (a 32-bit Raspberry Pi OS on a Pi 4 boots a 64-bit kernel: uname says
# aarch64 while dpkg says armhf).
check_arch_or_die() {
  local machine dpkg_arch="" arch
  machine=$(uname -m)
  if command -v dpkg >/dev/null; then dpkg_arch=$(dpkg --print-architecture 2>/dev/null || true); fi
  case $machine in
    aarch64 | arm64) arch=arm64 ;;
    x86_64 | amd64) arch=x64 ;;
    armv6l | armv6* | armv7l | armv7* | armhf | armel)
      die "this is a 32-bit ARM machine ($machine): Bun, and so TechTemp, runs on 64-bit ARM only (armv6/armv7 are not supported)" \
        "use a Pi 3, 4, 5 or Zero 2 W with Raspberry Pi OS (64-bit); a Pi 1, 2 or Zero W cannot run it" ;;
    *) die "unsupported processor $machine" "TechTemp runs on 64-bit ARM (arm64) and x86-64 Linux" ;;
  esac
  case $dpkg_arch in
    "" | arm64 | amd64) ;;
    *) die "the operating system is 32-bit ($dpkg_arch userland on a $machine kernel): Bun needs a 64-bit OS" \
      "reinstall with Raspberry Pi OS (64-bit) (Raspberry Pi Imager: 'Raspberry Pi OS (64-bit)')" ;;
  esac
  if [ -n "${BUNDLE_ARCH:-}" ] && [ "$arch" != "$BUNDLE_ARCH" ]; then
    die "this bundle is for linux-$BUNDLE_ARCH but this machine is linux-$arch" \
      "use techtemp-$BUNDLE_VERSION-linux-$arch.tar.gz (bun run build makes both)"
  fi
  check_ok "64-bit: $machine${dpkg_arch:+ / $dpkg_arch}"
}

check_os() {
  local release="$ROOT/etc/os-release" id like version
  [ -f "$release" ] || release="$ROOT/usr/lib/os-release"
  if [ ! -f "$release" ]; then
    check_fail "no /etc/os-release: cannot tell which operating system this is" "install on Raspberry Pi OS (64-bit) or Debian 12"
    return 0
  fi
  id=$(sed -n 's/^ID=//p' "$release" | tr -d '"')
  like=$(sed -n 's/^ID_LIKE=//p' "$release" | tr -d '"')
  version=$(sed -n 's/^VERSION_ID=//p' "$release" | tr -d '"')
  if [[ " $id $like " != *" debian "* ]] && [ "$id" != debian ]; then
    check_fail "unsupported operating system '$id': install.sh knows Debian and its derivatives" \
      "use Raspberry Pi OS (64-bit) or Debian 12; elsewhere run the executables by hand (README)"
    return 0
  fi
  if [ "$id" = debian ] || [ "$id" = raspbian ]; then
    if [[ $version =~ ^[0-9]+$ ]] && [ "$version" -lt 11 ]; then
      check_fail "Debian $version is too old (Bun needs glibc 2.31, Debian 11 or newer)" "upgrade to Raspberry Pi OS bookworm (Debian 12)"
      return 0
    fi
  fi
  if [ -z "$ROOT" ] && [ ! -d /run/systemd/system ]; then
    check_fail "systemd is not running: the services need it" "boot the Pi with systemd (the Raspberry Pi OS default)"
    return 0
  fi
  check_ok "operating system: $id ${version:-}"
}

check_tools() {
  local tool missing=() tools=(curl tar awk cmp)
  # The local CA is made (server) and checked (sensor) with openssl, present on Raspberry Pi OS and Debian.
  if [ "$OPT_TLS" = 1 ]; then tools+=(openssl); fi
  for tool in "${tools[@]}"; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  if [ ${#missing[@]} -gt 0 ]; then
    check_fail "missing commands: ${missing[*]}" "sudo apt-get install -y ${missing[*]/cmp/diffutils}"
  fi
}

# Free space where the executables go (twice: old and new during an upgrade) and for a database backup.
check_disk() {
  local need_kb=51200 path avail exe
  for exe in $(role_executables); do need_kb=$((need_kb + $(du -k "$BUNDLE_DIR/$exe" | cut -f1))); done
  if [ -f "$DB_FILE" ]; then need_kb=$((need_kb + $(du -k "$DB_FILE" | cut -f1))); fi
  path="$OPT_DIR"
  while [ ! -d "$path" ]; do path=$(dirname "$path"); done
  avail=$(df -Pk "$path" | awk 'NR == 2 { print $4 }')
  if [ -z "$avail" ] || [ "$avail" -lt "$need_kb" ]; then
    check_fail "not enough free disk space on $path: $((${avail:-0} / 1024)) MB free, $((need_kb / 1024)) MB needed" \
      "free some space (sudo apt-get clean; sudo journalctl --vacuum-size=50M) or use a larger SD card"
    return 0
  fi
  check_ok "disk: $((avail / 1024)) MB free, $((need_kb / 1024)) MB needed"
}

# Who listens on a TCP port: "" when nobody, else "name pid".
port_user() {
  ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/\1 \2/p' | head -n 1
}

check_ports() {
  if ! command -v ss >/dev/null; then
    warn "ss (iproute2) is missing: cannot check that the ports are free"
    return 0
  fi
  local name port flag who names=(http mqtt)
  if [ "$SERVER_TLS" = 1 ]; then names+=(https mqtts); fi
  for name in "${names[@]}"; do
    case $name in
      http) port=$HTTP_PORT flag=--http-port ;;
      mqtt) port=$MQTT_PORT flag=--mqtt-port ;;
      https) port=$HTTPS_PORT flag=--https-port ;;
      mqtts) port=$MQTTS_PORT flag=--mqtts-port ;;
      *) die "internal: unknown port name $name" ;;
    esac
    who=$(port_user "$port")
    if [ -z "$who" ] && ! ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
      check_ok "port $port ($name) is free"
    elif [ "${who%% *}" = techtemp-server ]; then
      check_ok "port $port ($name) is TechTemp's own"
    else
      local remedy="stop it, or choose another port with $flag N"
      if [ "${who%% *}" = mosquitto ]; then remedy="TechTemp has its own broker: sudo systemctl disable --now mosquitto, or choose another port with $flag N"; fi
      check_fail "port $port ($name) is already used by ${who:-another program}" "$remedy"
    fi
  done
}

# I2C as `raspi-config nonint do_i2c 0` enables it, without a reboot: the
# overlay in config.txt (for the next boots), i2c-dev in /etc/modules, then
# the overlay and the module loaded now.
check_i2c() {
  local bus dev enabled=1
  bus=$(ini_get "$DEVICE_CONF" sensor i2c_bus)
  bus=${bus:-1}
  dev="$ROOT/dev/i2c-$bus"
  if [ -n "$BOOT_CONFIG" ] && ! grep -qE '^(device_tree_param|dtparam)=([^,]*,)*i2c(_arm)?(=(on|true|yes|1))?(,.*)?$' "$BOOT_CONFIG"; then
    enabled=0
  fi
  if ! grep -qE '^i2c[-_]dev' "$MODULES_FILE" 2>/dev/null; then enabled=0; fi
  if [ "$enabled" = 0 ] && [ -n "$BOOT_CONFIG" ]; then
    step "enabling I2C (as raspi-config nonint do_i2c 0)"
    enable_i2c
  fi
  if [ "$DRY_RUN" = 1 ] && [ "$enabled" = 0 ] && [ -n "$BOOT_CONFIG" ]; then
    check_ok "I2C: would be enabled"
    return 0
  fi
  local waited=0
  while [ ! -e "$dev" ] && live && [ "$waited" -lt 5 ]; do
    sleep 1
    waited=$((waited + 1))
  done
  if [ ! -e "$dev" ]; then
    if [ -z "$BOOT_CONFIG" ]; then
      check_fail "no I2C bus $bus (/dev/i2c-$bus) and no Raspberry Pi config.txt to enable it in" \
        "enable I2C for this board and load i2c-dev (sudo modprobe i2c-dev), or set i2c_bus in $DEVICE_CONF; --simulated installs without a sensor"
    else
      check_fail "I2C is enabled in $BOOT_CONFIG but /dev/i2c-$bus did not appear" \
        "reboot (sudo reboot), then run install.sh again; check the AHT20 wiring (SDA pin 3, SCL pin 5, 3.3 V, GND)"
    fi
    return 0
  fi
  check_ok "I2C: /dev/i2c-$bus"
}

enable_i2c() {
  local tmp last_filter
  tmp=$(mktemp "$WORK/config.XXXXXX")
  if grep -qE '^#?[[:space:]]*dtparam=i2c_arm=' "$BOOT_CONFIG"; then
    # Like raspi-config: the first such line, commented out or off, becomes the setting.
    awk '!done && /^#?[ \t]*dtparam=i2c_arm=/ { print "dtparam=i2c_arm=on"; done = 1; next } { print }' "$BOOT_CONFIG" >"$tmp"
  else
    cat "$BOOT_CONFIG" >"$tmp"
    # A line after a [pi4] or [cm4] filter would apply to those boards only.
    last_filter=$(grep -E '^\[' "$BOOT_CONFIG" | tail -n 1 || true)
    if [ -n "$last_filter" ] && [ "$last_filter" != "[all]" ]; then printf '[all]\n' >>"$tmp"; fi
    printf 'dtparam=i2c_arm=on\n' >>"$tmp"
  fi
  put_file "$tmp" "$BOOT_CONFIG" "$(stat -c '%a' "$BOOT_CONFIG")" root:root
  if [ -f "$BLACKLIST_FILE" ] && grep -qE '^blacklist[[:space:]]*i2c[-_]bcm2708' "$BLACKLIST_FILE"; then
    put_output "$BLACKLIST_FILE" 644 root:root sed -E 's/^(blacklist[[:space:]]*i2c[-_]bcm2708)/#\1/' "$BLACKLIST_FILE"
  fi
  if ! grep -qE '^i2c[-_]dev' "$MODULES_FILE" 2>/dev/null; then
    { if [ -f "$MODULES_FILE" ]; then sed -E 's/^#[[:space:]]*(i2c[-_]dev)/\1/' "$MODULES_FILE"; fi; } >"$tmp"
    grep -qE '^i2c[-_]dev' "$tmp" || printf 'i2c-dev\n' >>"$tmp"
    put_file "$tmp" "$MODULES_FILE" 644 root:root
  fi
  if command -v dtparam >/dev/null || [ "$DRY_RUN" = 1 ]; then act_live dtparam i2c_arm=on || warn "dtparam i2c_arm=on failed"; fi
  act_live modprobe i2c-dev || warn "modprobe i2c-dev failed"
}

# The AHT20 answers at its address, and the agent can ask the kernel about the
# clock: the agent's own probe (`techtemp-sensor check`), run the way the
# service will run it, so that the check and the service cannot disagree.
check_aht20() {
  local out
  if out=$(sensor_check 2>&1); then
    check_ok "AHT20: ${out//$'\n'/; }"
  else
    check_fail "the AHT20 check failed: ${out//$'\n'/; }" \
      "check the wiring (VIN 3.3 V, GND, SDA pin 3, SCL pin 5) and i2cdetect -y ${SENSOR_BUS:-1} (it must show 38); a message about bun:ffi, adjtimex or the device policy is about the service's settings"
  fi
}

# `techtemp-sensor check` under systemd with the bundle's own unit: the same
# user and group, Environment= lines, system call filter, device policy and
# file system protections as the service (and the drop-ins a person added to
# it), only Type=oneshot with the check as ExecStart. Without a running
# systemd (--root, images) the agent runs directly with the unit's Environment=.
sensor_check() {
  if [ -n "$ROOT" ] || [ ! -d /run/systemd/system ]; then
    sensor_cmd_with_unit_env check
    return
  fi
  local unit=techtemp-sensor-check.service dir=/run/techtemp-check
  local file="/run/systemd/system/$unit" dropins="/run/systemd/system/$unit.d"
  local status=0
  rm -rf "$dir" "$dropins"
  mkdir -p "$dir/bundle" "$dir/conf"
  sensor_conf_draft >/dev/null
  cp "$WORK/device.conf" "$dir/conf/device.conf"
  chmod 0755 "$dir" "$dir/conf"
  chmod 0644 "$dir/conf/device.conf"
  render_check_unit "$dir" >"$file"
  if [ -d "$UNIT_DIR/techtemp-sensor.service.d" ]; then
    mkdir -p "$dropins"
    cp "$UNIT_DIR"/techtemp-sensor.service.d/*.conf "$dropins"/ 2>/dev/null || true
  fi
  systemctl daemon-reload
  systemctl start "$unit" 2>/dev/null || status=$?
  if [ -s "$dir/out" ]; then
    cat "$dir/out"
  elif [ "$status" != 0 ]; then
    printf 'the check did not start under the unit: %s\n' "$(systemctl show -p Result -p ExecMainStatus --value "$unit" | paste -sd' ')"
  fi
  rm -rf "$file" "$dropins"
  systemctl daemon-reload
  systemctl reset-failed "$unit" 2>/dev/null || true
  rm -rf "$dir"
  return "$status"
}

# The bundle's sensor unit as a one-shot `check`: see sensor_check.
render_check_unit() {
  local dir=$1 user_line=
  if [ -z "$(uid_of "$SERVICE_USER")" ]; then user_line=DynamicUser=yes; fi
  awk -v dir="$dir" -v bundle="$BUNDLE_DIR" -v user_line="$user_line" -v has_i2c="$(gid_of i2c)" '
    /^\[Install\]/ { exit }
    /^(Type|Restart|RestartSec|StateDirectory|StateDirectoryMode|ConfigurationDirectory|ConfigurationDirectoryMode|StandardOutput|StandardError)=/ { next }
    /^(User|Group)=/ && user_line != "" { next }
    /^SupplementaryGroups=/ && has_i2c == "" { next }
    /^ExecStart=/ {
      print "ExecStart=" dir "/bundle/techtemp-sensor check " dir "/conf/device.conf"
      print "Type=oneshot"
      print "TimeoutStartSec=60"
      print "BindReadOnlyPaths=" bundle ":" dir "/bundle"
      print "StandardOutput=file:" dir "/out"
      print "StandardError=file:" dir "/out"
      if (user_line != "") print user_line
      next
    }
    { print }
  ' "$BUNDLE_DIR/systemd/techtemp-sensor.service"
}

# Whether a host name resolves here (mDNS .local names through libnss-mdns, as on Raspberry Pi OS).
resolves() { getent hosts "$1" >/dev/null 2>&1; }

check_server_reachable() {
  if [[ $SERVER_HOST == *.local ]] && ! resolves "$SERVER_HOST"; then
    check_fail "the server's name $SERVER_HOST does not resolve on this Pi (mDNS)" \
      "install the mDNS resolver (sudo apt-get install libnss-mdns avahi-daemon; Raspberry Pi OS has both), or give the server's address: --server 192.168.1.10"
    return 0
  fi
  local mqtt=MQTT
  if [ "$SENSOR_TLS" = 1 ]; then mqtt="MQTT over TLS"; fi
  if tcp_open "$SERVER_HOST" "$SERVER_MQTT_PORT"; then
    check_ok "server $mqtt $SERVER_HOST:$SERVER_MQTT_PORT answers"
  else
    local flag=--mqtt-port
    if [ "$SENSOR_TLS" = 1 ]; then flag=--mqtts-port; fi
    check_fail "the server does not answer on $mqtt $SERVER_HOST:$SERVER_MQTT_PORT" \
      "install the server first (sudo ./install.sh server${SENSOR_TLS/#1/ --tls} on it), check the address and $flag, and that both Pis are on the same network"
  fi
  # The API enrolls the device. Only reachability here (-k): nothing secret is sent to it yet.
  if [ -n "$OPT_ENROLL" ] || [ -n "$SENSOR_ROOM" ] || live; then
    local res
    res=$(http GET "$API_BASE/health" "" -k)
    if [ "${res%% *}" = 200 ]; then
      check_ok "server API $API_BASE answers"
    else
      local flag="--http-port N (default 3000)"
      if [ "$SENSOR_TLS" = 1 ]; then flag="--https-port N (default 8443)"; fi
      check_fail "the server API does not answer at $API_BASE/health (status ${res%% *})" \
        "give the server's port with $flag; its web pages must open at that address"
    fi
  fi
}

# Runs a checks-first install: stops after reporting every failed check.
run_checks() {
  if [ "$DRY_RUN" = 0 ] && [ "$(id -u)" != 0 ]; then die "install.sh must run as root" "sudo ./install.sh $COMMAND ..."; fi
  check_os
  check_tools
  check_disk
  if [ "$IMAGE" = 1 ]; then
    # Nothing of this machine says anything about the Pi: its ports, I2C bus and network are its own.
    if [ "$COMMAND" = sensor ] && [ "$OPT_SIMULATED" = 0 ] && [ -n "$BOOT_CONFIG" ]; then enable_i2c_in_image; fi
    check_ok "ports, I2C, the AHT20 and the server: checked on the Pi (the services say what is wrong at their first start)"
  elif [ "$COMMAND" = server ]; then
    check_ports
  else
    if [ "$OPT_SIMULATED" = 1 ] || [ "$(ini_get "$DEVICE_CONF" sensor driver)" = sim ]; then
      check_ok "I2C and AHT20: not needed (simulated sensor)"
    else
      check_i2c
      if [ "$CHECK_FAILURES" = 0 ]; then check_aht20; fi
    fi
    check_server_reachable
  fi
  if [ "$CHECK_FAILURES" -gt 0 ]; then die "$CHECK_FAILURES check(s) failed: nothing was installed" "see each fix above, then run install.sh again"; fi
}

# Image mode (--image with --root): the tree is another machine's (a Pi's SD
# card prepared on a PC). Asked for, never guessed: a --root tree is otherwise
# this machine's (tests, a Pi installing into a mounted root).
decide_image() {
  IMAGE=0
  if [ "$OPT_IMAGE" = 0 ]; then return 0; fi
  if [ -z "$ROOT" ] || [ "$START" = 1 ]; then
    die_as 2 "--image prepares another machine's tree: it goes with --root DIR, without --start" "e.g. sudo ./install.sh sensor --server maison.local --root /mnt/pi --image"
  fi
  IMAGE=1
  if [ "$IMAGE" = 1 ] && [ "$OPT_TLS" = 1 ] && [ "$COMMAND" = server ]; then
    die_as 2 "--tls in an image: the local CA is made by the server's own executable, which runs on the Pi" \
      "install the image without --tls, then on the Pi: sudo /opt/techtemp/install.sh server --tls"
  fi
  if [ "$IMAGE" = 1 ] && [ -n "$OPT_ENROLL" ] && [ -z "$OPT_DEVICE_UID" ] && [ -z "$(ini_get "$DEVICE_CONF" device device_uid)" ]; then
    die_as 2 "--enroll in an image needs the device uid, which comes from the Pi's MAC address" \
      "give --device-uid aht20-xxxxxx (the last 6 hex digits of the Pi's MAC), or enroll on the Pi: sudo /opt/techtemp/install.sh sensor --enroll TOKEN"
  fi
}

# The tree's processor, when it says (dpkg's arch file), against the bundle's.
check_image() {
  local tree_arch=""
  if [ -f "$ROOT/var/lib/dpkg/arch" ]; then tree_arch=$(head -n 1 "$ROOT/var/lib/dpkg/arch"); fi
  case $tree_arch in
    "") check_ok "linux-$BUNDLE_ARCH bundle (the tree does not say its processor)" ;;
    arm64 | amd64)
      if [ "${tree_arch/amd64/x64}" != "$BUNDLE_ARCH" ]; then
        die "this bundle is for linux-$BUNDLE_ARCH but the tree $ROOT is $tree_arch" "use techtemp-$COMMAND-$BUNDLE_VERSION-linux-${tree_arch/amd64/x64}.tar.gz"
      fi
      check_ok "linux-$BUNDLE_ARCH bundle for a $tree_arch tree" ;;
    *) die "the tree $ROOT is $tree_arch (32-bit): Bun needs a 64-bit OS" "write Raspberry Pi OS (64-bit) to the card" ;;
  esac
}

# I2C enabled in the tree's files only (the bus appears when the Pi boots).
enable_i2c_in_image() {
  if grep -qE '^(device_tree_param|dtparam)=([^,]*,)*i2c(_arm)?(=(on|true|yes|1))?(,.*)?$' "$BOOT_CONFIG" &&
    grep -qE '^i2c[-_]dev' "$MODULES_FILE" 2>/dev/null; then
    check_ok "I2C: enabled in ${BOOT_CONFIG#"$ROOT"}"
    return 0
  fi
  step "enabling I2C in the image (as raspi-config nonint do_i2c 0)"
  enable_i2c
}

# ---------------------------------------------------------------- configuration

role_executables() { if [ "$COMMAND" = server ]; then echo techtemp-server; else echo techtemp-sensor; fi; }

resolve_server_settings() {
  HTTP_PORT=${OPT_HTTP_PORT:-$(ini_get "$SERVER_CONF" "" http_port)}
  HTTP_PORT=${HTTP_PORT:-3000}
  MQTT_PORT=${OPT_MQTT_PORT:-$(ini_get "$SERVER_CONF" "" mqtt_port)}
  MQTT_PORT=${MQTT_PORT:-1883}
  HTTPS_PORT=${OPT_HTTPS_PORT:-$(ini_get "$SERVER_CONF" "" https_port)}
  HTTPS_PORT=${HTTPS_PORT:-8443}
  MQTTS_PORT=${OPT_MQTTS_PORT:-$(ini_get "$SERVER_CONF" "" mqtts_port)}
  MQTTS_PORT=${MQTTS_PORT:-8883}
  # TLS is on with --tls, a configured certificate, or the one `techtemp-server tls` made before.
  SERVER_TLS=0
  if [ "$OPT_TLS" = 1 ] || [ -n "$(ini_get "$SERVER_CONF" "" tls_cert)" ] || [ -f "$TLS_DIR/server.crt" ]; then SERVER_TLS=1; fi
  HTTP_PLAIN=$(ini_get "$SERVER_CONF" "" http_plain)
  HTTP_PLAIN=${HTTP_PLAIN:-on}
}

resolve_sensor_settings() {
  SERVER_HOST=${OPT_SERVER:-$(ini_get "$DEVICE_CONF" mqtt broker_host)}
  [ -n "$SERVER_HOST" ] || die_as 2 "the sensor needs the server's address" "sudo ./install.sh sensor --server 192.168.1.10 --enroll TOKEN --room Salon"
  local conf_tls conf_port
  conf_tls=$(ini_get "$DEVICE_CONF" mqtt tls)
  conf_port=$(ini_get "$DEVICE_CONF" mqtt broker_port)
  # A sensor enrolled with --tls stays on TLS (tls = true in device.conf) until a person edits it.
  SENSOR_TLS=0
  if [ "$OPT_TLS" = 1 ] || [ "$conf_tls" = true ]; then SENSOR_TLS=1; fi
  if [ "$SENSOR_TLS" = 1 ]; then
    if [ "$conf_tls" != true ]; then conf_port=""; fi
    SERVER_MQTT_PORT=${OPT_MQTTS_PORT:-$conf_port}
    SERVER_MQTT_PORT=${SERVER_MQTT_PORT:-8883}
  else
    SERVER_MQTT_PORT=${OPT_MQTT_PORT:-$conf_port}
    SERVER_MQTT_PORT=${SERVER_MQTT_PORT:-1883}
  fi
  SERVER_HTTP_PORT=${OPT_HTTP_PORT:-$(ini_get "$INSTALL_CONF" "" server_http_port)}
  SERVER_HTTP_PORT=${SERVER_HTTP_PORT:-3000}
  SERVER_HTTPS_PORT=${OPT_HTTPS_PORT:-$(ini_get "$INSTALL_CONF" "" server_https_port)}
  SERVER_HTTPS_PORT=${SERVER_HTTPS_PORT:-8443}
  local host=$SERVER_HOST
  if [[ $host == *:* ]]; then host="[$host]"; fi
  if [ "$SENSOR_TLS" = 1 ]; then API_BASE="https://$host:$SERVER_HTTPS_PORT"; else API_BASE="http://$host:$SERVER_HTTP_PORT"; fi
  PREVIOUS_ROOM=$(ini_get "$INSTALL_CONF" "" room)
  SENSOR_ROOM=${OPT_ROOM:-$PREVIOUS_ROOM}
  ENROLLMENT_HASH=$(ini_get "$INSTALL_CONF" "" enrollment)
  SENSOR_BUS=$(ini_get "$DEVICE_CONF" sensor i2c_bus)
}

# The config a sensor check or uid runs with before device.conf is installed.
sensor_conf_draft() {
  local conf="$WORK/device.conf"
  if [ ! -f "$conf" ]; then render_device_conf "${OPT_DEVICE_UID:-$(ini_get "$DEVICE_CONF" device device_uid)}" >"$conf"; fi
  printf '%s' "$conf"
}

# The agent of the bundle, with a clean environment (no TECHTEMP_* of the person running install.sh).
sensor_cmd() {
  local conf
  conf=$(sensor_conf_draft)
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "$BUNDLE_DIR/techtemp-sensor" "$@" "$conf"
}

# The agent of the bundle with only the Environment= of its unit (where no systemd can run it).
sensor_cmd_with_unit_env() {
  local conf line envs=()
  conf=$(sensor_conf_draft)
  while IFS= read -r line; do
    case $line in
      Environment=*) envs+=("${line#Environment=}") ;;
      *) ;; # every other line of the unit is systemd's business
    esac
  done <"$BUNDLE_DIR/systemd/techtemp-sensor.service"
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "${envs[@]}" "$BUNDLE_DIR/techtemp-sensor" "$@" "$conf"
}

render_server_conf() {
  local base="$WORK/server.conf.base" tmp="$WORK/server.conf.tmp"
  if [ -f "$SERVER_CONF" ]; then
    cp "$SERVER_CONF" "$base"
  else
    cat >"$base" <<'EOF'
# TechTemp server settings: `key = value`. install.sh sets the ports and
# data_dir and keeps every other line; environment variables TECHTEMP_*
# win over this file (README, Configuration).
EOF
  fi
  cp "$base" "$tmp"
  set_ini_into "$tmp" "$base" "" http_port "$HTTP_PORT"
  set_ini_into "$tmp" "$base" "" mqtt_port "$MQTT_PORT"
  # The operator commands (techtemp-server enroll-token, device-password…) find the database through it.
  set_ini_into "$tmp" "$base" "" data_dir /var/lib/techtemp
  if [ -n "$OPT_HTTPS_PORT" ]; then set_ini_into "$tmp" "$base" "" https_port "$OPT_HTTPS_PORT"; fi
  if [ -n "$OPT_MQTTS_PORT" ]; then set_ini_into "$tmp" "$base" "" mqtts_port "$OPT_MQTTS_PORT"; fi
  cat "$tmp"
}

# device.conf in the earlier agent's format; an existing one keeps every key not given on the command line.
render_device_conf() {
  local uid=$1 base="$WORK/device.conf.base" a="$WORK/device.conf.a" b="$WORK/device.conf.b"
  if [ -f "$DEVICE_CONF" ]; then
    cp "$DEVICE_CONF" "$base"
  else
    cat >"$base" <<EOF
# TechTemp sensor settings (the earlier agent's device.conf format).
# install.sh keeps your edits and rewrites only what its options name.
[device]
home_id = home-001
label = ${OPT_LABEL:-$(hostname 2>/dev/null || echo techtemp-sensor)}

[sensor]
i2c_address = 0x38
i2c_bus = 1
read_interval_seconds = 300

[mqtt]
broker_port = 1883
EOF
  fi
  cp "$base" "$a"
  set_ini_into "$a" "$b" device device_uid "$uid"
  if [ -n "$OPT_HOME" ]; then set_ini_into "$a" "$b" device home_id "$OPT_HOME"; fi
  if [ -n "$OPT_LABEL" ]; then set_ini_into "$a" "$b" device label "$OPT_LABEL"; fi
  if [ -n "$OPT_INTERVAL" ]; then set_ini_into "$a" "$b" sensor read_interval_seconds "$OPT_INTERVAL"; fi
  if [ "$OPT_SIMULATED" = 1 ]; then set_ini_into "$a" "$b" sensor driver sim; fi
  set_ini_into "$a" "$b" mqtt broker_host "$SERVER_HOST"
  if [ "$SENSOR_TLS" = 1 ]; then
    set_ini_into "$a" "$b" mqtt broker_port "$SERVER_MQTT_PORT"
    set_ini_into "$a" "$b" mqtt tls true
    # The local CA the sensor trusts (not the system's); none for a certificate from a public CA.
    if [ -n "$ENROLLED_CA" ] || [ -f "$CA_FILE" ]; then set_ini_into "$a" "$b" mqtt ca_file "${CA_FILE#"$ROOT"}"; fi
  elif [ -n "$OPT_MQTT_PORT" ]; then
    set_ini_into "$a" "$b" mqtt broker_port "$OPT_MQTT_PORT"
  fi
  # The credentials enrollment gave: username = the device uid, password = its secret.
  if [ -n "$ENROLLED_SECRET" ]; then
    set_ini_into "$a" "$b" mqtt username "$uid"
    set_ini_into "$a" "$b" mqtt password "$ENROLLED_SECRET"
    # A new device.conf takes the home the server knows the device in; an existing one keeps its own.
    if [ -z "$OPT_HOME" ] && [ -z "$(ini_get "$DEVICE_CONF" device home_id)" ]; then set_ini_into "$a" "$b" device home_id "$ENROLLED_HOME"; fi
  fi
  cat "$a"
}

# ini_set in place on a work file (through a second work file).
set_ini_into() {
  local file=$1 spare=$2
  shift 2
  if [ -z "$3" ]; then return 0; fi
  ini_set "$file" "$@" >"$spare"
  mv -f "$spare" "$file"
}

render_install_conf() {
  local base="$WORK/install.conf.base" a="$WORK/install.conf.a" b="$WORK/install.conf.b"
  if [ -f "$INSTALL_CONF" ]; then
    cp "$INSTALL_CONF" "$base"
  else
    printf '# What install.sh needs to remember between runs (not read by the services).\n' >"$base"
  fi
  cp "$base" "$a"
  set_ini_into "$a" "$b" "" server_http_port "$SERVER_HTTP_PORT"
  if [ "$SENSOR_TLS" = 1 ]; then set_ini_into "$a" "$b" "" server_https_port "$SERVER_HTTPS_PORT"; fi
  set_ini_into "$a" "$b" "" room "$SENSOR_ROOM"
  # Which enrollment token was used (its SHA-256): the same --enroll again changes nothing.
  set_ini_into "$a" "$b" "" enrollment "$ENROLLMENT_HASH"
  cat "$a"
}

# ---------------------------------------------------------------- services

unit_of() { printf 'techtemp-%s.service' "$1"; }

systemctl_files() {
  if [ -n "$ROOT" ]; then systemctl --root="$ROOT" "$@"; else systemctl "$@"; fi
}

is_active() { live && systemctl is-active --quiet "$1" 2>/dev/null; }

ensure_enabled() {
  local unit=$1
  if [ "$(systemctl_files is-enabled "$unit" 2>/dev/null || true)" = enabled ]; then return 0; fi
  if [ -n "$ROOT" ]; then act systemctl --root="$ROOT" enable "$unit"; else act systemctl enable "$unit"; fi
}

ensure_user() {
  local extra=()
  if [ "$COMMAND" = sensor ]; then
    if [ -z "$(gid_of i2c)" ]; then
      if [ -n "$ROOT" ]; then act groupadd --root "$ROOT" --system i2c; else act groupadd --system i2c; fi
    fi
    extra=(--groups i2c)
  fi
  local rootopt=()
  if [ -n "$ROOT" ]; then rootopt=(--root "$ROOT"); fi
  if [ -z "$(uid_of "$SERVICE_USER")" ]; then
    act useradd "${rootopt[@]}" --system --user-group --home-dir /var/lib/techtemp --no-create-home \
      --shell /usr/sbin/nologin --comment "TechTemp service" "${extra[@]}" "$SERVICE_USER"
  elif [ "$COMMAND" = sensor ] && ! group_has_member i2c "$SERVICE_USER"; then
    act usermod "${rootopt[@]}" --append --groups i2c "$SERVICE_USER"
  fi
}

ensure_dirs() {
  ensure_dir "$OPT_DIR" 755 root:root
  ensure_dir "$ETC_DIR" 750 "root:$SERVICE_USER"
  ensure_dir "$VAR_DIR" 750 "$SERVICE_USER:$SERVICE_USER"
}

# The server's /health: over plain HTTP, or HTTPS when plain HTTP is off (-k: this is
# only whether it answers, on this machine, and nothing secret is sent).
server_health() {
  if [ "$HTTP_PLAIN" = off ]; then http GET "https://127.0.0.1:$HTTPS_PORT/health" "" -k; else http GET "http://127.0.0.1:$HTTP_PORT/health"; fi
}

# When the server last stored a reading of this sensor, from the agent's outbox (a
# PUBACK means stored): `techtemp-sensor status`, which needs no account on the server.
sensor_last_stored() {
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TECHTEMP_DATA_DIR="$VAR_DIR" "$OPT_DIR/techtemp-sensor" status "$DEVICE_CONF" 2>&1
}

# Health of one role: the server's /health, or a reading of the sensor stored by the server after `since`.
healthy() {
  local role=$1 since=$2 res
  if [ "$role" = server ]; then
    res=$(server_health)
    [ "${res%% *}" = 200 ] && [[ $res == *'"status":"ok"'* ]]
  else
    res=$(sensor_last_stored) || return 1
    local ts
    ts=$(printf '%s' "$res" | sed -n 's/.*stored by the server at \([^;]*\);.*/\1/p')
    [ -n "$ts" ] && { [[ $ts > $since ]] || [ "$ts" = "$since" ]; }
  fi
}

wait_healthy() {
  local role=$1 since=$2 deadline=$((SECONDS + WAIT_S))
  local what="/health"
  if [ "$role" = sensor ]; then what="its first reading stored by the server"; fi
  say "waiting for $(unit_of "$role"): $what (at most ${WAIT_S} s)"
  while [ "$SECONDS" -le "$deadline" ]; do
    if healthy "$role" "$since"; then return 0; fi
    sleep 1
  done
  return 1
}

# Online backup through the executable's own SQLite (BUN_BE_BUN=1 makes a
# compiled Bun program act as the bun CLI): VACUUM INTO writes a consistent
# copy beside a running server.
backup_db() {
  [ -f "$DB_FILE" ] || return 0
  local dest="$BACKUP_DIR/techtemp-${INSTALLED_VERSION:-unknown}-$STAMP.db" exe
  ensure_dir "$BACKUP_DIR" 700 root:root
  if [ "$DRY_RUN" = 1 ]; then
    say "would back up $DB_FILE to $dest"
    return 0
  fi
  local script='const { Database } = require("bun:sqlite");
const [src, dst] = process.argv.slice(-2);
const db = new Database(src, { readonly: true });
db.exec("PRAGMA busy_timeout = 10000");
db.run("VACUUM INTO ?", [dst]);
db.close();'
  for exe in "$OPT_DIR/techtemp-server" "$BUNDLE_DIR/techtemp-server"; do
    [ -x "$exe" ] || continue
    if (cd / && env -i PATH=/usr/bin:/bin BUN_BE_BUN=1 "$exe" -e "$script" "$DB_FILE" "$dest") && [ -s "$dest" ]; then
      chmod 600 "$dest"
      say "database backed up to $dest"
      BACKUP_FILE=$dest
      prune_backups
      return 0
    fi
    rm -f "$dest"
  done
  die_as 6 "cannot back up the database $DB_FILE: nothing was changed" "check free space in $BACKUP_DIR and the log above"
}

# Keeps the 3 newest backups.
prune_backups() {
  local old
  while IFS= read -r old; do
    [ -n "$old" ] && rm -f "$old" && say "removed old backup $old"
  done < <(find "$BACKUP_DIR" -maxdepth 1 -name 'techtemp-*.db' -printf '%T@ %p\n' | sort -rn | tail -n +4 | cut -d' ' -f2-)
}

# Installs the role's files; sets ROLE_CHANGED (the service must restart) and UPGRADE.
install_files() {
  local role=$1 exe
  exe=$(role_executables)
  local unit
  unit=$(unit_of "$role")
  ROLE_CHANGED=0
  UNIT_CHANGED=0
  UPGRADE=0
  INSTALLED_VERSION=$(bundle_field "$OPT_DIR" version)
  WAS_INSTALLED=0
  if [ -f "$OPT_DIR/$exe" ]; then WAS_INSTALLED=1; fi
  save_config "$role"
  if [ -f "$OPT_DIR/$exe" ] && ! cmp -s "$BUNDLE_DIR/$exe" "$OPT_DIR/$exe"; then
    UPGRADE=1
    step "upgrading $exe ${INSTALLED_VERSION:-?} -> $BUNDLE_VERSION"
    if [ "$role" = server ]; then backup_db; fi
    # The running version, kept (a hard link costs no space) until the new one is healthy.
    if [ "$DRY_RUN" = 0 ]; then
      mkdir -p "$PREVIOUS_DIR"
      ln -f "$OPT_DIR/$exe" "$PREVIOUS_DIR/$exe"
      if [ -f "$OPT_DIR/BUNDLE" ]; then cp -f "$OPT_DIR/BUNDLE" "$PREVIOUS_DIR/BUNDLE"; fi
      if [ -f "$OPT_DIR/SHA256SUMS" ]; then cp -f "$OPT_DIR/SHA256SUMS" "$PREVIOUS_DIR/SHA256SUMS"; fi
    fi
  fi
  put_file "$BUNDLE_DIR/$exe" "$OPT_DIR/$exe" 755 root:root
  if [ "$FILE_CHANGED" = 1 ]; then ROLE_CHANGED=1; fi
  put_file "$BUNDLE_DIR/BUNDLE" "$OPT_DIR/BUNDLE" 644 root:root
  if [ "$BUNDLE_DIR" != "$OPT_DIR" ]; then
    put_file "$BUNDLE_DIR/README.md" "$OPT_DIR/README.md" 644 root:root
    put_file "$BUNDLE_DIR/install.sh" "$OPT_DIR/install.sh" 755 root:root
    if [ -f "$BUNDLE_DIR/SHA256SUMS" ]; then put_file "$BUNDLE_DIR/SHA256SUMS" "$OPT_DIR/SHA256SUMS" 644 root:root; fi
  fi
  # /opt/techtemp is a bundle itself: /opt/techtemp/install.sh can re-apply, repair or uninstall.
  local any
  for any in "$BUNDLE_DIR"/systemd/*.service; do
    [ -f "$any" ] || continue
    if [ "$BUNDLE_DIR" != "$OPT_DIR" ]; then put_file "$any" "$OPT_DIR/systemd/$(basename "$any")" 644 root:root; fi
  done
  put_file "$BUNDLE_DIR/systemd/$unit" "$UNIT_DIR/$unit" 644 root:root
  if [ "$FILE_CHANGED" = 1 ]; then
    ROLE_CHANGED=1
    UNIT_CHANGED=1
  fi
  if [ "$role" = server ]; then
    put_output "$SERVER_CONF" 640 "root:$SERVICE_USER" render_server_conf
    if [ "$FILE_CHANGED" = 1 ]; then ROLE_CHANGED=1; fi
  else
    if [ -n "$ENROLLED_CA" ]; then
      put_file "$ENROLLED_CA" "$CA_FILE" 640 "root:$SERVICE_USER"
      if [ "$FILE_CHANGED" = 1 ]; then ROLE_CHANGED=1; fi
    fi
    put_output "$DEVICE_CONF" 640 "root:$SERVICE_USER" render_device_conf "$DEVICE_UID"
    if [ "$FILE_CHANGED" = 1 ]; then ROLE_CHANGED=1; fi
    put_output "$INSTALL_CONF" 640 root:root render_install_conf
  fi
}

# Starts the role's service if anything changed (or it is not running) and waits for its health.
start_role() {
  local role=$1 unit since
  unit=$(unit_of "$role")
  ensure_enabled "$unit"
  if [ "$UNIT_CHANGED" = 1 ]; then act_live systemctl daemon-reload; fi
  since=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
  if [ "$ROLE_CHANGED" = 1 ]; then
    act_live systemctl restart "$unit"
  elif live && ! is_active "$unit"; then
    act systemctl start "$unit"
  else
    return 0
  fi
  if ! live || [ "$DRY_RUN" = 1 ]; then return 0; fi
  if wait_healthy "$role" "$since"; then
    say "$unit is healthy"
    remove_previous "$role"
    return 0
  fi
  if [ "$WAS_INSTALLED" = 1 ]; then rollback "$role"; fi
  local remedy="see why: journalctl -u $unit -n 50; then run install.sh again (or --wait 300 on a slow network)"
  if [ "$role" = sensor ]; then
    remedy="$remedy; a sensor holds its readings until the clock is synchronised (timedatectl)"
    if [ -z "$(ini_get "$DEVICE_CONF" mqtt username)" ]; then remedy="$remedy; without MQTT credentials the server may refuse it: give --enroll TOKEN"; fi
  fi
  die_as 5 "$unit did not become healthy within ${WAIT_S} s (a first install: nothing to roll back to)" "$remedy"
}

remove_previous() {
  local exe
  exe=$(role_executables)
  rm -f "$PREVIOUS_DIR/$exe"
  if [ -d "$PREVIOUS_DIR" ] && [ -z "$(find "$PREVIOUS_DIR" -name 'techtemp-*')" ]; then rm -rf "$PREVIOUS_DIR"; fi
}

# The role's configuration and unit as they were before this run, in
# $WORK/saved (a file that was absent has no copy there): what `rollback`
# puts back with the previous executable.
save_config() {
  local f unit
  unit="$UNIT_DIR/$(unit_of "$1")"
  mkdir -p "$WORK/saved"
  CONFIG_SAVED=("$SERVER_CONF" "$DEVICE_CONF" "$INSTALL_CONF" "$CA_FILE" "$unit")
  for f in "${CONFIG_SAVED[@]}"; do
    if [ -f "$f" ]; then cp -p "$f" "$WORK/saved/$(basename "$f")"; fi
  done
}

# Puts the saved configuration back (mode and owner too), removing what this run added.
restore_config() {
  local f
  for f in "${CONFIG_SAVED[@]}"; do
    if [ -f "$WORK/saved/$(basename "$f")" ]; then
      if ! cmp -s "$WORK/saved/$(basename "$f")" "$f"; then
        say "restore $f"
        cp -p "$WORK/saved/$(basename "$f")" "$f.tmp.$$"
        mv -f "$f.tmp.$$" "$f"
      fi
    elif [ -f "$f" ]; then
      say "remove $f (new in this run)"
      rm -f "$f"
    fi
  done
  act_live systemctl daemon-reload
}

# The new version or configuration failed its health check: the previous
# executable (after an upgrade) and the previous config come back, and if the
# server does not come up on the (possibly migrated) database, the backup taken
# before the upgrade does (the failed database is kept aside). Exit 4 when the
# previous state answers again, 5 when it does not either.
rollback() {
  local role=$1 unit exe old since what="the previous configuration"
  unit=$(unit_of "$role")
  exe=$(role_executables)
  old=$(bundle_field "$PREVIOUS_DIR" version)
  if [ "$UPGRADE" = 1 ]; then what="${old:-the previous version} and its configuration"; fi
  step "the health check failed: rolling back to $what"
  if [ "$UPGRADE" = 1 ]; then
    put_file "$PREVIOUS_DIR/$exe" "$OPT_DIR/$exe" 755 root:root
    if [ -f "$PREVIOUS_DIR/BUNDLE" ]; then put_file "$PREVIOUS_DIR/BUNDLE" "$OPT_DIR/BUNDLE" 644 root:root; fi
    if [ -f "$PREVIOUS_DIR/SHA256SUMS" ]; then put_file "$PREVIOUS_DIR/SHA256SUMS" "$OPT_DIR/SHA256SUMS" 644 root:root; fi
  fi
  restore_config
  # The health check asks the ports of the restored config, not the ones given on the command line.
  OPT_HTTP_PORT="" OPT_MQTT_PORT="" OPT_HTTPS_PORT="" OPT_MQTTS_PORT=""
  if [ "$role" = server ]; then resolve_server_settings; fi
  since=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
  act systemctl restart "$unit"
  local back=0
  if wait_healthy "$role" "$since"; then
    back=1
  elif [ "$role" = server ] && [ -n "${BACKUP_FILE:-}" ]; then
    step "the previous version does not start on this database either: restoring the backup $BACKUP_FILE"
    act systemctl stop "$unit"
    local f
    for f in "$DB_FILE" "$DB_FILE-wal" "$DB_FILE-shm"; do
      if [ -e "$f" ]; then mv -f "$f" "$VAR_DIR/$(basename "$f").failed-$STAMP"; fi
    done
    cp "$BACKUP_FILE" "$DB_FILE"
    chown "$(numeric_owner "$SERVICE_USER:$SERVICE_USER")" "$DB_FILE"
    chmod 600 "$DB_FILE"
    since=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
    act systemctl start "$unit"
    if wait_healthy "$role" "$since"; then back=1; fi
  fi
  remove_previous "$role"
  if [ "$back" = 0 ]; then
    die_as 5 "the rollback did not come up either: $unit is not healthy" "journalctl -u $unit -n 100${BACKUP_FILE:+; the database backup is $BACKUP_FILE}"
  fi
  local change="the upgrade to $BUNDLE_VERSION"
  if [ "$UPGRADE" = 0 ]; then change="the new configuration"; fi
  die_as 4 "$change failed its health check; $what is running again (data kept${BACKUP_FILE:+, backup $BACKUP_FILE})" \
    "see why it failed: journalctl -u $unit -n 100"
}

# The CA that HTTPS and MQTT over TLS of the server are checked against, in
# $WORK/server-ca.pem, or nothing when its certificate is from a CA this
# machine trusts already (a public one). The server sends its local CA with its
# certificate: it is taken from there, checked against --ca-fingerprint when
# given (else trusted on first use, its fingerprint shown to compare), then
# must verify the server's certificate for the name used to reach it.
trust_server_ca() {
  local pem="$WORK/server-ca.pem" chain="$WORK/server-chain.pem" fp want
  SERVER_CA=""
  if [ -f "$CA_FILE" ]; then
    cp "$CA_FILE" "$pem"
  elif curl -sS -m 10 -o /dev/null "$API_BASE/health" 2>/dev/null; then
    return 0 # a certificate from a CA the system trusts
  else
    local sni=()
    if ! [[ $SERVER_HOST =~ ^[0-9.]+$|: ]]; then sni=(-servername "$SERVER_HOST"); fi
    openssl s_client -connect "$SERVER_HOST:$SERVER_HTTPS_PORT" "${sni[@]}" -showcerts </dev/null >"$chain" 2>/dev/null || true
    # The last certificate of the chain the server sent: its CA.
    awk '/-----BEGIN CERTIFICATE-----/ { cert = "" } { cert = cert $0 "\n" } /-----END CERTIFICATE-----/ { last = cert } END { printf "%s", last }' "$chain" |
      sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p' >"$pem"
    [ -s "$pem" ] || die "no certificate from https://$SERVER_HOST:$SERVER_HTTPS_PORT" "is the server installed with --tls? give its HTTPS port with --https-port N"
  fi
  fp=$(openssl x509 -in "$pem" -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//')
  [ -n "$fp" ] || die "the server sent no readable CA certificate" "run install.sh server --tls on the server again"
  if [ -n "$OPT_CA_FINGERPRINT" ]; then
    want=$(normal_fingerprint "$OPT_CA_FINGERPRINT")
    if [ "$(normal_fingerprint "$fp")" != "$want" ]; then
      die "the server's CA is not the one --ca-fingerprint names (it is SHA-256 $fp): nothing was sent to it" \
        "check --ca-fingerprint against what install.sh server --tls printed; something may be impersonating the server"
    fi
    check_ok "the server's CA matches --ca-fingerprint"
  elif [ ! -f "$CA_FILE" ]; then
    warn "trusting the server's CA on first use: SHA-256 $fp; compare it with what install.sh server --tls printed (--ca-fingerprint checks it for you)"
  fi
  if ! curl -sS -m 10 --cacert "$pem" -o /dev/null "$API_BASE/health" 2>"$WORK/curl.err"; then
    die "the server's certificate does not verify against its CA for $SERVER_HOST: $(tr '\n' ' ' <"$WORK/curl.err")" \
      "reach the server by a name or address its certificate has (techtemp-server tls --name/--ip adds one); if the server has a new CA, remove ${CA_FILE#"$ROOT"} and run again"
  fi
  SERVER_CA=$pem
}

# Whether this run enrolls: with --enroll, unless that same token enrolled this
# device before (then nothing changes). Without it, the credentials in
# device.conf stay; a sensor without any works only while the server accepts
# anonymous sensors (an install upgraded from before accounts).
wants_enrollment() {
  local token_hash
  if [ -z "$OPT_ENROLL" ]; then
    if [ "$(ini_get "$DEVICE_CONF" mqtt username)" = "" ]; then
      warn "no MQTT credentials: this sensor works only while the server accepts anonymous sensors (an upgraded install); give --enroll TOKEN (on the server: sudo -u techtemp /opt/techtemp/techtemp-server enroll-token)"
    fi
    if [ -n "$OPT_ROOM" ] && [ "$OPT_ROOM" != "$PREVIOUS_ROOM" ]; then
      warn "the room is set when enrolling: move the device on the server's devices page, or run again with --enroll TOKEN --room '$OPT_ROOM'"
      SENSOR_ROOM=$PREVIOUS_ROOM
    fi
    return 1
  fi
  token_hash=$(printf '%s' "$OPT_ENROLL" | sha256sum | cut -d' ' -f1)
  if [ "$token_hash" = "$ENROLLMENT_HASH" ] && [ "$(ini_get "$DEVICE_CONF" mqtt username)" = "$DEVICE_UID" ] && { [ "$SENSOR_TLS" = 0 ] || [ -f "$CA_FILE" ]; }; then
    say "enrolled already with this token: keeping the credentials in ${DEVICE_CONF#"$ROOT"}"
    return 1
  fi
  ENROLLMENT_HASH=$token_hash
}

# Trades the enrollment token for this sensor's MQTT credentials (POST
# /api/v1/enroll), which also places the device in its room: ENROLLED_SECRET,
# ENROLLED_HOME, and with TLS the CA to trust (ENROLLED_CA). The token and the
# secret go only over the request body, never on a command line or in the log.
enroll_device() {
  if ! wants_enrollment; then
    # An enrolled sensor moved to TLS (--tls without a new token): it only needs the server's CA.
    if [ "$SENSOR_TLS" = 1 ] && [ ! -f "$CA_FILE" ] && [ "$DRY_RUN" = 0 ]; then
      trust_server_ca
      ENROLLED_CA=$SERVER_CA
    fi
    return 0
  fi
  CHANGES=$((CHANGES + 1))
  if [ "$DRY_RUN" = 1 ]; then
    local where=""
    if [ -n "$SENSOR_ROOM" ]; then where=" in room '$SENSOR_ROOM'"; fi
    say "would enroll $DEVICE_UID at $API_BASE$where"
    return 0
  fi
  local body label tls=() status reply="$WORK/enrolled.json" request="$WORK/enroll.json"
  if [ "$SENSOR_TLS" = 1 ]; then
    trust_server_ca
    if [ -n "$SERVER_CA" ]; then tls=(--cacert "$SERVER_CA"); fi
  fi
  body="{\"token\":\"$OPT_ENROLL\",\"device_uid\":\"$DEVICE_UID\""
  if [ -n "$SENSOR_ROOM" ]; then body+=",\"room_name\":\"$(json_escape "$SENSOR_ROOM")\""; fi
  label=${OPT_LABEL:-$(ini_get "$DEVICE_CONF" device label)}
  if [ -n "$label" ]; then body+=",\"label\":\"$(json_escape "$label")\""; fi
  (umask 077 && printf '%s}' "$body" >"$request")
  status=$(curl -sS -m 20 "${tls[@]}" -o "$reply" -w '%{http_code}' -X POST -H 'content-type: application/json' \
    --data-binary "@$request" "$API_BASE/api/v1/enroll" 2>"$WORK/curl.err") || status=000
  rm -f "$request"
  case $status in
    201) ;;
    401) die "the server refused the enrollment token: it is unknown, expired, used up or revoked" \
      "make a new one on the server (sudo -u techtemp /opt/techtemp/techtemp-server enroll-token, or its web pages), then run install.sh again with --enroll NEW_TOKEN" ;;
    000) die "cannot reach $API_BASE/api/v1/enroll: $(tr '\n' ' ' <"$WORK/curl.err")" "check --server and the server's port" ;;
    404) die "the server at $API_BASE has no enrollment endpoint (an older TechTemp?)" "upgrade the server first" ;;
    *) die "the server refused to enroll $DEVICE_UID (HTTP $status): $(head -c 300 "$reply")" "fix what it says (--room, --device-uid), then run again" ;;
  esac
  ENROLLED_SECRET=$(json_string "$reply" mqtt_password)
  ENROLLED_HOME=$(json_string "$reply" home_id)
  # Only what a secret and an id may hold reaches device.conf.
  [[ $ENROLLED_SECRET =~ ^[A-Za-z0-9_.~+/=-]{16,200}$ ]] || die "the server's enrollment answer has no usable mqtt_password" "see the server's log"
  valid_id "$ENROLLED_HOME" || die "the server's enrollment answer has no usable home_id" "see the server's log"
  if [ "$SENSOR_TLS" = 1 ] && [ -n "$SERVER_CA" ]; then ENROLLED_CA=$SERVER_CA; fi
  local placed=""
  if [ -n "$SENSOR_ROOM" ]; then placed="; placed in room '$SENSOR_ROOM'"; fi
  say "enrolled $DEVICE_UID: its MQTT username and password go to ${DEVICE_CONF#"$ROOT"}$placed"
}

# A JSON string field of our own server's answer (ids and secrets: no escapes in them).
json_string() {
  sed -n "s/.*\"$2\":\"\([^\"\\\\]*\)\".*/\1/p" "$1" | head -n 1
}

# The server's local CA and certificate (techtemp-server tls, idempotent), owned by the
# service; the server restarts when the certificate changed.
ensure_server_tls() {
  [ "$OPT_TLS" = 1 ] || return 0
  local exe="$OPT_DIR/techtemp-server" before after out
  if [ "$DRY_RUN" = 1 ]; then
    if [ -f "$TLS_DIR/server.crt" ]; then
      say "would run: techtemp-server tls (a new certificate only if names were added or it expires within 30 days)"
    else
      CHANGES=$((CHANGES + 1))
      say "would run: techtemp-server tls (a local CA and a certificate in ${TLS_DIR#"$ROOT"})"
    fi
    return 0
  fi
  before=$(sha256sum 2>/dev/null <"$TLS_DIR/server.crt" || true)
  out=$(cd / && env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TECHTEMP_CONFIG="$SERVER_CONF" TECHTEMP_DATA_DIR="$VAR_DIR" "$exe" tls 2>&1) ||
    die "the local CA and certificate could not be made: $out" "see the message; openssl must be installed (sudo apt-get install openssl)"
  after=$(sha256sum <"$TLS_DIR/server.crt")
  chown -R "$(numeric_owner "$SERVICE_USER:$SERVICE_USER")" "$TLS_DIR"
  CA_FINGERPRINT=$(printf '%s\n' "$out" | sed -n 's/^  CA SHA-256 *//p')
  if [ "$before" != "$after" ]; then
    CHANGES=$((CHANGES + 1))
    ROLE_CHANGED=1
    # sed reads it all: head would exit after two lines, and under pipefail the printf it cut off (SIGPIPE, 141) fails the install.
    printf '%s\n' "$out" | sed -n '1,2p'
  fi
}

# A one-time link to create the owner account (techtemp-server setup-link), when
# no owner exists yet; nothing when one does or the server cannot make one.
fetch_setup_link() {
  live && [ "$DRY_RUN" = 0 ] || return 0
  local out run=()
  if [ -z "$ROOT" ] && command -v runuser >/dev/null; then run=(runuser -u "$SERVICE_USER" --); fi
  out=$(cd / && "${run[@]}" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TECHTEMP_CONFIG="$SERVER_CONF" TECHTEMP_DATA_DIR="$VAR_DIR" \
    "$OPT_DIR/techtemp-server" setup-link 2>/dev/null) || return 0
  SETUP_LINK=$(printf '%s\n' "$out" | grep -Eo 'https?://[^ ]*setup[^ ]*' | head -n 1 || true)
}

# The hardware watchdog, without the internet (the Pis need none): the kernel
# driver and the dtparam, then whoever feeds it. With the watchdog package
# already there, as the earlier deployment set it up: the daemon with exactly
# `key = value` lines (watchdog 5.16 ignores space-aligned ones), and a sensor
# also reboots when its gateway stops answering for 10 minutes. Without it,
# systemd itself feeds the watchdog (RuntimeWatchdogSec=, no package needed);
# only one of them may hold /dev/watchdog.
setup_watchdog() {
  step "hardware watchdog"
  if [ ! -e "$ROOT/dev/watchdog" ]; then act_live modprobe bcm2835_wdt || warn "modprobe bcm2835_wdt failed (not a Raspberry Pi?)"; fi
  if [ -n "$BOOT_CONFIG" ] && ! grep -qE '^dtparam=watchdog=on' "$BOOT_CONFIG"; then
    put_output "$BOOT_CONFIG" "$(stat -c '%a' "$BOOT_CONFIG")" root:root with_line "$BOOT_CONFIG" dtparam=watchdog=on
  fi
  local daemon_unit=""
  for daemon_unit in "$ROOT/lib/systemd/system/watchdog.service" "$ROOT/usr/lib/systemd/system/watchdog.service" ""; do
    if [ -n "$daemon_unit" ] && [ -f "$daemon_unit" ]; then break; fi
  done
  if [ -z "$daemon_unit" ]; then
    put_output "$SYSTEMD_WATCHDOG_CONF" 644 root:root render_systemd_watchdog_conf
    if [ "$FILE_CHANGED" = 1 ]; then
      say "systemd feeds the hardware watchdog (${SYSTEMD_WATCHDOG_CONF#"$ROOT"}); the watchdog package is not needed"
      if [ "$COMMAND" = sensor ]; then
        say "  (the earlier deployment's reboot when the gateway stops answering needs the watchdog package: sudo apt-get install watchdog, then run install.sh --watchdog again)"
      fi
      act_live systemctl daemon-reexec
    fi
    return 0
  fi
  # The daemon holds /dev/watchdog: systemd must not open it too.
  if [ -f "$SYSTEMD_WATCHDOG_CONF" ]; then
    remove_path "$SYSTEMD_WATCHDOG_CONF"
    act_live systemctl daemon-reexec
  fi
  local gateway=""
  if [ "$COMMAND" = sensor ]; then
    gateway=$(ip route show default 2>/dev/null | awk '/^default/ { print $3; exit }')
    if [ -z "$gateway" ]; then warn "no default gateway: the watchdog will not ping"; fi
  fi
  put_output "$WATCHDOG_CONF" 644 root:root render_watchdog_conf "$gateway"
  if [ "$FILE_CHANGED" = 1 ]; then
    if [ -z "$ROOT" ]; then
      act systemctl enable watchdog
    else
      act systemctl --root="$ROOT" enable watchdog.service
    fi
    act_live systemctl stop watchdog wd_keepalive || true
    if live && [ "$DRY_RUN" = 0 ]; then sleep 1; fi
    act_live systemctl start watchdog
  fi
}

# systemd's own watchdog settings: the hardware watchdog reboots the Pi when
# systemd stops answering for 15 s (the bcm2835 watchdog allows at most 15 s),
# and a reboot that hangs is forced after 2 minutes.
render_systemd_watchdog_conf() {
  printf '# Written by TechTemp install.sh --watchdog: systemd feeds the hardware watchdog.\n'
  printf '[Manager]\nRuntimeWatchdogSec=15s\nRebootWatchdogSec=2min\n'
}

# /etc/watchdog.conf; `ping` (the sensor's gateway, never the server) reboots a Pi whose network is gone.
render_watchdog_conf() {
  printf '# Written by TechTemp install.sh --watchdog: exactly "key = value" (watchdog ignores aligned lines).\n'
  printf 'watchdog-device = /dev/watchdog\ninterval = 10\nrealtime = yes\npriority = 1\n'
  if [ -n "$1" ]; then printf 'ping = %s\nretry-timeout = 600\n' "$1"; fi
}

# A file's text with one more line.
with_line() {
  cat "$1"
  printf '%s\n' "$2"
}

# ---------------------------------------------------------------- commands

host_address() { hostname -I 2>/dev/null | awk '{ print $1 }' || true; }

# This Pi's host name (the tree's /etc/hostname with --root).
host_name() {
  if [ -n "$ROOT" ] && [ -s "$ROOT/etc/hostname" ]; then head -n 1 "$ROOT/etc/hostname"; else hostname 2>/dev/null || true; fi
}

# How sensors should reach this server, in SENSORS_REACH (what --server gets) and
# SENSORS_REACH_WHY: its mDNS name NAME.local when that resolves here (it survives
# DHCP giving the server another address), else its address.
server_reach() {
  local name address
  name=$(host_name)
  address=$(host_address)
  address=${address:-$name}
  if [ -n "$name" ] && [ "$name" != localhost ] && resolves "$name.local"; then
    SENSORS_REACH="$name.local"
    SENSORS_REACH_WHY="by name (mDNS): it follows this Pi when DHCP gives it another address; --server $address also works"
  else
    SENSORS_REACH=$address
    SENSORS_REACH_WHY="by address: ${name:-this Pi}.local does not resolve here (install avahi-daemon and libnss-mdns for a name that survives DHCP, or give this Pi a fixed address)"
  fi
}

do_install() {
  local role=$COMMAND changes_before=$CHANGES
  DIE_CODE=8
  resolve_bundle
  step "TechTemp $BUNDLE_VERSION (linux-$BUNDLE_ARCH) from $BUNDLE_DIR: $role"
  [ -x "$BUNDLE_DIR/$(role_executables)" ] || die "this bundle has no $(role_executables)" "use a bundle for the $role role (bun run build)"
  decide_image
  DIE_CODE=3
  if [ "$IMAGE" = 1 ]; then
    step "preparing an image for another machine (linux-$BUNDLE_ARCH): this one is not probed"
    check_image
  else
    step "checking this machine"
    check_arch_or_die
  fi
  if [ "$role" = server ]; then resolve_server_settings; else resolve_sensor_settings; fi
  run_checks
  if [ "$role" = sensor ]; then
    DEVICE_UID=${OPT_DEVICE_UID:-$(ini_get "$DEVICE_CONF" device device_uid)}
    if [ -z "$DEVICE_UID" ] && [ "$IMAGE" = 1 ]; then
      say "device uid: derived from the Pi's own MAC address at its first start (none in device.conf)"
    elif [ -z "$DEVICE_UID" ]; then
      DEVICE_UID=$(sensor_cmd uid) || die "cannot work out the device uid: $DEVICE_UID" "give one with --device-uid aht20-xxxxxx"
    fi
    if [ -n "$DEVICE_UID" ] || [ "$IMAGE" = 0 ]; then
      valid_id "$DEVICE_UID" || die "the device uid '$DEVICE_UID' is not valid" "give one with --device-uid aht20-xxxxxx"
    fi
  fi

  step "installing"
  DIE_CODE=6
  ensure_user
  ensure_dirs
  if [ "$role" = sensor ]; then
    DIE_CODE=7
    enroll_device
    DIE_CODE=6
  fi
  install_files "$role"
  if [ "$role" = server ]; then ensure_server_tls; fi
  start_role "$role"
  if [ "$role" = server ]; then fetch_setup_link; fi
  if [ "$WATCHDOG" = 1 ]; then setup_watchdog; fi
  summary "$role" $((CHANGES - changes_before))
}

summary() {
  local role=$1 changed=$2 host
  host=$(host_address)
  host=${host:-$(hostname 2>/dev/null || echo localhost)}
  say ""
  if [ "$DRY_RUN" = 1 ]; then
    say "dry run: $changed change(s) listed above, none made"
  elif [ "$changed" = 0 ]; then
    say "no change: TechTemp $BUNDLE_VERSION $role is installed as asked"
  fi
  if [ "$role" = server ]; then
    server_reach
    local sensor_cmd="sudo ./install.sh sensor --server $SENSORS_REACH --enroll TOKEN --room NAME"
    say "TechTemp server $BUNDLE_VERSION"
    say "  web pages  http://$host:$HTTP_PORT/"
    say "  API        http://$host:$HTTP_PORT/api/v1/devices"
    say "  MQTT       $host:$MQTT_PORT"
    if [ "$SERVER_TLS" = 1 ]; then
      say "  HTTPS      https://$host:$HTTPS_PORT/   MQTT over TLS $host:$MQTTS_PORT"
      if [ -f "$TLS_DIR/ca.crt" ]; then
        CA_FINGERPRINT=${CA_FINGERPRINT:-$(openssl x509 -in "$TLS_DIR/ca.crt" -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//')}
        say "  local CA   ${TLS_DIR#"$ROOT"}/ca.crt   SHA-256 $CA_FINGERPRINT"
        sensor_cmd+=" --tls --ca-fingerprint $CA_FINGERPRINT"
      fi
      if [ "$HTTPS_PORT" != 8443 ]; then sensor_cmd+=" --https-port $HTTPS_PORT"; fi
      if [ "$MQTTS_PORT" != 8883 ]; then sensor_cmd+=" --mqtts-port $MQTTS_PORT"; fi
    fi
    if [ "$HTTP_PORT" != 3000 ]; then sensor_cmd+=" --http-port $HTTP_PORT"; fi
    if [ "$MQTT_PORT" != 1883 ]; then sensor_cmd+=" --mqtt-port $MQTT_PORT"; fi
    say "  config     ${SERVER_CONF#"$ROOT"}   data ${VAR_DIR#"$ROOT"}"
    if [ -n "$SETUP_LINK" ]; then say "  setup      $SETUP_LINK   (create the owner account; the link works once, for 24 h)"; fi
    say "  sensors:   $sensor_cmd"
    say "             (reach this server $SENSORS_REACH_WHY)"
    say "             (TOKEN: sudo -u techtemp /opt/techtemp/techtemp-server enroll-token, or the web pages)"
  else
    local api_url="http://$SERVER_HOST:$SERVER_HTTP_PORT/" mqtt_url="mqtt://$SERVER_HOST:$SERVER_MQTT_PORT"
    if [ "$SENSOR_TLS" = 1 ]; then api_url="https://$SERVER_HOST:$SERVER_HTTPS_PORT/" mqtt_url="mqtts://$SERVER_HOST:$SERVER_MQTT_PORT"; fi
    say "TechTemp sensor $BUNDLE_VERSION"
    local uid_line=$DEVICE_UID
    if [ -z "$uid_line" ]; then uid_line="(derived from the Pi's MAC address at its first start)"; fi
    say "  device     $uid_line"
    say "  room       ${SENSOR_ROOM:-(unplaced: place it in the web pages)}"
    say "  server     $mqtt_url   $api_url"
    if [[ $SERVER_HOST =~ ^[0-9.]+$|: ]]; then
      say "             (by address: if DHCP moves the server, run install.sh sensor --server NEW again; its NAME.local survives that)"
    else
      say "             (by name: it follows the server when its address changes)"
    fi
    say "  MQTT login $(ini_get "$DEVICE_CONF" mqtt username | sed 's/^$/(none: anonymous)/')"
    say "  config     ${DEVICE_CONF#"$ROOT"}"
  fi
  say "  service    systemctl status $(unit_of "$role")   journalctl -u $(unit_of "$role")"
}

# The database backups --purge would delete: the server's (db-backups/, backup_dir's default)
# and install.sh's own (backups/), one path a line, newest first.
purge_backup_files() {
  local dir
  for dir in "$VAR_DIR/db-backups" "$BACKUP_DIR"; do
    [ -d "$dir" ] || continue
    find "$dir" -type f -printf '%T@ %p\n'
  done | sort -rn | cut -d' ' -f2-
}

# Before --purge deletes /var/lib/techtemp: its database backups go only when a person says so.
# On a terminal, lists them and asks; without one (CI, ssh without -t), refuses with exit 2
# unless --delete-backups confirms. Nothing has been removed when it refuses.
confirm_purge_backups() {
  local files=() f count size newest answer
  while IFS= read -r f; do [ -n "$f" ] && files+=("$f"); done < <(purge_backup_files)
  count=${#files[@]}
  [ "$count" -gt 0 ] || return 0
  size=$(du -ch "${files[@]}" 2>/dev/null | tail -n 1 | cut -f1)
  newest=${files[0]#"$ROOT"}
  local what="$count database backup(s) in ${VAR_DIR#"$ROOT"} (db-backups/, backups/), ${size:-?} in all, the newest $newest"
  if [ "$DELETE_BACKUPS" = 1 ]; then
    say "--purge --delete-backups: deleting $what"
    return 0
  fi
  if [ "$DRY_RUN" = 1 ]; then
    say "would ask before deleting $what (--delete-backups confirms)"
    return 0
  fi
  if [ -t 0 ]; then
    say "uninstall --purge deletes $what:"
    for f in "${files[@]}"; do say "  ${f#"$ROOT"}"; done
    printf 'delete them? [y/N] '
    answer=""
    read -r answer || true
    case $answer in
      y | Y | yes | YES | Yes) return 0 ;;
      *) ;;
    esac
    die_as 2 "uninstall --purge not confirmed: nothing was removed" \
      "copy the backups elsewhere first (e.g. sudo cp -a ${VAR_DIR#"$ROOT"}/db-backups ${VAR_DIR#"$ROOT"}/backups /root/), or run uninstall without --purge to keep them"
  fi
  die_as 2 "uninstall --purge would delete $what, and there is no terminal to ask: nothing was removed" \
    "copy them elsewhere first (e.g. sudo cp -a ${VAR_DIR#"$ROOT"}/db-backups ${VAR_DIR#"$ROOT"}/backups /root/), or add --delete-backups to confirm"
}

# --unregister: the server withdraws this sensor's MQTT credentials (DELETE /api/v1/devices/UID/mqtt-password),
# keeping the device and its readings. Runs before anything is removed (device.conf names the server and the
# uid). A refusal or an unreachable server does not stop the uninstall: it is recorded in UNREGISTER_FAILED
# and do_uninstall ends with exit 7 once this machine is clean, so that a script sees the secret still works.
unregister_sensor() {
  local uid res status body tls=()
  uid=$(ini_get "$DEVICE_CONF" device device_uid)
  if [ -z "$uid" ]; then
    die_as 3 "--unregister: this machine has no sensor (no device_uid in ${DEVICE_CONF#"$ROOT"}): nothing was changed" \
      "run uninstall without --unregister; to withdraw a sensor's credentials from elsewhere: curl -X DELETE -H 'authorization: Bearer TOKEN' http://SERVER:3000/api/v1/devices/UID/mqtt-password"
  fi
  resolve_sensor_settings
  local url="$API_BASE/api/v1/devices/$uid/mqtt-password"
  local by_hand="curl -X DELETE -H 'authorization: Bearer TOKEN' $url (a write API token: techtemp-server token create NAME --scope write on the server)"
  UNREGISTER_REMEDY="from any machine that reaches the server: $by_hand"
  if [ "$DRY_RUN" = 1 ]; then
    say "would ask the server to withdraw $uid's MQTT credentials: DELETE $url"
    return 0
  fi
  step "asking the server to withdraw $uid's MQTT credentials (DELETE $url)"
  if [ -f "$CA_FILE" ]; then tls=(--cacert "$CA_FILE"); fi
  res=$(http DELETE "$url" "" "${tls[@]}")
  status=${res%% *}
  body=${res#* }
  case $status in
    200) say "the server withdrew $uid's MQTT credentials: nothing can publish as it any more; the device and its readings stay on the server" ;;
    401 | 403)
      UNREGISTER_FAILED="the server refused to withdraw $uid's MQTT credentials (HTTP $status: ${body:0:200})"
      UNREGISTER_REMEDY="give a write API token: sudo TECHTEMP_API_TOKEN=tt_... install.sh uninstall --unregister, or from any machine: $by_hand"
      ;;
    404)
      # "device \"UID\" not found" from a server that knows the route; "no route …" from an older one.
      if [[ $body == *"device \\\"$uid\\\" not found"* ]]; then
        say "the server has no device $uid (deleted already?): no MQTT credentials to withdraw"
      else
        UNREGISTER_FAILED="the server at $API_BASE cannot withdraw MQTT credentials (HTTP 404: an older TechTemp?)"
        UNREGISTER_REMEDY="upgrade the server, then: $by_hand; or delete the device in its web pages (its readings go too)"
      fi
      ;;
    000) UNREGISTER_FAILED="cannot reach the server at $API_BASE to withdraw $uid's MQTT credentials" ;;
    *) UNREGISTER_FAILED="the server refused to withdraw $uid's MQTT credentials (HTTP $status: ${body:0:200})" ;;
  esac
  if [ -n "$UNREGISTER_FAILED" ]; then warn "$UNREGISTER_FAILED; uninstalling this machine all the same"; fi
}

do_uninstall() {
  if [ "$DRY_RUN" = 0 ] && [ "$(id -u)" != 0 ]; then die_as 3 "install.sh must run as root" "sudo ./install.sh uninstall"; fi
  local changes_before=$CHANGES role unit
  if [ "$PURGE" = 1 ]; then confirm_purge_backups; fi
  if [ "$UNREGISTER" = 1 ]; then unregister_sensor; fi
  step "uninstalling TechTemp$([ "$PURGE" = 1 ] && echo ' (purge: config, data and the techtemp user too)')"
  for role in server sensor; do
    unit=$(unit_of "$role")
    [ -f "$UNIT_DIR/$unit" ] || continue
    if [ -n "$ROOT" ]; then
      act_live systemctl stop "$unit" || true
      act systemctl --root="$ROOT" disable "$unit"
    else
      act systemctl disable --now "$unit"
    fi
    remove_path "$UNIT_DIR/$unit"
  done
  if [ "$CHANGES" -gt "$changes_before" ]; then act_live systemctl daemon-reload; fi
  remove_path "$OPT_DIR"
  if [ "$PURGE" = 1 ]; then
    remove_path "$ETC_DIR"
    remove_path "$VAR_DIR"
    if [ -n "$(uid_of "$SERVICE_USER")" ]; then
      if [ -n "$ROOT" ]; then act userdel --root "$ROOT" "$SERVICE_USER"; else act userdel "$SERVICE_USER"; fi
    fi
    if [ -n "$(gid_of "$SERVICE_USER")" ]; then
      if [ -n "$ROOT" ]; then act groupdel --root "$ROOT" "$SERVICE_USER"; else act groupdel "$SERVICE_USER"; fi
    fi
  fi
  say ""
  if [ "$CHANGES" = "$changes_before" ] && [ "$UNREGISTER" = 1 ]; then
    say "nothing else to remove: TechTemp is not installed here"
  elif [ "$CHANGES" = "$changes_before" ]; then
    say "no change: TechTemp is not installed"
  elif [ "$DRY_RUN" = 1 ]; then
    say "dry run: $((CHANGES - changes_before)) change(s) listed above, none made"
  elif [ "$PURGE" = 1 ]; then
    say "TechTemp removed with its config, data and user"
  else
    say "TechTemp removed; kept ${ETC_DIR#"$ROOT"} (config), ${VAR_DIR#"$ROOT"} (data and backups) and the techtemp user: uninstall --purge removes them"
  fi
  say "left as they were: I2C and the hardware watchdog settings"
  if [ -n "$UNREGISTER_FAILED" ]; then
    die_as 7 "$UNREGISTER_FAILED: TechTemp was removed from this machine all the same, but its MQTT credentials still work on the server" "$UNREGISTER_REMEDY"
  fi
}

do_status() {
  local role unit version problems=0 res
  version=$(bundle_field "$OPT_DIR" version)
  if [ -z "$version" ]; then
    say "TechTemp is not installed in ${OPT_DIR#"$ROOT"}"
    return 1
  fi
  say "TechTemp $version (linux-$(bundle_field "$OPT_DIR" arch)) in ${OPT_DIR#"$ROOT"}"
  for role in server sensor; do
    unit=$(unit_of "$role")
    if [ ! -f "$UNIT_DIR/$unit" ]; then continue; fi
    local enabled active
    enabled=$(systemctl_files is-enabled "$unit" 2>/dev/null || true)
    if live; then active=$(systemctl is-active "$unit" 2>/dev/null || true); else active="not checked (--root)"; fi
    say "$role: ${enabled:-unknown}, ${active:-unknown}"
    if [ "$role" = server ]; then
      resolve_server_settings
      say "  config ${SERVER_CONF#"$ROOT"}: http_port $HTTP_PORT, mqtt_port $MQTT_PORT"
      if live; then
        res=$(server_health)
        if [ "${res%% *}" = 000 ]; then say "  health: not answering on port $HTTP_PORT"; else say "  health: ${res#* }"; fi
        [ "${res%% *}" = 200 ] || problems=$((problems + 1))
      fi
      if [ -f "$DB_FILE" ]; then say "  database ${DB_FILE#"$ROOT"}: $(du -h "$DB_FILE" | cut -f1)"; fi
      if [ -d "$BACKUP_DIR" ]; then say "  backups: $(find "$BACKUP_DIR" -name 'techtemp-*.db' | wc -l) in ${BACKUP_DIR#"$ROOT"}"; fi
    else
      SERVER_HOST=$(ini_get "$DEVICE_CONF" mqtt broker_host)
      DEVICE_UID=$(ini_get "$DEVICE_CONF" device device_uid)
      local scheme=mqtt
      if [ "$(ini_get "$DEVICE_CONF" mqtt tls)" = true ]; then scheme=mqtts; fi
      say "  device $DEVICE_UID -> $scheme://$SERVER_HOST:$(ini_get "$DEVICE_CONF" mqtt broker_port), room $(ini_get "$INSTALL_CONF" "" room)"
      say "  MQTT login: $(ini_get "$DEVICE_CONF" mqtt username | sed 's/^$/none (anonymous)/')"
      if live; then say "  $(sensor_last_stored)"; fi
    fi
    if live && [ "$active" != active ]; then problems=$((problems + 1)); fi
  done
  if [ "$problems" -gt 0 ]; then return 1; fi
}

# ---------------------------------------------------------------- deploy (from a laptop)

# install.sh deploy|status|inspect over SSH: one host (ROLE USER@HOST [key=value…])
# or an inventory file of such lines. Non-interactive: keys only (BatchMode),
# `sudo -n` where the login is not root.
parse_fleet_args() {
  FLEET_CMD=$1
  shift
  # What the host runs first: $R runs a command as root, nothing for root, else sudo -n (never a prompt).
  # shellcheck disable=SC2016 # expanded on the host
  REMOTE_ROOT='if [ "$(id -u)" = 0 ]; then R=; else R="sudo -n"; fi'
  FLEET_INVENTORY=""
  FLEET_HOSTS=()
  FLEET_JOBS=4
  FLEET_DIST=""
  FLEET_SSH_CONFIG=""
  FLEET_WAIT=""
  local single=()
  while [ $# -gt 0 ]; do
    case $1 in
      --inventory) need_value "$@"; FLEET_INVENTORY=$2; shift ;;
      --jobs) need_value "$@"; FLEET_JOBS=$2; shift ;;
      --dist) need_value "$@"; FLEET_DIST=$2; shift ;;
      --ssh-config) need_value "$@"; FLEET_SSH_CONFIG=$2; shift ;;
      --wait) need_value "$@"; FLEET_WAIT=$2; shift ;;
      -h | --help) usage; exit 0 ;;
      -*) die "unknown argument: $1" "see install.sh --help (deploy)" ;;
      *) single+=("$1") ;;
    esac
    shift
  done
  if ! [[ $FLEET_JOBS =~ ^[0-9]+$ ]] || [ "$FLEET_JOBS" -lt 1 ] || [ "$FLEET_JOBS" -gt 32 ]; then
    die "--jobs $FLEET_JOBS is not a number from 1 to 32" "e.g. --jobs 4"
  fi
  if [ ${#single[@]} -gt 0 ] && [ -z "$FLEET_INVENTORY" ] && [ ${#single[@]} -eq 1 ] && [ -f "${single[0]}" ]; then
    FLEET_INVENTORY=${single[0]}
    single=()
  fi
  if [ -n "$FLEET_INVENTORY" ]; then
    [ ${#single[@]} -eq 0 ] || die "give an inventory or one host, not both" "install.sh $FLEET_CMD --inventory FILE"
    [ -r "$FLEET_INVENTORY" ] || die "cannot read the inventory $FLEET_INVENTORY" "one host a line: server pi@192.168.1.10, sensor pi@salon.local room=Salon"
    local line n=0
    while IFS= read -r line || [ -n "$line" ]; do
      n=$((n + 1))
      line=${line%%#*}
      [[ $line =~ [^[:space:]] ]] || continue
      check_fleet_line "$line" "$FLEET_INVENTORY line $n"
      FLEET_HOSTS+=("$line")
    done <"$FLEET_INVENTORY"
  else
    [ ${#single[@]} -ge 2 ] || die "install.sh $FLEET_CMD needs an inventory or ROLE USER@HOST" \
      "install.sh $FLEET_CMD --inventory hosts.txt, or install.sh $FLEET_CMD sensor pi@salon.local room=Salon server=maison.local"
    check_fleet_line "${single[*]}" "the command line"
    FLEET_HOSTS+=("${single[*]}")
  fi
  [ ${#FLEET_HOSTS[@]} -gt 0 ] || die "the inventory $FLEET_INVENTORY names no host" "one host a line: server pi@192.168.1.10"
}

# ROLE USER@HOST [key=value | flag]…: checked here, so that nothing unsafe reaches a remote shell.
check_fleet_line() {
  local words word where=$2
  read -r -a words <<<"$1"
  case ${words[0]} in server | sensor) ;; *) die "$where: the role must be server or sensor, not '${words[0]}'" "e.g. sensor pi@salon.local room=Salon" ;; esac
  [[ ${words[1]:-} =~ ^([A-Za-z0-9._-]+@)?[A-Za-z0-9.:_-]+$ ]] || die "$where: '${words[1]:-}' is not USER@HOST" "e.g. pi@192.168.1.10"
  for word in "${words[@]:2}"; do
    [[ $word =~ ^[a-z][a-z-]*(=[A-Za-z0-9._:/@+~-]+)?$ ]] ||
      die "$where: '$word' is not key=value (letters, digits and ._:/@+~- only)" "e.g. room=Salon interval=300 simulated"
  done
}

# The options install.sh gets on the host from the line's key=value words (ssh-port, cache: deploy's own).
fleet_install_args() {
  local words word key
  read -r -a words <<<"$1"
  for word in "${words[@]:2}"; do
    key=${word%%=*}
    case $key in ssh-port | cache) continue ;; *) ;; esac
    if [[ $word == *=* ]]; then printf -- '--%s\n%s\n' "$key" "${word#*=}"; else printf -- '--%s\n' "$key"; fi
  done
}

# A key's value on a line ("" when absent).
fleet_key() {
  local words word
  read -r -a words <<<"$1"
  for word in "${words[@]:2}"; do
    if [ "${word%%=*}" = "$2" ] && [[ $word == *=* ]]; then printf '%s' "${word#*=}"; fi
  done
}

# ssh to the host of a line, non-interactive; the remote command is one quoted string.
fleet_ssh() {
  local line=$1 words opts=(-o BatchMode=yes -o ConnectTimeout=10 -o ServerAliveInterval=15) port
  shift
  read -r -a words <<<"$line"
  if [ -n "$FLEET_SSH_CONFIG" ]; then opts+=(-F "$FLEET_SSH_CONFIG"); fi
  port=$(fleet_key "$line" ssh-port)
  if [ -n "$port" ]; then opts+=(-p "$port"); fi
  # shellcheck disable=SC2029 # the command is built for the host: every value in it was checked by check_fleet_line
  ssh "${opts[@]}" "${words[1]}" "$@"
}


# Which dist/ holds the role tarballs: --dist, else dist/ of a source checkout, else beside install.sh.
fleet_dist() {
  local d
  for d in "$FLEET_DIST" "$SCRIPT_DIR/dist" "$SCRIPT_DIR/.." "$SCRIPT_DIR"; do
    if [ -n "$d" ] && [ -f "$d/SHA256SUMS" ]; then (cd "$d" && pwd); return 0; fi
  done
  die "no bundles with SHA256SUMS in ${FLEET_DIST:-$SCRIPT_DIR/dist}" "build them first: bun run build (or give --dist DIR)"
}

# One host: probe, copy the role's tarball unless it is there already, check it, install; a row in $2.
deploy_host() {
  local line=$1 row=$2 log=$3 role host t0=$SECONDS probe arch version before after sum tarball want bytes=0 code=0 result
  read -r role host _ <<<"$line"
  local root cache
  root=$(fleet_key "$line" root)
  cache=$(fleet_key "$line" cache)
  cache=${cache:-/var/tmp/techtemp-deploy}
  version=$(sed -n '1s/.*-\([0-9][0-9.]*\)-linux-.*/\1/p' <<<"$(grep -o "techtemp-$role-[^ ]*\.tar\.gz" "$DIST/SHA256SUMS" | head -n 1)")
  fleet_row() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$host" "$role" "${before:-none} -> ${after:-?}" "$1" "$((SECONDS - t0)) s" "$bytes" >"$row"; }
  # shellcheck disable=SC2016 # expanded on the host
  if ! probe=$(fleet_ssh "$line" "$REMOTE_ROOT"'; uname -m; sed -n "s/^version=//p" '"${root}"'/opt/techtemp/BUNDLE 2>/dev/null | head -n 1 | sed "s/^/version=/"; if [ -n "$R" ]; then $R true 2>&1 | head -n 1 | sed "s/^/sudo: /"; fi; sha256sum '"$cache"'/*.tar.gz 2>/dev/null || true' 2>"$log.err"); then
    printf 'unreachable: %s\n' "$(tail -n 1 "$log.err")" >>"$log"
    fleet_row "unreachable: $(tail -n 1 "$log.err")"
    return 0
  fi
  if [[ $probe == *"sudo: "* ]]; then
    printf '%s\n' "$probe" | sed -n 's/^sudo: //p' >>"$log"
    fleet_row "sudo asks for a password: $(printf '%s\n' "$probe" | sed -n 's/^sudo: //p' | sed -n 1p) (allow NOPASSWD for this user, or log in as root)"
    return 0
  fi
  before=$(printf '%s\n' "$probe" | sed -n 's/^version=//p')
  case $(printf '%s\n' "$probe" | sed -n 1p) in
    aarch64 | arm64) arch=arm64 ;;
    x86_64 | amd64) arch=x64 ;;
    *) arch=unsupported ;;
  esac
  tarball="techtemp-$role-$version-linux-$arch.tar.gz"
  want=$(awk -v f="$tarball" '$2 == f { print $1 }' "$DIST/SHA256SUMS")
  if [ -z "$want" ] || [ ! -f "$DIST/$tarball" ]; then
    fleet_row "failed: no $tarball in $DIST (bun run build)"
    return 0
  fi
  sum=$(sha256_of "$DIST/$tarball")
  if [ "$sum" != "$want" ]; then
    fleet_row "failed: $DIST/$tarball does not match SHA256SUMS"
    return 0
  fi
  if printf '%s\n' "$probe" | grep -q "^$want  $cache/$tarball\$"; then
    printf 'the same %s is on the host already: not copied\n' "$tarball" >>"$log"
  else
    bytes=$(stat -c %s "$DIST/$tarball")
    if ! fleet_ssh "$line" "mkdir -p '$cache' && cat >'$cache/$tarball.part' && mv -f '$cache/$tarball.part' '$cache/$tarball'" <"$DIST/$tarball" 2>>"$log"; then
      fleet_row "failed: the copy to $cache did not finish (see the log)"
      return 0
    fi
  fi
  local args=() a
  while IFS= read -r a; do args+=("$(printf '%q' "$a")"); done < <(fleet_install_args "$line")
  if [ -n "$FLEET_WAIT" ]; then args+=(--wait "$FLEET_WAIT"); fi
  # On the host: the tarball against its line of SHA256SUMS, unpacked beside it, then its own install.sh (which checks its files).
  fleet_ssh "$line" "$REMOTE_ROOT; set -e; cd '$cache'; printf '%s  %s\n' '$want' '$tarball' | sha256sum -c --quiet -;
    rm -rf 'unpacked-$role'; mkdir 'unpacked-$role'; tar -xzf '$tarball' -C 'unpacked-$role';
    \$R 'unpacked-$role/${tarball%.tar.gz}/install.sh' $role ${args[*]}" >>"$log" 2>&1 || code=$?
  after=$(fleet_ssh "$line" "sed -n 's/^version=//p' '${root}/opt/techtemp/BUNDLE' 2>/dev/null | head -n 1" 2>/dev/null || true)
  case $code in
    0) if grep -q "^no change: " "$log"; then result="ok (no change)"; else result=ok; fi ;;
    255) result="failed: the connection was lost ($(tail -n 1 "$log"))" ;;
    *) result="failed: install.sh exit $code ($(grep -m 1 '^error: ' "$log" | cut -c 8- || true))" ;;
  esac
  fleet_row "$result"
}

# deploy / status / inspect over the hosts, at most FLEET_JOBS at a time; one table, then the logs of the failed.
do_fleet() {
  local i running=0 failed=0 line
  if [ "$FLEET_CMD" = deploy ]; then DIST=$(fleet_dist); fi
  mkdir -p "$WORK/fleet"
  for i in "${!FLEET_HOSTS[@]}"; do
    line=${FLEET_HOSTS[$i]}
    if [ "$FLEET_CMD" = deploy ]; then
      deploy_host "$line" "$WORK/fleet/$i.row" "$WORK/fleet/$i.log" &
    else
      fleet_report "$line" "$WORK/fleet/$i.row" "$WORK/fleet/$i.log" &
    fi
    running=$((running + 1))
    if [ "$running" -ge "$FLEET_JOBS" ]; then
      wait -n || true
      running=$((running - 1))
    fi
  done
  wait || true
  if [ "$FLEET_CMD" = deploy ]; then
    { printf 'HOST\tROLE\tVERSION\tRESULT\tTIME\tCOPIED (bytes)\n'; for i in "${!FLEET_HOSTS[@]}"; do cat "$WORK/fleet/$i.row"; done; } | column -t -s $'\t'
  else
    for i in "${!FLEET_HOSTS[@]}"; do
      say "==== $(cut -f1 "$WORK/fleet/$i.row") ($(cut -f2 "$WORK/fleet/$i.row")): $(cut -f4 "$WORK/fleet/$i.row")"
      cat "$WORK/fleet/$i.log"
    done
  fi
  for i in "${!FLEET_HOSTS[@]}"; do
    if ! cut -f4 "$WORK/fleet/$i.row" | grep -qE '^ok'; then
      if [ "$FLEET_CMD" != deploy ]; then
        failed=$((failed + 1))
        continue
      fi
      failed=$((failed + 1))
      say ""
      say "---- $(cut -f1 "$WORK/fleet/$i.row") ($(cut -f4 "$WORK/fleet/$i.row")): its log"
      tail -n 40 "$WORK/fleet/$i.log" 2>/dev/null || true
    fi
  done
  if [ "$failed" -gt 0 ]; then die_as 9 "$failed of ${#FLEET_HOSTS[@]} host(s) failed (their logs above); the others are done" "fix what each log says, then run the same command again: hosts already done change nothing"; fi
}

# status (install.sh status on the host) or inspect (the server's inspect) of one host: its row and its output.
fleet_report() {
  local line=$1 row=$2 log=$3 role host root cmd code=0 result=ok
  read -r role host _ <<<"$line"
  root=$(fleet_key "$line" root)
  if [ "$FLEET_CMD" = inspect ] && [ "$role" = server ]; then
    cmd="\$R env TECHTEMP_CONFIG=$root/etc/techtemp/server.conf TECHTEMP_DATA_DIR=$root/var/lib/techtemp $root/opt/techtemp/techtemp-server inspect"
  else
    # A sensor has no database: its status (outbox, last reading stored) is what inspect shows of it.
    cmd="\$R $root/opt/techtemp/install.sh status${root:+ --root $root}"
  fi
  fleet_ssh "$line" "$REMOTE_ROOT; $cmd" >"$log" 2>&1 || code=$?
  if [ "$code" = 255 ]; then result="unreachable: $(tail -n 1 "$log")"; elif [ "$code" != 0 ]; then result="problem (exit $code)"; fi
  printf '%s\t%s\t\t%s\t\t\n' "$host" "$role" "$result" >"$row"
}
main() {
  init_globals
  parse_args "$@"
  DIE_CODE=6
  init_paths
  trap on_exit EXIT
  trap 'on_error "$LINENO" "$BASH_COMMAND" "$?"' ERR
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/techtemp-install.XXXXXX")
  start_log
  case $COMMAND in
    fleet) do_fleet ;;
    server | sensor) do_install ;;
    uninstall) do_uninstall ;;
    status) do_status || exit 1 ;;
    *) die_as 2 "internal: unknown command $COMMAND" ;;
  esac
}

main "$@"
