#!/usr/bin/env bash
# disk-x86-64 <work-dir>: assembles the GPT disk from <work-dir>/root (unpacked rootfs) and
# <work-dir>/rootfs.squashfs, without loop devices or mounts:
#   1 esp   FAT32, EFI/BOOT/{BOOTX64.EFI,grub.cfg,grubenv}   2 rootA squashfs   3 rootB (empty)   4 data (blank)
# The grubenv starts as ORDER="A B" A_OK=1 A_TRY=0 B_OK=0 B_TRY=0: slot B holds nothing bootable yet.
. "$(dirname "$0")/lib.sh"
load_target x86-64
W=$1
export SOURCE_DATE_EPOCH   # mtools stamps directories and files with it
esp=$W/esp.vfat
rm -f "$esp" "$W/grubenv"
mkfs.vfat --invariant -i "$ESP_SERIAL" -n ESP -F 32 -C "$esp" $((ESP_MIB * 1024)) >/dev/null
grub-editenv "$W/grubenv" create
grub-editenv "$W/grubenv" set ORDER="A B" A_OK=1 A_TRY=0 B_OK=0 B_TRY=0
cp "$IMAGE_DIR/grub/grub.cfg" "$W/grub.cfg"
# mcopy -m keeps each file's time: make them all SOURCE_DATE_EPOCH (a checkout's times are not).
touch -d "@$SOURCE_DATE_EPOCH" "$W/grub.cfg" "$W/grubenv"
mmd -i "$esp" ::/EFI ::/EFI/BOOT
mcopy -m -i "$esp" "$W/root/usr/lib/outpost/boot/BOOTX64.EFI" "$W/grub.cfg" "$W/grubenv" ::/EFI/BOOT/

MiB=$((1024 * 1024))
esp_start=1; rootA_start=$((esp_start + ESP_MIB)); rootB_start=$((rootA_start + ROOT_MIB))
data_start=$((rootB_start + ROOT_MIB)); total=$((data_start + DATA_MIB + 1))
disk=$W/disk.img
rm -f "$disk" && truncate -s $((total * MiB)) "$disk"
sfdisk --quiet --no-reread --no-tell-kernel "$disk" <<SFDISK
label: gpt
label-id: $DISK_GUID
unit: sectors
first-lba: 2048
start=$((esp_start * 2048)), size=$((ESP_MIB * 2048)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=$ESP_GUID, name=esp
start=$((rootA_start * 2048)), size=$((ROOT_MIB * 2048)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=$ROOTA_GUID, name=rootA
start=$((rootB_start * 2048)), size=$((ROOT_MIB * 2048)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=$ROOTB_GUID, name=rootB
start=$((data_start * 2048)), size=$((DATA_MIB * 2048)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=$DATA_GUID, name=data
SFDISK
dd if="$esp" of="$disk" bs=1M seek=$esp_start conv=notrunc,sparse status=none
dd if="$W/rootfs.squashfs" of="$disk" bs=1M seek=$rootA_start conv=notrunc,sparse status=none
log "disk: $disk $total MiB (esp $ESP_MIB, rootA/rootB $ROOT_MIB, data $DATA_MIB)"
