#!/bin/sh
# Builds the Prometheus, Alertmanager and VictoriaMetrics images that
# compose.local.yml and compose.local-longterm.yml swap in, from Debian's
# binaries (the ones newer-debian.sh unpacks into target/debian/bin, first
# on PATH under `make test`), for machines that cannot pull prom/prometheus,
# prom/alertmanager or victoriametrics/victoria-metrics. As in the upstream
# images, promtool sits beside Prometheus and amtool beside Alertmanager:
# docker-compose.yml's config checks run them. Each image is FROM scratch with the
# binary, the shared libraries `ldd` names, and busybox as `wget` for the
# healthchecks in docker-compose.yml (the upstream images are busybox-based
# too). The data directory belongs to the image's user, 65534, or
# Prometheus panics creating queries.active.
#
#   tests/stack/local-images.sh      # tags tinymon-local/prometheus:debian,
#                                     # tinymon-local/alertmanager:debian and
#                                     # tinymon-local/victoriametrics:debian
# Needs: prometheus, promtool, prometheus-alertmanager, amtool and
# victoria-metrics on PATH, and Debian's busybox-static.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
docker=${DOCKER:-docker}

need() {
    command -v "$1" >/dev/null 2>&1 || {
        echo "local-images.sh: $1 is missing; $2" >&2
        exit 1
    }
}
hint="tests/stack/newer-debian.sh, then PATH=target/debian/bin:\$PATH"
need prometheus "$hint"
need promtool "$hint"
need prometheus-alertmanager "$hint"
need amtool "$hint"
need victoria-metrics "$hint"
need busybox "apt-get install busybox-static"
if ldd "$(command -v busybox)" >/dev/null 2>&1; then
    echo "local-images.sh: $(command -v busybox) is dynamically linked; apt-get install busybox-static" >&2
    exit 1
fi

# rootfs DIR BINARY NAME SHARE [TOOL]: copies BINARY to DIR/bin/NAME (and
# TOOL beside it) with their libraries and /usr/share/prometheus/SHARE.
rootfs() {
    mkdir -p "$1/bin"
    cp -L "$2" "$1/bin/$3"
    if [ -n "${5:-}" ]; then cp -L "$5" "$1/bin/"; fi
    for b in "$2" ${5:-}; do ldd "$b"; done |
        awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u |
        while read -r lib; do
            mkdir -p "$1/$(dirname "$lib")"
            cp -L "$lib" "$1/$lib"
        done
    cp "$(command -v busybox)" "$1/bin/wget"
    # Debian keeps templates and web assets apart from the binary, in the
    # package's /usr/share/prometheus (unpacked beside the binary).
    share=$(dirname "$(readlink -f "$2")")/../share/prometheus/$4
    if [ -d "$share" ]; then
        mkdir -p "$1/usr/share/prometheus"
        # (dangling links into libjs-* packages are kept as they are)
        cp -r "$share" "$1/usr/share/prometheus/"
    fi
    # Docker's /etc/hosts and resolv.conf are mounted over these.
    mkdir -p "$1/etc" "$1/tmp"
    touch "$1/etc/hosts" "$1/etc/resolv.conf"
    chmod 1777 "$1/tmp"
}

build() { # build NAME BINARY DOCKERFILE TAG SHARE [TOOL]
    ctx=$(mktemp -d)
    trap 'rm -rf "$ctx"' EXIT
    rootfs "$ctx/rootfs" "$2" "$1" "$5" "${6:-}"
    mkdir "$ctx/data"
    # The Debian package and version, from the directory newer-debian.sh
    # unpacked it into (VictoriaMetrics's Debian build reports no version).
    pkg=$(readlink -f "$2" | sed -n 's|.*/target/debian/root/\([^/]*\)/.*|\1|p')
    "$docker" build -q -f "$here/$3" --label "org.debian.package=${pkg:-unknown}" -t "$4" "$ctx" >/dev/null
    rm -rf "$ctx"
    trap - EXIT
    echo "built $4 from $(readlink -f "$2")"
}

build prometheus "$(command -v prometheus)" prometheus.Dockerfile tinymon-local/prometheus:debian web "$(command -v promtool)"
build alertmanager "$(command -v prometheus-alertmanager)" alertmanager.Dockerfile tinymon-local/alertmanager:debian alertmanager "$(command -v amtool)"
build victoria-metrics "$(command -v victoria-metrics)" victoriametrics.Dockerfile tinymon-local/victoriametrics:debian none
