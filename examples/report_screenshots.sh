#!/usr/bin/env bash
# Screenshots of an fmrikit report, one PNG per section, rendered by a real browser (headless Chromium), as a
# reader sees the page opened from disk.
#
#   bash examples/report_screenshots.sh [REPORT_HTML] [OUT_DIR] [WIDTH]
#
# REPORT_HTML defaults to the quickstart's report ($FMRIKIT_QUICKSTART/derivatives/fmrikit/report.html, the
# quickstart folder defaulting to ./quickstart), OUT_DIR to ./report_screenshots, WIDTH to 1280 px. For each
# <section> of the page a copy showing only that section (and the navigation bar) is written beside the report,
# so its relative picture links still work, rendered at WIDTH x 16000 px, cropped below its last content and
# removed again. Needs Debian's `chromium` (apt install chromium) or `chromium-browser`.
set -euo pipefail
WORK=${FMRIKIT_QUICKSTART:-./quickstart}
REPORT=${1:-$WORK/derivatives/fmrikit/report.html}
OUT=${2:-./report_screenshots}
WIDTH=${3:-1280}
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
  echo "chromium is not installed (apt install chromium)" >&2
  exit 2
fi
if [ ! -f "$REPORT" ]; then
  echo "no report at $REPORT (run fmrikit report first)" >&2
  exit 2
fi
mkdir -p "$OUT"
PROFILE=$(mktemp -d)
trap 'rm -rf "$PROFILE"' EXIT

# the section ids, and one page per section beside the report
mapfile -t SECTIONS < <(python3 - "$REPORT" <<'EOF'
import re, sys
from pathlib import Path

report = Path(sys.argv[1])
html = report.read_text()
for key in re.findall(r"<section id='([\w-]+)'>", html):
    hide = (f"<style>section:not(#{key}), main > h1, main > h1 + .where {{ display: none; }} "
            f"section#{key} > h2 {{ margin-top: 8px; }}</style></head>")
    report.with_name(f".{report.stem}.section-{key}.html").write_text(html.replace("</head>", hide, 1))
    print(key)
EOF
)
SHOTS=()
for key in "${SECTIONS[@]}"; do
  page="$(dirname "$REPORT")/.$(basename "$REPORT" .html).section-$key.html"
  shot="$OUT/$(printf "%02d" $(( ${#SHOTS[@]} + 1 )))-$key.png"
  SHOTS+=("$shot")
  timeout 180 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --no-first-run --hide-scrollbars --user-data-dir="$PROFILE" \
    --screenshot="$shot" --window-size="$WIDTH,16000" "file://$(realpath "$page")" > /dev/null 2>&1
  rm -f "$page"
  # crop the white space below the section's last content (20 px margin)
  python3 - "$shot" <<'EOF'
import sys

import numpy as np
from PIL import Image

path = sys.argv[1]
pixels = np.asarray(Image.open(path).convert("L"))
rows = np.nonzero((pixels < 250).any(axis=1))[0]
bottom = min(pixels.shape[0], (rows.max() if rows.size else 0) + 20)
if bottom >= pixels.shape[0]:
    print(f"{path}: the section is taller than the window; widen the window or split the section", file=sys.stderr)
Image.open(path).crop((0, 0, pixels.shape[1], bottom)).save(path)
print(f"{path}: {pixels.shape[1]} x {bottom} px")
EOF
done
