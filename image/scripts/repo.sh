#!/usr/bin/env bash
# repo <target> <deb-cache> <repo-dir>: a local apt repository with the normal dists/ layout holding
# exactly the locked .debs (mmdebstrap finds no essential packages in a flat repository).
. "$(dirname "$0")/lib.sh"
load_target "$1"
CACHE=$2; REPO=$3
rm -rf "$REPO" && mkdir -p "$REPO/pool/main" "$REPO/dists/$SUITE/main/binary-$ARCH"
while read -r n v a sum size fn; do
  src="$CACHE/pool/$(basename "$fn")"
  [ -f "$src" ] || die "repo: $src missing (run the fetch step)"
  ln "$src" "$REPO/pool/main/" 2>/dev/null || cp "$src" "$REPO/pool/main/"
done < <(grep -v '^#' "$LOCK_FILE")
( cd "$REPO" && apt-ftparchive packages pool/main > "dists/$SUITE/main/binary-$ARCH/Packages" )
( cd "$REPO/dists/$SUITE" && apt-ftparchive -o APT::FTPArchive::Release::Suite="$SUITE" \
    -o APT::FTPArchive::Release::Codename="$SUITE" -o APT::FTPArchive::Release::Architectures="$ARCH" \
    -o APT::FTPArchive::Release::Components=main release . > Release )
log "repo: $(grep -c '^Package:' "$REPO/dists/$SUITE/main/binary-$ARCH/Packages") packages in $REPO"
