#!/usr/bin/env bash
# Installs moto (a Python emulator of AWS APIs; the test bed uses its Secrets
# Manager, STS and IAM) into a virtualenv in "$out/venv" and puts a
# moto_server launcher into "$out/bin". tests/tools/build.sh runs this from
# tests/tools/moto with $out set; see there for caching.
#
# requirements.txt pins every package, so --no-deps installs exactly that set
# and a new release on PyPI cannot change the test bed.
set -euo pipefail
: "${out:?run through tests/tools/build.sh}"

python3 -m venv "$out/venv"
"$out/venv/bin/python3" -m pip install --quiet --disable-pip-version-check --no-deps -r requirements.txt

# build.sh builds into a temporary directory and then renames it, and pip's
# console scripts hard-code the interpreter's absolute path in their #! line.
# The launcher finds the venv relative to its own real location instead, so
# it works wherever the directory ends up (python locates the venv from the
# pyvenv.cfg next to the interpreter it runs).
cat > "$out/bin/moto_server" <<'EOF'
#!/usr/bin/env bash
# Runs moto's server from the virtualenv next to this launcher.
here=$(dirname "$(readlink -f "$0")")
exec "$here/../venv/bin/python3" -m moto.server "$@"
EOF
chmod 0755 "$out/bin/moto_server"
"$out/bin/moto_server" --help >/dev/null
