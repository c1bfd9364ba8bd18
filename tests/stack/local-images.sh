#!/bin/sh
# Builds the Prometheus, Alertmanager and VictoriaMetrics images that
# compose.local.yml and compose.local-longterm.yml swap in, from Debian's
# binaries, for machines that cannot pull prom/prometheus, prom/alertmanager
# or victoriametrics/victoria-metrics. Each image is FROM scratch with the
# binary, the shared libraries `ldd` names, and busybox as `wget` for the
# healthchecks in docker-compose.yml (the upstream images are busybox-based
# too). The data directory belongs to the image's user, 65534, or
# Prometheus panics creating queries.active.
#
#   tests/stack/local-images.sh      # tags tinymon-local/prometheus:debian,
#                                     # tinymon-local/alertmanager:debian and
#                                     # tinymon-local/victoriametrics:debian
# Needs: Debian's prometheus, prometheus-alertmanager, victoria-metrics and
# busybox-static.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
docker=${DOCKER:-docker}

need() {
    command -v "$1" >/dev/null 2>&1 || {
        echo "local-images.sh: $1 is missing; apt-get install $2" >&2
        exit 1
    }
}
need prometheus prometheus
need prometheus-alertmanager prometheus-alertmanager
need victoria-metrics victoria-metrics
need busybox busybox-static
if ldd "$(command -v busybox)" >/dev/null 2>&1; then
    echo "local-images.sh: $(command -v busybox) is dynamically linked; apt-get install busybox-static" >&2
    exit 1
fi

# rootfs DIR BINARY NAME SHARE: copies BINARY to DIR/bin/NAME with its
# libraries and /usr/share/prometheus/SHARE.
rootfs() {
    mkdir -p "$1/bin"
    cp "$2" "$1/bin/$3"
    ldd "$2" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' |
        while read -r lib; do
            mkdir -p "$1/$(dirname "$lib")"
            cp -L "$lib" "$1/$lib"
        done
    cp "$(command -v busybox)" "$1/bin/wget"
    # Debian keeps templates and web assets apart from the binary.
    if [ -d "/usr/share/prometheus/$4" ]; then
        mkdir -p "$1/usr/share/prometheus"
        cp -r "/usr/share/prometheus/$4" "$1/usr/share/prometheus/"
    fi
    # Docker's /etc/hosts and resolv.conf are mounted over these.
    mkdir -p "$1/etc" "$1/tmp"
    touch "$1/etc/hosts" "$1/etc/resolv.conf"
    chmod 1777 "$1/tmp"
}

build() { # build NAME BINARY DOCKERFILE TAG SHARE
    ctx=$(mktemp -d)
    trap 'rm -rf "$ctx"' EXIT
    rootfs "$ctx/rootfs" "$2" "$1" "$5"
    mkdir "$ctx/data"
    "$docker" build -q -f "$here/$3" -t "$4" "$ctx" >/dev/null
    rm -rf "$ctx"
    trap - EXIT
    pkg=$(dpkg -S "$(readlink -f "$2")" 2>/dev/null | cut -d: -f1)
    echo "built $4 from $2 (Debian $pkg $(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null))"
}

build prometheus "$(command -v prometheus)" prometheus.Dockerfile tinymon-local/prometheus:debian web
build alertmanager "$(command -v prometheus-alertmanager)" alertmanager.Dockerfile tinymon-local/alertmanager:debian alertmanager
build victoria-metrics "$(command -v victoria-metrics)" victoriametrics.Dockerfile tinymon-local/victoriametrics:debian none
