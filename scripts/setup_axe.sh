#!/usr/bin/env bash
# axe-core (the accessibility checker the browser tests inject into the pages), from the npm
# registry into build/axe/ (ignored by git). Needs npm; without it the scan tests are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=4.10.3
if [ -f build/axe/node_modules/axe-core/axe.min.js ] && \
   grep -q "\"version\": \"$VERSION\"" build/axe/node_modules/axe-core/package.json; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "npm is not installed: the axe-core scans will be skipped (apt-get install npm)" >&2
  exit 0
fi
mkdir -p build/axe
npm install --silent --no-audit --no-fund --prefix build/axe "axe-core@$VERSION" >/dev/null
echo "axe-core $VERSION in build/axe/"
