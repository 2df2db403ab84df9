#!/usr/bin/env bash
# The official LLM and MCP client SDKs in a venv (CORDON_VENV, default
# /opt/cordon-venv) that the ASC tests and `netsim demo asc` use. Needs
# python3 with venv. Idempotent.
set -euo pipefail
venv=${CORDON_VENV:-/opt/cordon-venv}
here=$(cd "$(dirname "$0")" && pwd)
if ! "$venv/bin/python" -c 'import openai, anthropic, google.genai, boto3, mcp' >/dev/null 2>&1; then
  printf '[setup] creating the SDK venv in %s\n' "$venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$here/requirements-sdk.txt"
fi
