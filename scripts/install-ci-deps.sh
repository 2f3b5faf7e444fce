#!/usr/bin/env bash
# Install everything the firmware build/QEMU tests need, on Debian bookworm, as root.
# Idempotent and non-interactive; when everything is present it only runs a few
# cheap checks (no apt-get update, no network).
#
#   rust targets : thumbv7em-none-eabihf thumbv7m-none-eabi riscv32imac-unknown-none-elf
#   rust comps   : rustfmt clippy llvm-tools (llvm-size for scripts/fw-size.sh)
#   Debian       : qemu-system-arm qemu-system-misc (from bookworm-backports, to
#                  match the newer qemu-utils already on the machine),
#                  gcc-arm-none-eabi (C firmware, arm-none-eabi-size)
#   cargo        : defmt-print (host-side defmt decoder), cargo-fuzz (scripts/fuzz-smoke.sh)
#   rust nightly : minimal profile, for cargo-fuzz (libFuzzer needs -Zsanitizer)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

log() { echo "[install-ci-deps] $*" >&2; }
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# Cargo's bin dir on PATH (rustup installs there).
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

# ---------------------------------------------------------------- rust ----
RUST_TARGETS=(thumbv7em-none-eabihf thumbv7m-none-eabi riscv32imac-unknown-none-elf)
RUST_COMPONENTS=(rustfmt clippy llvm-tools)

installed_targets="$(rustup target list --installed)"
missing_targets=()
for t in "${RUST_TARGETS[@]}"; do
  grep -qx "$t" <<<"$installed_targets" || missing_targets+=("$t")
done
if [ ${#missing_targets[@]} -gt 0 ]; then
  log "rustup target add ${missing_targets[*]}"
  rustup target add "${missing_targets[@]}"
fi

installed_comps="$(rustup component list --installed)"
missing_comps=()
for c in "${RUST_COMPONENTS[@]}"; do
  # installed names carry the host triple suffix (e.g. clippy-x86_64-unknown-linux-gnu)
  grep -q "^$c\(-preview\)\?-" <<<"$installed_comps" || missing_comps+=("$c")
done
if [ ${#missing_comps[@]} -gt 0 ]; then
  log "rustup component add ${missing_comps[*]}"
  rustup component add "${missing_comps[@]}"
fi

# Nightly with Miri (the 32-bit and undefined-behaviour checks of scripts/test-all.sh) and for
# cargo-fuzz (libFuzzer needs -Zsanitizer).
if ! rustup toolchain list | grep -q '^nightly'; then
  log "rustup toolchain install nightly"
  rustup toolchain install nightly --profile minimal
fi
nightly_comps="$(rustup +nightly component list --installed)"
for c in miri rust-src; do
  if ! grep -q "^$c" <<<"$nightly_comps"; then
    log "rustup +nightly component add $c"
    rustup +nightly component add "$c"
  fi
done

# -------------------------------------------------------------- Debian ----
APT_PKGS=(gcc-arm-none-eabi valgrind cmake)
BPO_PKGS=(qemu-system-arm qemu-system-misc)

pkg_ok() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

missing_apt=(); for p in "${APT_PKGS[@]}"; do pkg_ok "$p" || missing_apt+=("$p"); done
missing_bpo=(); for p in "${BPO_PKGS[@]}"; do pkg_ok "$p" || missing_bpo+=("$p"); done

if [ ${#missing_apt[@]} -gt 0 ] || [ ${#missing_bpo[@]} -gt 0 ]; then
  src=/etc/apt/sources.list.d/debian.sources
  if [ ${#missing_bpo[@]} -gt 0 ]; then
    if [ -f "$src" ]; then
      if ! grep -Eq '^Suites:.*\bbookworm-backports\b' "$src"; then
        log "adding bookworm-backports to $src"
        # only the first Suites: line that lists plain 'bookworm' (the main archive)
        $SUDO sed -i -E '0,/^Suites:(.*\s)?bookworm(\s|$)/{/^Suites:(.*\s)?bookworm(\s|$)/ s/$/ bookworm-backports/}' "$src"
      fi
    elif ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      log "adding bookworm-backports list"
      echo "deb http://deb.debian.org/debian bookworm-backports main" |
        $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
    fi
  fi
  log "apt-get update"
  $SUDO apt-get update -qq
  if [ ${#missing_apt[@]} -gt 0 ]; then
    log "apt-get install ${missing_apt[*]}"
    $SUDO apt-get install -y -qq --no-install-recommends "${missing_apt[@]}" >/dev/null
  fi
  if [ ${#missing_bpo[@]} -gt 0 ]; then
    log "apt-get install -t bookworm-backports ${missing_bpo[*]}"
    $SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports "${missing_bpo[@]}" >/dev/null
  fi
fi

# --------------------------------------------------------- defmt-print ----
if ! command -v defmt-print >/dev/null 2>&1; then
  log "cargo install --locked defmt-print (takes a few minutes on 2 cores)"
  cargo install --locked -j"${CARGO_BUILD_JOBS:-2}" defmt-print
fi

# ----------------------------------------------------------- cargo-fuzz ----
# (the nightly toolchain it needs is installed above, with Miri)
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  log "cargo install --locked cargo-fuzz (takes a few minutes on 2 cores)"
  cargo install --locked -j"${CARGO_BUILD_JOBS:-2}" cargo-fuzz
fi

log "ok: $(qemu-system-arm --version | head -1); $(defmt-print --version 2>&1 | head -1);" \
  "$(cargo fuzz --version 2>&1 | head -1)"
