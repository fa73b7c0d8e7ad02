#!/bin/sh
# Lets systemd see the new or changed lastseend.service. The unit is not
# enabled here: a desktop install needs no server (systemctl enable --now
# lastseend when you want one). On an upgrade a running service restarts on
# the new binary.
set -e
if [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
	if systemctl is-active --quiet lastseend.service; then
		systemctl try-restart lastseend.service || true
	fi
fi
exit 0
