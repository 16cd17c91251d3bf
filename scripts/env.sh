# Shared set-up steps for demo.sh and test.sh (sourced, not run).
VENV="${GPT2WEB_VENV:-$PWD/.venv}"
PY="$VENV/bin/python"

ensure_venv() {  # ensure_venv EXTRA: a virtualenv with gpt2web[EXTRA] installed (editable)
  local extra="$1" stamp
  [ -x "$PY" ] || python3 -m venv "$VENV"
  stamp="$VENV/.installed-$extra-$(sha256sum pyproject.toml | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    echo "== installing Python packages ($extra) into $VENV"
    "$PY" -m pip install -q --upgrade pip
    if [ "$extra" = test ]; then
      # The CPU build of PyTorch (the reference model in the parity tests). A bare `torch`
      # would pull a multi-GB CUDA build.
      "$PY" -m pip install -q "torch==2.13.0" || "$PY" -m pip install -q torch --index-url https://download.pytorch.org/whl/cpu
    fi
    "$PY" -m pip install -q -e ".[$extra]"
    touch "$stamp"
  fi
}

ensure_system_packages() {  # Debian packages the tests use: a browser, a wasm compiler, the corpus
  local missing=()
  command -v chromium >/dev/null || missing+=(chromium)
  command -v clang >/dev/null || missing+=(clang)
  command -v wasm-ld >/dev/null || missing+=(lld)
  command -v wat2wasm >/dev/null || missing+=(wabt)
  command -v bible >/dev/null || missing+=(bible-kjv)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
  fi
}
