#!/usr/bin/env bash
# Installs the Python test toolchain (the pulumi SDK 3.259.0 from PyPI,
# pytest, and what building the generated SDK needs) into a virtualenv in
# "$out/venv", and puts an `esosync-python` launcher into "$out/bin".
# tests/tools/build.sh runs this from tests/tools/python with $out set; see
# there for caching. The generated SDK itself (sdk/python) changes with the
# schema, so tests install it per run, not here.
set -euo pipefail
: "${out:?run through tests/tools/build.sh}"

python3 -m venv "$out/venv"
"$out/venv/bin/python3" -m pip install --quiet --disable-pip-version-check --no-deps -r requirements.txt

# The launcher finds the venv next to its own real location, because
# tests/tools/build.sh renames the build directory after this script ran.
cat > "$out/bin/esosync-python" <<'LAUNCHER'
#!/usr/bin/env bash
# Runs the test bed's Python (pulumi SDK, pytest) from the virtualenv next to this launcher.
here=$(dirname "$(readlink -f "$0")")
exec "$here/../venv/bin/python3" "$@"
LAUNCHER
chmod 0755 "$out/bin/esosync-python"
"$out/bin/esosync-python" -c 'import pulumi, pytest, parver, setuptools, wheel'
