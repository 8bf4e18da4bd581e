#!/usr/bin/env bash
# README's test command (`npm test`): installs what is missing, builds, type-checks the tests and runs
# every suite except the slow QEMU end-to-end one (`npm run test:e2e`). Extra arguments go to vitest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx tsc -p tsconfig.test.json --noEmit
npx vitest run "$@"
