#!/bin/sh
# Forgets the removed unit. The service's data in /var/lib/lastseend (really
# /var/lib/private/lastseend) is kept, even on purge: it is your history.
set -e
if [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
exit 0
