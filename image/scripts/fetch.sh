#!/usr/bin/env bash
# fetch <target> <deb-cache>: fills <deb-cache>/pool with exactly the .debs of the target's lock, each
# checked against its locked sha256. Already cached files are re-checked, not downloaded again.
. "$(dirname "$0")/lib.sh"
load_target "$1"
CACHE=$2
[ -f "$LOCK_FILE" ] || die "no package lock $LOCK_FILE: run image/scripts/lock.sh $TARGET first (see docs/image.md)"
locked_pkgs=$(sed -n 's/^# packages: //p' "$LOCK_FILE")
[ "$locked_pkgs" = "$PACKAGES" ] || die "the lock $LOCK_FILE was made for other packages ($locked_pkgs); re-run the lock step (docs/image.md: bumping the lock)"
mkdir -p "$CACHE/pool"
total=$(grep -vc '^#' "$LOCK_FILE"); i=0; got=0
MIRROR=""
while read -r n v a sum size fn; do
  i=$((i + 1))
  dest="$CACHE/pool/$(basename "$fn")"
  if [ -f "$dest" ] && [ "$(sha256 "$dest")" = "$sum" ]; then continue; fi
  rm -f "$dest"
  [ -n "$MIRROR" ] || MIRROR=$(debian_mirror)
  log "fetch: [$i/$total] $n $v"
  if ! /usr/lib/apt/apt-helper download-file "$MIRROR/$fn" "$dest.part" "SHA256:$sum" >/dev/null 2>"$dest.err"; then
    cat "$dest.err" >&2; rm -f "$dest.part" "$dest.err"
    die "fetch: $n $v ($fn) could not be downloaded with the locked sha256; if the mirror dropped this version, bump the lock (docs/image.md)"
  fi
  rm -f "$dest.err"; mv "$dest.part" "$dest"; got=$((got + 1))
done < <(grep -v '^#' "$LOCK_FILE")
log "fetch: $total packages cached ($got downloaded)"
