#!/bin/sh
# Stops lastseend.service before its binary goes ("remove" from dpkg, 0 from
# rpm); an upgrade leaves it running until postinstall restarts it.
set -e
case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl stop lastseend.service >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
