#!/usr/bin/env bash
# customize <rootdir>: mmdebstrap's customize hook (runs on the host, the root file system at <rootdir>).
# Applies the overlay and the units, creates the service user, enables units, builds the GRUB EFI binary
# (x86-64) from the locked GRUB packages, and checks the installed packages against the lock.
set -euo pipefail
R=$1
: "${IMAGE_DIR:?}" "${TARGET:?}" "${LOCK_FILE:?}" "${SOURCE_DATE_EPOCH:?}" "${REPO_ROOT:?}"
# shellcheck disable=SC1091
. "$IMAGE_DIR/config.env"

# The lock is the truth: exactly the locked packages, nothing else.
diff <(grep -v '^#' "$LOCK_FILE" | awk '{ print $1, $2, $3 }' | LC_ALL=C sort) \
     <(chroot "$R" dpkg-query -W -f='${Package} ${Version} ${Architecture}\n' | LC_ALL=C sort) \
  || { echo "image: error: installed packages differ from $LOCK_FILE" >&2; exit 1; }

# Host leaks (mmdebstrap copies the host's resolv.conf and hostname) and apt sources of the build.
printf 'outpost\n' > "$R/etc/hostname"
rm -f "$R/etc/resolv.conf"
printf '# Outpost image: no DNS server configured yet (add one with a networkd drop-in or systemd-resolved).\n' > "$R/etc/resolv.conf"
rm -f "$R/etc/apt/sources.list" "$R"/etc/apt/sources.list.d/*
printf '# Outpost image: packages are pinned by the image lock; this system is updated by OTA bundles, not apt.\n' > "$R/etc/apt/sources.list"
: > "$R/etc/machine-id"

# Overlay (common, then per target), owned by root.
for d in common "$TARGET"; do
  [ -d "$IMAGE_DIR/overlay/$d" ] || continue
  tar -C "$IMAGE_DIR/overlay/$d" --owner=0 --group=0 --numeric-owner -cf - . | tar -C "$R" --no-overwrite-dir -xf -
done

# The app's unit (the app itself is added to /opt/outpost by the slot stage, so an app change does not
# rebuild the root file system).
mkdir -p "$R/opt/outpost"
install -m 0644 "$REPO_ROOT/services/outpost.service" "$R/usr/lib/systemd/system/outpost.service"
# Per-unit drop-ins live on the data partition.
ln -sfn /var/lib/outpost/config.d "$R/etc/outpost/config.d"
cat > "$R/etc/outpost/image-release" <<REL
IMAGE_NAME=$IMAGE_NAME
IMAGE_VERSION=$IMAGE_VERSION
IMAGE_TARGET=$TARGET
SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH
PACKAGE_LOCK_SHA256=$(sha256sum "$LOCK_FILE" | cut -d' ' -f1)
REL

# Service user and groups (shadow honours SOURCE_DATE_EPOCH for the password-change dates).
chroot "$R" groupadd --system gpio
chroot "$R" useradd --system --user-group --no-create-home --home-dir /var/lib/outpost --shell /usr/sbin/nologin outpost
rm -f "$R"/etc/passwd- "$R"/etc/group- "$R"/etc/shadow- "$R"/etc/gshadow- "$R"/etc/subuid- "$R"/etc/subgid-

# Mount points and fstab (the root itself is mounted read-only by the initramfs).
mkdir -p "$R/data"
{
  echo "# Outpost image. / is a read-only squashfs slot; /data (the data partition) and the /var overlay are"
  echo "# mounted by the initramfs (/etc/initramfs-tools/scripts/local-bottom/outpost-data)."
  echo "tmpfs /tmp tmpfs mode=1777,nosuid,nodev,size=64m 0 0"
  case "$TARGET" in
    x86-64) mkdir -p "$R/boot/efi"
      echo "PARTLABEL=esp /boot/efi vfat umask=0077,noatime,nofail 0 2" ;;
    rpi-arm64) mkdir -p "$R/boot/firmware"
      echo "PARTLABEL=bootcfg /boot/firmware vfat umask=0077,noatime,nofail 0 2" ;;
  esac
} > "$R/etc/fstab"

# RAUC-compatible slot description (also read by Outpost's updater).
mkdir -p "$R/etc/rauc"
{
  echo "[system]"
  echo "compatible=$COMPATIBLE"
  case "$TARGET" in
    x86-64) echo "bootloader=grub"; echo "grubenv=/boot/efi/EFI/BOOT/grubenv" ;;
    rpi-arm64) echo "bootloader=custom"; echo "# Raspberry Pi firmware tryboot: /boot/firmware/autoboot.txt (bootA = partition 2, bootB = 3)" ;;
  esac
  echo "statusfile=/data/rauc.status"
  echo "[keyring]"
  echo "path=/etc/rauc/keyring.pem"
  echo "check-purpose=codesign"
  if [ "$TARGET" = rpi-arm64 ]; then
    echo "[slot.boot.0]"; echo "device=/dev/disk/by-partlabel/bootA"; echo "type=vfat"; echo "parent=rootfs.0"
    echo "[slot.boot.1]"; echo "device=/dev/disk/by-partlabel/bootB"; echo "type=vfat"; echo "parent=rootfs.1"
  fi
  echo "[slot.rootfs.0]"; echo "device=/dev/disk/by-partlabel/rootA"; echo "type=raw"; echo "bootname=A"
  echo "[slot.rootfs.1]"; echo "device=/dev/disk/by-partlabel/rootB"; echo "type=raw"; echo "bootname=B"
} > "$R/etc/rauc/system.conf"
install -m 0644 "${OUTPOST_IMAGE_KEYRING:-$IMAGE_DIR/keys/ca.cert.pem}" "$R/etc/rauc/keyring.pem"

# Units.
chroot "$R" systemctl enable systemd-networkd.service outpost.service outpost-boot-report.service \
  outpost-provisioned.path outpost-provision-wait.service outpost-test-hook.service outpost-growdata.service >/dev/null 2>&1
chroot "$R" systemctl mask apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer \
  e2scrub_reap.service getty@tty1.service >/dev/null 2>&1 || true

# Stable kernel and initramfs names for the boot loaders: each slot carries its own kernel.
kver=$(cd "$R/boot" && ls vmlinuz-* | sed 's/^vmlinuz-//' | LC_ALL=C sort -V | tail -1)
[ -n "$kver" ] && [ -f "$R/boot/initrd.img-$kver" ] || { echo "image: error: no kernel/initramfs in /boot" >&2; exit 1; }
ln -sfn "vmlinuz-$kver" "$R/boot/vmlinuz"
ln -sfn "initrd.img-$kver" "$R/boot/initrd.img"
echo "KERNEL_VERSION=$kver" >> "$R/etc/outpost/image-release"

# GRUB for UEFI, from the locked grub-efi-amd64-bin (kept in the slot so an OTA can also carry a new GRUB).
if [ "$TARGET" = x86-64 ]; then
  mkdir -p "$R/usr/lib/outpost/boot"
  chroot "$R" grub-mkimage -O x86_64-efi -o /usr/lib/outpost/boot/BOOTX64.EFI -p /EFI/BOOT \
    part_gpt fat ext2 squash4 normal linux loadenv test echo search search_label search_fs_uuid configfile \
    all_video efi_gop serial terminal reboot halt sleep regexp
fi

# Clamp every time stamp to SOURCE_DATE_EPOCH (files this hook and npm wrote are newer).
find "$R" -xdev \( -path "$R/proc" -o -path "$R/sys" -o -path "$R/dev" -o -path "$R/run" \) -prune \
  -o -newermt "@$SOURCE_DATE_EPOCH" -print0 | xargs -0r touch -h -d "@$SOURCE_DATE_EPOCH"
