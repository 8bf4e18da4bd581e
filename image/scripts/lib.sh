# Shared helpers of the image build scripts (sourced, not run). Every script is a pure function of the
# committed inputs named in its header plus the environment variables it reads.
set -euo pipefail
IMAGE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_ROOT=$(cd "$IMAGE_DIR/.." && pwd)

die() { echo "image: error: $*" >&2; exit 1; }
log() { echo "image: $*" >&2; }

# load_target <x86-64|rpi-arm64>: exports the common and per-target settings.
load_target() {
  local t=$1
  [ -f "$IMAGE_DIR/targets/$t.env" ] || die "unknown target '$t' (expected one of: $(cd "$IMAGE_DIR/targets" && ls *.env | sed 's/\.env$//' | tr '\n' ' '))"
  set -a
  # shellcheck disable=SC1090,SC1091
  . "$IMAGE_DIR/config.env"
  # shellcheck disable=SC1090
  . "$IMAGE_DIR/targets/$t.env"
  set +a
  export TARGET=$t
  export LOCK_FILE="$IMAGE_DIR/lock/$SUITE-$ARCH.lock"
}

# The Debian mirror: $OUTPOST_DEBIAN_MIRROR, else the first one configured for apt on this machine.
debian_mirror() {
  if [ -n "${OUTPOST_DEBIAN_MIRROR:-}" ]; then echo "$OUTPOST_DEBIAN_MIRROR"; return; fi
  local m=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    m=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) { print $i; exit } }' /etc/apt/sources.list)
  fi
  [ -n "$m" ] || die "no Debian mirror configured for apt; set OUTPOST_DEBIAN_MIRROR"
  echo "${m%/}"
}

# Registers qemu-user through binfmt_misc for a foreign architecture (a fresh machine or CI has none).
ensure_binfmt() {
  local arch=$1
  [ "$arch" = "$(dpkg --print-architecture)" ] && return 0
  if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || die "cannot mount binfmt_misc (needed to build $arch)"
  fi
  update-binfmts --enable "qemu-$QEMU_ARCH" >/dev/null 2>&1 || true
  arch-test "$arch" >/dev/null 2>&1 || die "this machine cannot run $arch binaries (install qemu-user-static and binfmt-support)"
}

# Options shared by the lock and rootfs steps, so both resolve the same package set.
# Sets the array MMDEBSTRAP_OPTS.
mmdebstrap_common_opts() {
  MMDEBSTRAP_OPTS=(--variant=minbase --mode=root --arch="$ARCH" --components="$COMPONENTS"
    --aptopt='APT::Install-Recommends "false"' --include="$PACKAGES")
}

sha256() { sha256sum "$1" | cut -d' ' -f1; }

# tool_versions: one line per host tool whose version can change build outputs (for the build manifest).
tool_versions() {
  for p in mmdebstrap apt dpkg squashfs-tools e2fsprogs dosfstools mtools fdisk zstd rauc faketime tar coreutils qemu-user-static; do
    printf '%s %s\n' "$p" "$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || echo missing)"
  done
  printf 'node %s\n' "$(node --version)"
  printf 'npm %s\n' "$(npm --version)"
}
