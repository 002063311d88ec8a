#!/usr/bin/env bash
# Runs the whole obskit test suite on a fresh Debian machine: installs the system packages the
# tests need when they are missing, then checks formatting, runs clippy with warnings denied,
# and runs every test, doc test included.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing missing packages: ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p obskit --no-default-features --locked -- -D warnings
cargo clippy -p obskit --no-default-features --features http --locked -- -D warnings
cargo clippy -p obskit --no-default-features --features resilience --locked -- -D warnings
cargo test --workspace --locked
