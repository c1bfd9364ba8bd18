#!/bin/sh
# Fetches the stack's tools from Debian's newer suites without upgrading
# this (bookworm) system: a private apt configuration under target/debian/
# downloads exactly the pinned .debs below from the same Debian archive,
# and `dpkg-deb -x` unpacks each into target/debian/root/. Nothing is
# installed into the system and no system package changes version; the
# Go binaries need only glibc >= 2.34, which bookworm has. We chose this
# over a pinned apt source because apt would also resolve (and might pull
# in) newer versions of their dependencies, such as libc6 for runc.
#
#   tests/stack/newer-debian.sh     # then: PATH=$PWD/target/debian/bin:$PATH
#
# target/debian/bin/ then holds prometheus and promtool (3.5.3),
# prometheus-alertmanager and amtool (0.28.1, the compose pin),
# alertmanager-0.33 and amtool-0.33 (0.33.1, for the upgrade check),
# victoria-metrics (1.145.0), dockerd 28.5.2 with containerd 2.1.9 and
# the docker CLI 28.5.2; the CLI plugins compose (v2.40.3) and buildx
# (0.29.1) are in target/debian/cli-plugins/, and as root they are linked
# into /usr/local/libexec/docker/cli-plugins/, where the CLI looks. Bookworm's runc 1.1.5 runs the containers
# (sid's runc needs glibc 2.38).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
dir=$top/target/debian
# package=version (suite): the versions the README's table names.
PKGS="prometheus=3.5.3+ds1-6 promtool=3.5.3+ds1-6
prometheus-alertmanager=0.28.1+ds-1 prometheus-alertmanager=0.33.1-5
victoria-metrics=1.145.0+ds1-2
docker.io=28.5.2+dfsg4-5 docker-cli=28.5.2+dfsg4-5 containerd=2.1.9+ds1-5
docker-compose=2.40.3-3 docker-buildx=0.29.1+ds1-4"
stamp=$dir/.fetched-$(echo "$PKGS" | cksum | cut -d' ' -f1)
if [ -f "$stamp" ]; then
    exit 0
fi

mkdir -p "$dir/apt/parts" "$dir/apt/lists/partial" "$dir/apt/cache/archives/partial" "$dir/debs" "$dir/root" "$dir/bin" "$dir/cli-plugins"
cat >"$dir/apt/sources.list" <<LIST
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main
LIST
apt_private() {
    apt-get -qq -o Dir::Etc::SourceList="$dir/apt/sources.list" -o Dir::Etc::SourceParts="$dir/apt/parts" \
        -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts="$dir/apt/parts" \
        -o Dir::State::Lists="$dir/apt/lists" -o Dir::Cache="$dir/apt/cache" \
        -o Debug::NoLocking=1 -o APT::Sandbox::User=root "$@"
}
echo "newer-debian: reading the trixie and sid package lists"
apt_private update
cd "$dir/debs"
for p in $PKGS; do
    name=${p%%=*}
    ver=${p#*=}
    file=$(ls "${name}_$(echo "$ver" | sed 's/:/%3a/')_"*.deb 2>/dev/null || true)
    if [ -z "$file" ]; then
        apt_private download "$p"
        file=$(ls "${name}_$(echo "$ver" | sed 's/:/%3a/')_"*.deb)
    fi
    rm -rf "$dir/root/$name-$ver"
    dpkg-deb -x "$file" "$dir/root/$name-$ver"
    echo "newer-debian: $name $ver"
done

r=$dir/root
link() { ln -sf "$1" "$dir/bin/$2"; }
link "$r/prometheus-3.5.3+ds1-6/usr/bin/prometheus" prometheus
link "$r/promtool-3.5.3+ds1-6/usr/bin/promtool" promtool
link "$r/prometheus-alertmanager-0.28.1+ds-1/usr/bin/prometheus-alertmanager" prometheus-alertmanager
link "$r/prometheus-alertmanager-0.28.1+ds-1/usr/bin/amtool" amtool
link "$r/prometheus-alertmanager-0.33.1-5/usr/bin/prometheus-alertmanager" alertmanager-0.33
link "$r/prometheus-alertmanager-0.33.1-5/usr/bin/amtool" amtool-0.33
link "$r/victoria-metrics-1.145.0+ds1-2/usr/bin/victoria-metrics" victoria-metrics
for b in dockerd docker-proxy; do link "$r/docker.io-28.5.2+dfsg4-5/usr/sbin/$b" "$b"; done
link "$r/docker.io-28.5.2+dfsg4-5/usr/bin/docker-init" docker-init
link "$r/docker-cli-28.5.2+dfsg4-5/usr/bin/docker" docker
for b in containerd containerd-shim-runc-v2 ctr; do link "$r/containerd-2.1.9+ds1-5/usr/bin/$b" "$b"; done
ln -sf "$r/docker-compose-2.40.3-3/usr/libexec/docker/cli-plugins/docker-compose" "$dir/cli-plugins/"
ln -sf "$r/docker-buildx-0.29.1+ds1-4/usr/libexec/docker/cli-plugins/docker-buildx" "$dir/cli-plugins/"
# The docker CLI looks for plugins in this system directory (as root).
if [ "$(id -u)" = 0 ]; then
    mkdir -p /usr/local/libexec/docker/cli-plugins
    ln -sf "$dir/cli-plugins/docker-compose" "$dir/cli-plugins/docker-buildx" /usr/local/libexec/docker/cli-plugins/
fi
rm -f "$dir"/.fetched-*
touch "$stamp"
