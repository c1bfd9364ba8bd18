#!/bin/sh
# Makes sure a Docker engine answers before the container tests run. As
# root, when `docker info` fails, it starts the dockerd 28.5.2 (with
# containerd 2.1.9) that newer-debian.sh unpacked into target/debian/, with
# bookworm's runc and iptables, and waits up to 30 s for it. An engine that
# already answers is used as it is, and its version is printed. Prints
# what to do instead when it cannot.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=$top/target/debian/bin
log=/var/log/tinymon-dockerd.log
PATH=$bin:$PATH
export PATH

if docker info >/dev/null 2>&1; then
    echo "ensure-docker: using the running Docker Engine $(docker version --format '{{.Server.Version}}')"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "ensure-docker: no Docker engine answers 'docker info'; start one (sudo systemctl start docker, or run make test as root)" >&2
    exit 1
fi
if [ ! -x "$bin/dockerd" ]; then
    "$top/tests/stack/newer-debian.sh"
fi
missing=""
for t in runc:runc iptables:iptables; do
    command -v "${t%%:*}" >/dev/null 2>&1 || missing="$missing ${t##*:}"
done
if [ -n "$missing" ]; then
    echo "ensure-docker: installing Debian's$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
echo "ensure-docker: starting $bin/dockerd (log: $log)"
nohup dockerd >"$log" 2>&1 &
i=0
while [ $i -lt 60 ]; do
    if docker info >/dev/null 2>&1; then
        echo "ensure-docker: Docker Engine $(docker version --format '{{.Server.Version}}') answers after $((i / 2)) s"
        exit 0
    fi
    sleep 0.5
    i=$((i + 1))
done
echo "ensure-docker: dockerd did not answer within 30 s; the end of $log:" >&2
tail -n 20 "$log" >&2
exit 1
