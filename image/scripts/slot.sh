#!/usr/bin/env bash
# slot <target> <rootfs-tar> <app-dir> <work-dir>: unpacks the root file system to <work-dir>/root, adds the
# Outpost app in /opt/outpost, and makes the read-only slot image <work-dir>/rootfs.squashfs (gzip, which GRUB's squash4 reads, zstd it does not; reproducible:
# fixed times, sorted, no host data).
. "$(dirname "$0")/lib.sh"
load_target "$1"
TAR=$2; APP=$3; W=$4
rm -rf "$W/root" && mkdir -p "$W/root"
tar -C "$W/root" --numeric-owner --xattrs --xattrs-include='*' -xf "$TAR"
# mmdebstrap's file-mirror-automount leaves the local repository's mount point (the "repo" folder inside the build's
# work folder, a path that differs between builds) as empty directories in the tar: remove that chain of empty
# directories.
MIRROR_MOUNT="work/repo"
while IFS= read -r d; do
  while [ "$d" != "$W/root" ] && rmdir "$d" 2>/dev/null; do d=$(dirname "$d"); done
done < <(find "$W/root" -depth -type d -path "*/$MIRROR_MOUNT" -empty)
cp -a "$APP/." "$W/root/opt/outpost/"
mkdir -p "$W/root/opt/outpost/services" && cp "$REPO_ROOT/services/README.md" "$W/root/opt/outpost/services/README.md"
# The OTA updater's units (mark-good on every boot, resume after a power cut, the root agent that runs fleet
# installs for the unprivileged runtime, started by its socket) and its configuration.
mkdir -p "$W/root/etc/systemd/system/sockets.target.wants"
for u in outpost-ota-mark-good.service outpost-ota-resume.service outpost-ota-agent.service outpost-ota-agent.socket; do
  install -m 0644 "$REPO_ROOT/services/$u" "$W/root/usr/lib/systemd/system/$u"
done
for u in outpost-ota-mark-good.service outpost-ota-resume.service; do
  ln -sfn "/usr/lib/systemd/system/$u" "$W/root/etc/systemd/system/multi-user.target.wants/$u"
done
ln -sfn /usr/lib/systemd/system/outpost-ota-agent.socket "$W/root/etc/systemd/system/sockets.target.wants/outpost-ota-agent.socket"
grep -q '^ota:' "$W/root/etc/outpost/config.yaml" || cat "$IMAGE_DIR/ota/$TARGET.yaml" >> "$W/root/etc/outpost/config.yaml"
touch -h -d "@$SOURCE_DATE_EPOCH" "$W/root/etc/outpost/config.yaml" "$W/root/etc/systemd/system/multi-user.target.wants" \
  "$W/root/etc/systemd/system/multi-user.target.wants"/outpost-ota-* "$W/root/usr/lib/systemd/system"/outpost-ota-* \
  "$W/root/etc/systemd/system/sockets.target.wants" "$W/root/etc/systemd/system/sockets.target.wants"/outpost-ota-* \
  "$W/root/usr/lib/systemd/system" "$W/root/etc/outpost" "$W/root/etc/systemd/system"
chown -R 0:0 "$W/root/opt/outpost"
find "$W/root/opt/outpost" -print0 | xargs -0r touch -h -d "@$SOURCE_DATE_EPOCH"
# squashfs-tools refuses SOURCE_DATE_EPOCH together with the explicit time options.
env -u SOURCE_DATE_EPOCH mksquashfs "$W/root" "$W/rootfs.squashfs" -noappend -comp gzip -Xcompression-level 9 \
  -reproducible -mkfs-time "$SOURCE_DATE_EPOCH" -all-time "$SOURCE_DATE_EPOCH" -no-progress -quiet >/dev/null
size=$(stat -c %s "$W/rootfs.squashfs")
[ "$size" -le $((ROOT_MIB * 1024 * 1024)) ] || die "slot: rootfs.squashfs ($size bytes) does not fit a ${ROOT_MIB} MiB slot (image/targets/$TARGET.env ROOT_MIB)"
log "slot: rootfs.squashfs $((size / 1024 / 1024)) MiB (slot ${ROOT_MIB} MiB)"
