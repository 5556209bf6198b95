#!/bin/sh
# Installs the Debian packages Blade builds and tests with, and only those
# missing: a second run changes nothing and needs no network.
set -eu

packages="g++ meson ninja-build pkg-config binutils curl \
  libboost-dev libboost-program-options-dev libcpp-httplib-dev libsqlite3-dev \
  libfmt-dev libyaml-cpp-dev doctest-dev nlohmann-json3-dev libssl-dev openssl \
  libsystemd-dev user-mode-linux kmod systemd dbus \
  libnl-route-3-dev libnftables-dev iproute2 nftables iputils-ping \
  libre2-dev python3-yaml runc busybox-static"
# python3-yaml: the build reads the os, disk and network plugins' spec YAML
# to generate the cri plugin's (plugins/cri/tools/cri_spec.py).
# libre2-dev: RE2, the regular expressions of HTTP fault rules (policies
# and the http plugin's proxy): linear time whatever the input, so a
# hostile path or header cannot stall or overflow the daemon.
# runc and busybox-static: the cri plugin's tests run their faults inside real
# runc containers whose whole userland is the static busybox
# (tests/support/runc_container.hpp).
# libsystemd-dev: sd-bus, how the os plugin's `systemd stop` talks to systemd.
# user-mode-linux (/usr/bin/linux, a Linux kernel run as an ordinary
# process) and kmod: the tests that need a kernel of their own (the wall
# clock for `time travel`, systemd as PID 1 for `systemd stop`, modules such
# as sch_netem) boot one on the host's root fs (tests/support/uml_vm.hpp).
# systemd and dbus: what that kernel boots as init.
# libnl-route-3-dev and libnftables-dev: how the network plugin talks to
# the kernel (rtnetlink qdiscs and filters, nftables), never through tc or
# nft. iproute2, nftables, iputils-ping: what its tests set up netns and
# veth with and read the kernel's state back by (and the baseline `tc` of
# the netem benchmark).

# --bench: what only the benchmarks use: stress-ng (the cpu precision
# baseline); nginx-light (the upstream and the plain reverse proxy beside
# which the http plugin's fault proxy is measured) and wrk (the load
# generator of that benchmark). The benchmark never uses the system's nginx
# service: it starts its own processes on configs of its own in a temp dir.
if [ "${1:-}" = "--bench" ]; then
  packages="stress-ng nginx-light wrk"
fi
# --fuzz: what only the fuzz targets use (make fuzz, docs/fuzzing.md): clang
# 14 and its sanitizer and libFuzzer runtimes. -fsanitize=fuzzer links
# compiler-rt's libFuzzer from libclang-rt-14-dev, which clang only
# recommends (and recommends are not installed here); libfuzzer-14-dev is
# the standalone libFuzzer.a of the same release.
if [ "${1:-}" = "--fuzz" ]; then
  packages="clang libclang-rt-14-dev libfuzzer-14-dev"
fi

missing=""
for p in $packages; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$status" in
    *"install ok installed"*) ;;
    *) missing="$missing $p" ;;
  esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086 # the list is meant to split into words
$sudo apt-get install -y -qq --no-install-recommends $missing
