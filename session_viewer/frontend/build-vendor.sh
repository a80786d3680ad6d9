#!/usr/bin/env bash
# Rebuilds vendor/ from the npm registry: axios, marked, DOMPurify, dayjs (built files + licences)
# and vendor/tailwind.css (Tailwind CLI over index.html and the scripts listed in tailwind.config.js).
# Run it after changing class names or to upgrade a library; commit the result. Tests and the
# running viewer only use the committed files: no npm, no network, no node_modules at run time.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
VENDOR="$HERE/vendor"
AXIOS=1.21.1
MARKED=18.2.1
DOMPURIFY=3.4.18
DAYJS=1.11.23
TAILWIND=3.4.19

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
npm init -y >/dev/null
npm install --no-audit --no-fund --ignore-scripts --silent \
  "axios@$AXIOS" "marked@$MARKED" "dompurify@$DOMPURIFY" "dayjs@$DAYJS" "tailwindcss@$TAILWIND"

mkdir -p "$VENDOR/licenses"
strip_map() { sed -e '/^\/\/# sourceMappingURL=/d' "$1" > "$2"; }  # no requests for absent .map files
strip_map node_modules/axios/dist/axios.min.js "$VENDOR/axios.min.js"
strip_map node_modules/marked/lib/marked.umd.js "$VENDOR/marked.umd.js"
strip_map node_modules/dompurify/dist/purify.min.js "$VENDOR/purify.min.js"
strip_map node_modules/dayjs/dayjs.min.js "$VENDOR/dayjs.min.js"
strip_map node_modules/dayjs/plugin/relativeTime.js "$VENDOR/dayjs-relativeTime.min.js"

cp node_modules/axios/LICENSE "$VENDOR/licenses/axios-LICENSE"
cp node_modules/marked/LICENSE "$VENDOR/licenses/marked-LICENSE"
cp node_modules/dompurify/LICENSE "$VENDOR/licenses/dompurify-LICENSE"
cp node_modules/dompurify/LICENSE-MPL "$VENDOR/licenses/dompurify-LICENSE-MPL"
cp node_modules/dayjs/LICENSE "$VENDOR/licenses/dayjs-LICENSE"
cp node_modules/tailwindcss/LICENSE "$VENDOR/licenses/tailwindcss-LICENSE"

(cd "$HERE" && "$WORK/node_modules/.bin/tailwindcss" -c tailwind.config.js -i tailwind.input.css -o "$VENDOR/tailwind.css" --minify)

cat > "$VENDOR/VERSIONS" <<VERSIONS
axios $AXIOS (dist/axios.min.js)
marked $MARKED (lib/marked.umd.js)
dompurify $DOMPURIFY (dist/purify.min.js)
dayjs $DAYJS (dayjs.min.js, plugin/relativeTime.js)
tailwindcss $TAILWIND (CLI build of tailwind.input.css, --minify)
VERSIONS
echo "vendor/ rebuilt in $VENDOR"
