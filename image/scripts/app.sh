#!/usr/bin/env bash
# app <target> <out-dir>: stages the Outpost application for /opt/outpost: the TypeScript compiled from
# the committed sources, package.json, and production dependencies installed exactly as package-lock.json
# says (npm ci --omit=dev). Native addons: prebuilt binaries for other platforms are dropped; a package that
# would need compiling (binding.gyp without a prebuild for the target) stops the build with its name.
. "$(dirname "$0")/lib.sh"
load_target "$1"
OUT=$2
case "$ARCH" in amd64) NODE_ARCH=x64 ;; arm64) NODE_ARCH=arm64 ;; *) die "app: unsupported arch $ARCH" ;; esac
rm -rf "$OUT" && mkdir -p "$OUT"
cd "$REPO_ROOT"
[ -x node_modules/.bin/tsc ] || die "app: node_modules/.bin/tsc missing: run npm ci in $REPO_ROOT first"
log "app: compiling TypeScript"
node_modules/.bin/tsc -p tsconfig.json --outDir "$OUT/dist" --sourceMap false
cp package.json package-lock.json "$OUT/"
log "app: npm ci --omit=dev"
( cd "$OUT" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null )
rm -f "$OUT/package-lock.json"
rm -rf "$OUT/dist/bench" "$OUT/dist/scripts"   # benchmarks and doc generators stay off the device
# Native addons.
while IFS= read -r gyp; do
  pkgdir=$(dirname "$gyp")
  if [ -d "$pkgdir/prebuilds/linux-$NODE_ARCH" ]; then continue; fi
  die "app: $(basename "$pkgdir") has a native addon with no prebuilt binary for linux-$NODE_ARCH; the image cannot compile it"
done < <(find "$OUT/node_modules" -name binding.gyp -not -path '*/node_modules/*/node_modules/*/test/*' | LC_ALL=C sort)
find "$OUT/node_modules" -type d -path '*/prebuilds/*' -prune -not -name "linux-$NODE_ARCH*" -exec rm -rf {} +
# Deterministic tree: no caches, fixed permissions (mtimes are clamped by the rootfs step).
find "$OUT" -name '.cache' -type d -prune -exec rm -rf {} +
chmod -R u+rwX,go+rX,go-w "$OUT"
log "app: $(du -sm "$OUT" | cut -f1) MiB, $(find "$OUT/node_modules" -maxdepth 2 -name package.json | wc -l) top-level packages"
