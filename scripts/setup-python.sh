#!/usr/bin/env bash
# Idempotent: the Python venv (.venv-conformance) with the pinned conformance tools.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-conformance
req=scripts/requirements-conformance.txt
stamp="$venv/.stamp"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$(sha256sum "$req" | cut -d' ' -f1)" ]]; then
  exit 0
fi
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  echo "installing python3-venv" >&2
  scripts/install-packages.sh python3-venv
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --disable-pip-version-check -q -r "$req"
sha256sum "$req" | cut -d' ' -f1 >"$stamp"
echo "python venv ready: $venv"
