#!/usr/bin/env bash
# bundle <target> <work-dir> <out.raucb>: the OTA bundle of the same root file system, RAUC "plain" format
# (squashfs payload + detached CMS signature), installable by RAUC and by Outpost's updater.
# Images: rootfs.squashfs (slot rootfs), and boot.vfat (slot boot) for the Raspberry Pi.
# Signed with OUTPOST_IMAGE_SIGNING_CERT/KEY (default: the development signer in image/keys). The signing
# time is fixed to SOURCE_DATE_EPOCH (faketime) and the key is RSA, so the bundle is reproducible.
. "$(dirname "$0")/lib.sh"
load_target "$1"
W=$2; OUT=$3
CERT=${OUTPOST_IMAGE_SIGNING_CERT:-$IMAGE_DIR/keys/dev-signer.cert.pem}
KEY=${OUTPOST_IMAGE_SIGNING_KEY:-$IMAGE_DIR/keys/dev-signer.key.pem}
C=$W/bundle-content
rm -rf "$C" "$OUT" && mkdir -p "$C"
ln "$W/rootfs.squashfs" "$C/rootfs.squashfs" 2>/dev/null || cp "$W/rootfs.squashfs" "$C/"
{
  echo "[update]"
  echo "compatible=$COMPATIBLE"
  echo "version=$IMAGE_VERSION"
  echo "description=$IMAGE_NAME $TARGET $IMAGE_VERSION"
  echo "build=$SOURCE_DATE_EPOCH"
  echo
  echo "[bundle]"
  echo "format=plain"
  echo
  echo "[image.rootfs]"
  echo "filename=rootfs.squashfs"
  if [ -f "$W/boot.vfat" ]; then
    ln "$W/boot.vfat" "$C/boot.vfat" 2>/dev/null || cp "$W/boot.vfat" "$C/"
    echo
    echo "[image.boot]"
    echo "filename=boot.vfat"
  fi
} > "$C/manifest.raucm"
touch -h -d "@$SOURCE_DATE_EPOCH" "$C" "$C"/*

# The one bundling step. When `outpost ota bundle` lands, it replaces this function (same arguments).
make_bundle() { # <content-dir> <out> <cert> <key>
  TZ=UTC faketime -f "$(date -u -d "@$SOURCE_DATE_EPOCH" '+%Y-%m-%d %H:%M:%S')" \
    rauc bundle --cert="$3" --key="$4" "$1" "$2" >/dev/null
}
make_bundle "$C" "$OUT" "$CERT" "$KEY"
rm -rf "$C"
log "bundle: $OUT $(( $(stat -c %s "$OUT") / 1024 / 1024 )) MiB"
