#!/bin/sh
# conntrackd-notify.sh -- switch conntrackd on VRRP transitions of a gateway pair (use case 4).
# Called by `director run` as a notify command: $1 = INSTANCE, $2 = instance name,
# $3 = MASTER | BACKUP | FAULT | STOP (also in $HAVIP_STATE). Modelled on the primary-backup.sh
# script shipped with conntrack-tools (FTFW sync mode with an external cache).
#
# Environment: CONNTRACKD (default: conntrackd), CONNTRACKD_CONFIG (default:
# /etc/conntrackd/conntrackd.conf).
set -u
CONNTRACKD=${CONNTRACKD:-conntrackd}
CONF=${CONNTRACKD_CONFIG:-/etc/conntrackd/conntrackd.conf}
STATE=${3:-${HAVIP_STATE:-}}
ct() { "$CONNTRACKD" -C "$CONF" "$@" || logger -t conntrackd-notify "conntrackd $* failed ($?)"; }

case "$STATE" in
  MASTER)
    ct -c   # commit the external cache (the peer's flows) into the kernel table
    ct -f   # flush the internal and external caches
    ct -R   # resync the internal cache with the kernel table
    ct -B   # send a bulk update to the backup
    ;;
  BACKUP)
    ct -t   # shorten kernel conntrack timers: flows now owned by the master expire here
    ct -n   # ask the master for a full resync
    ;;
  FAULT | STOP)
    ct -t
    ;;
  *)
    echo "conntrackd-notify.sh: unknown state '$STATE'" >&2
    exit 2
    ;;
esac
exit 0
