#!/usr/bin/env bash
# app <target> <out-dir>: stages the Outpost application for /opt/outpost: the TypeScript compiled from
# the committed sources, package.json, and production dependencies installed exactly as package-lock.json
# says (npm ci --omit=dev --ignore-scripts). Native addons: prebuilt binaries for other platforms are dropped,
# addons without a prebuild for the target are compiled for it (below).
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
# Native addons: a prebuilt binary for the target is used as is; otherwise the addon is compiled for the target
# (node-gyp with Node's headers from /usr/include/node; for arm64 on an amd64 host with Debian's aarch64 cross
# compiler), with build paths mapped to /opt/outpost so the binary does not depend on the build folder.
host_arch=$(dpkg --print-architecture)
case "$ARCH" in amd64) elf='x86-64' ;; arm64) elf='aarch64' ;; esac
while IFS= read -r gyp; do
  pkgdir=$(dirname "$gyp")
  [ -d "$pkgdir/prebuilds/linux-$NODE_ARCH" ] && continue
  name=$(node -p "require('$pkgdir/package.json').name")
  log "app: compiling the native addon $name for $ARCH"
  flags="-ffile-prefix-map=$OUT=/opt/outpost -ffile-prefix-map=$HOME=/root"
  if [ "$ARCH" = "$host_arch" ]; then
    ( cd "$OUT" && CFLAGS="$flags" CXXFLAGS="$flags" npm rebuild "$name" --foreground-scripts >/dev/null ) \
      || die "app: compiling the native addon $name failed (needs build-essential)"
  elif [ "$ARCH" = arm64 ] && command -v aarch64-linux-gnu-g++ >/dev/null; then
    ( cd "$OUT" && CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ CFLAGS="$flags" CXXFLAGS="$flags" \
        npm_config_arch=arm64 npm rebuild "$name" --arch=arm64 --foreground-scripts >/dev/null ) \
      || die "app: cross-compiling the native addon $name for arm64 failed"
  else
    die "app: $name has a native addon with no prebuilt binary for linux-$NODE_ARCH and no compiler for $ARCH here (g++-aarch64-linux-gnu)"
  fi
  for b in $(find "$pkgdir/build/Release" -maxdepth 1 -name '*.node'); do
    file -b "$b" | grep -q "$elf" || die "app: $b is not a $elf binary"
  done
  # Keep only the addon itself: objects and dependency files hold build paths.
  find "$pkgdir/build" -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
  find "$pkgdir/build/Release" -mindepth 1 ! -name '*.node' -exec rm -rf {} +
done < <(find "$OUT/node_modules" -name binding.gyp -not -path '*/node_modules/*/node_modules/*/test/*' | LC_ALL=C sort)
find "$OUT/node_modules" -type d -path '*/prebuilds/*' -prune -not -name "linux-$NODE_ARCH*" -exec rm -rf {} +
# Deterministic tree: no caches, fixed permissions (mtimes are clamped by the rootfs step).
find "$OUT" -name '.cache' -type d -prune -exec rm -rf {} +
chmod -R u+rwX,go+rX,go-w "$OUT"
log "app: $(du -sm "$OUT" | cut -f1) MiB, $(find "$OUT/node_modules" -maxdepth 2 -name package.json | wc -l) top-level packages"
