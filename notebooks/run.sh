#!/usr/bin/env bash
# Executes notebooks/postmortem.ipynb from scratch and fails on any error in it.
#
# Uses (or creates) a virtualenv at ${TMPDIR:-/tmp}/pawscope-nbvenv with requirements.txt,
# builds the release binary unless PAWSCOPE names one (CARGO_TARGET_DIR defaults to
# ${TMPDIR:-/tmp}/pawscope-target, as in .ci/run), and writes the executed notebook to
# ${TMPDIR:-/tmp}/pawscope-nb-out. Works from any current directory.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
tmp="${TMPDIR:-/tmp}"
tmp="${tmp%/}"
venv="$tmp/pawscope-nbvenv"
out="$tmp/pawscope-nb-out"

# A PAWSCOPE given relative to the caller's directory, or as a command name, made absolute.
if [ -n "${PAWSCOPE:-}" ]; then
    case "$PAWSCOPE" in
        */*) PAWSCOPE="$(cd "$(dirname "$PAWSCOPE")" && pwd)/$(basename "$PAWSCOPE")" ;;
        *) PAWSCOPE="$(command -v "$PAWSCOPE")" ;;
    esac
    [ -x "$PAWSCOPE" ] || { echo "run.sh: PAWSCOPE=$PAWSCOPE is not an executable" >&2; exit 1; }
    export PAWSCOPE
fi

cd "$root"

# Reuse the virtualenv while its interpreter still runs; otherwise make it anew.
if ! "$venv/bin/python" -c '' >/dev/null 2>&1; then
    rm -rf "$venv"
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"

if [ -z "${PAWSCOPE:-}" ]; then
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$tmp/pawscope-target}"
    case "$CARGO_TARGET_DIR" in
        /*) ;;
        *) CARGO_TARGET_DIR="$root/$CARGO_TARGET_DIR" ;;
    esac
    cargo build --release --quiet
    export PAWSCOPE="$CARGO_TARGET_DIR/release/pawscope"
fi

# Keep the run to the virtualenv's kernel and settings, whatever the user's Jupyter set-up.
export JUPYTER_DATA_DIR="$venv/share/jupyter"
export JUPYTER_CONFIG_DIR="$venv/etc/jupyter"
export JUPYTER_PLATFORM_DIRS=1
unset JUPYTER_PATH JUPYTER_CONFIG_PATH
export MPLBACKEND=Agg

mkdir -p "$out"
"$venv/bin/jupyter" nbconvert --to notebook --execute \
    --ExecutePreprocessor.timeout=600 \
    --ExecutePreprocessor.kernel_name=python3 \
    --output-dir "$out" \
    notebooks/postmortem.ipynb
echo "run.sh: notebook executed without errors: $out/postmortem.ipynb"
