#!/usr/bin/env bash
# rootfs <target> <repo-dir> <out-tar>: the root file system as a tar, built by mmdebstrap from the
# local repository of locked .debs only (no network), with the overlay and the units applied by
# customize.sh. Reproducible: SOURCE_DATE_EPOCH from image/config.env, no host leaks.
. "$(dirname "$0")/lib.sh"
load_target "$1"
REPO=$(realpath "$2"); OUT=$3
export SOURCE_DATE_EPOCH IMAGE_DIR REPO_ROOT TARGET LOCK_FILE
ensure_binfmt "$ARCH"
mmdebstrap_common_opts
# The initramfs hook and script must be in place before the kernel package builds the initramfs.
mmdebstrap "${MMDEBSTRAP_OPTS[@]}" \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount \
  --setup-hook="mkdir -p \"\$1/etc/initramfs-tools\" && cp -a $IMAGE_DIR/overlay/common/etc/initramfs-tools/hooks $IMAGE_DIR/overlay/common/etc/initramfs-tools/scripts \"\$1/etc/initramfs-tools/\"" \
  --customize-hook="$IMAGE_DIR/scripts/customize.sh \"\$1\"" \
  "$SUITE" "$OUT" "deb [trusted=yes] file://$REPO $SUITE main"
log "rootfs: $(du -m "$OUT" | cut -f1) MiB tar"
