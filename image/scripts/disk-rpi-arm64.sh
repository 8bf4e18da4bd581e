#!/usr/bin/env bash
# disk-rpi-arm64 <work-dir>: assembles the Raspberry Pi 4/5 GPT disk from <work-dir>/root and
# <work-dir>/rootfs.squashfs, without loop devices or mounts:
#   1 bootcfg FAT (autoboot.txt: tryboot A/B)   2 bootA FAT (firmware, DTBs, kernel, initramfs, config.txt,
#   cmdline.txt)   3 bootB (empty)   4 rootA squashfs   5 rootB (empty)   6 data (blank)
# Both slots use the same boot image (boot.vfat, also in the OTA bundle): the initramfs picks rootA or rootB
# from the partition the firmware booted (see overlay/common/etc/initramfs-tools/scripts/local-top/outpost-slot).
. "$(dirname "$0")/lib.sh"
load_target rpi-arm64
W=$1
export SOURCE_DATE_EPOCH
R=$W/root
fw=$R/usr/lib/raspi-firmware
kver=$(sed -n 's/^KERNEL_VERSION=//p' "$R/etc/outpost/image-release")
dtbs=$R/usr/lib/linux-image-$kver/broadcom
[ -d "$fw" ] || die "disk: $fw missing (raspi-firmware not installed?)"
[ -d "$dtbs" ] || die "disk: $dtbs missing (linux-image-arm64 without Broadcom DTBs?)"

cfg=$W/bootcfg.vfat; boot=$W/boot.vfat
rm -f "$cfg" "$boot"
mkfs.vfat --invariant -i "$BOOTCFG_SERIAL" -n BOOTCFG -F 16 -C "$cfg" $((BOOTCFG_MIB * 1024)) >/dev/null
# mcopy -m keeps each file's time: copies of the checkout's files get SOURCE_DATE_EPOCH.
for f in autoboot.txt config.txt cmdline.txt; do cp "$IMAGE_DIR/rpi/$f" "$W/$f"; touch -d "@$SOURCE_DATE_EPOCH" "$W/$f"; done
mcopy -m -i "$cfg" "$W/autoboot.txt" ::/
mkfs.vfat --invariant -i "$BOOTA_SERIAL" -n BOOT -F 32 -C "$boot" $((BOOT_MIB * 1024)) >/dev/null
# Firmware blobs (Pi 4: start4/fixup4; the Pi 5 boots from its EEPROM and needs only config.txt and DTBs).
mapfile -t blobs < <(cd "$fw" && ls | LC_ALL=C sort | grep -E '^(bootcode\.bin|start4.*\.elf|fixup4.*\.dat|LICENCE.*)$' | sed "s|^|$fw/|")
[ "${#blobs[@]}" -gt 0 ] || die "disk: no Pi firmware blobs in $fw"
mcopy -m -i "$boot" "${blobs[@]}" ::/
mapfile -t dt < <(cd "$dtbs" && ls | LC_ALL=C sort | grep -E '^bcm(2711|2712|2837)-rpi-.*\.dtb$' | sed "s|^|$dtbs/|")
[ "${#dt[@]}" -gt 0 ] || die "disk: no Raspberry Pi DTBs in $dtbs"
mcopy -m -i "$boot" "${dt[@]}" ::/
cp -L "$R/boot/vmlinuz" "$W/vmlinuz"; cp -L "$R/boot/initrd.img" "$W/initrd.img"
touch -d "@$SOURCE_DATE_EPOCH" "$W/vmlinuz" "$W/initrd.img"
mcopy -m -i "$boot" "$W/vmlinuz" "$W/initrd.img" "$W/config.txt" "$W/cmdline.txt" ::/

MiB=$((1024 * 1024))
p1=1; p2=$((p1 + BOOTCFG_MIB)); p3=$((p2 + BOOT_MIB)); p4=$((p3 + BOOT_MIB)); p5=$((p4 + ROOT_MIB)); p6=$((p5 + ROOT_MIB))
total=$((p6 + DATA_MIB + 1))
disk=$W/disk.img
rm -f "$disk" && truncate -s $((total * MiB)) "$disk"
ESP=C12A7328-F81F-11D2-BA4B-00A0C93EC93B; LNX=0FC63DAF-8483-4772-8E79-3D69D8477DE4
sfdisk --quiet --no-reread --no-tell-kernel "$disk" <<SFDISK
label: gpt
label-id: $DISK_GUID
unit: sectors
first-lba: 2048
start=$((p1 * 2048)), size=$((BOOTCFG_MIB * 2048)), type=$ESP, uuid=$BOOTCFG_GUID, name=bootcfg
start=$((p2 * 2048)), size=$((BOOT_MIB * 2048)), type=$ESP, uuid=$BOOTA_GUID, name=bootA
start=$((p3 * 2048)), size=$((BOOT_MIB * 2048)), type=$ESP, uuid=$BOOTB_GUID, name=bootB
start=$((p4 * 2048)), size=$((ROOT_MIB * 2048)), type=$LNX, uuid=$ROOTA_GUID, name=rootA
start=$((p5 * 2048)), size=$((ROOT_MIB * 2048)), type=$LNX, uuid=$ROOTB_GUID, name=rootB
start=$((p6 * 2048)), size=$((DATA_MIB * 2048)), type=$LNX, uuid=$DATA_GUID, name=data
SFDISK
dd if="$cfg" of="$disk" bs=1M seek=$p1 conv=notrunc,sparse status=none
dd if="$boot" of="$disk" bs=1M seek=$p2 conv=notrunc,sparse status=none
dd if="$W/rootfs.squashfs" of="$disk" bs=1M seek=$p4 conv=notrunc,sparse status=none
log "disk: $disk $total MiB (bootcfg $BOOTCFG_MIB, bootA/B $BOOT_MIB, rootA/B $ROOT_MIB, data $DATA_MIB)"
