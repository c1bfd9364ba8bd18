#!/bin/sh
# Makes sure a Docker engine answers before the container tests run:
# installs Debian's docker.io when there is no dockerd, starts dockerd when
# `docker info` fails (as root; this is what CI machines need), and waits
# up to 30 s for it. Prints what to do instead when it cannot.
set -eu
log=/var/log/tinymon-dockerd.log

if docker info >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "ensure-docker: no Docker engine answers 'docker info'; start one (sudo systemctl start docker, or run make test as root)" >&2
    exit 1
fi
if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    echo "ensure-docker: installing Debian's docker.io"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
if docker info >/dev/null 2>&1; then
    exit 0
fi
echo "ensure-docker: starting dockerd (log: $log)"
nohup dockerd >"$log" 2>&1 &
i=0
while [ $i -lt 60 ]; do
    if docker info >/dev/null 2>&1; then
        echo "ensure-docker: dockerd answers after $((i / 2)) s"
        exit 0
    fi
    sleep 0.5
    i=$((i + 1))
done
echo "ensure-docker: dockerd did not answer within 30 s; the end of $log:" >&2
tail -n 20 "$log" >&2
exit 1
