"""An ordinary agent script for `netsim demo asc`: it uses the official
OpenAI and Anthropic SDKs with their defaults and knows nothing of Cordon.
`overlay-node exec` points the SDKs at the enclave's ASC and gives them the
member's substitute key. It prints one line, `RESULT {json}`, for netsim to
judge; it never decides itself what counts as a pass."""

import json
import os
import socket

import anthropic
import openai

DESIGN_EXCERPT = (
    "always @(posedge clk or negedge rst_n) begin if (!rst_n) begin y <= {WIDTH{1'b0}}; "
    "carry <= 1'b0; zero <= 1'b0; end else begin case (op) 4'h0: {carry, y} <= sum; "
    "4'h1: {carry, y} <= diff; 4'h2: begin y <= a & b; carry <= 1'b0; end "
    "4'h3: begin y <= a | b; carry <= 1'b0; end"
)
TOOLS = [
    {"type": "function", "function": {"name": "read_file", "description": "Read a file.",
     "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}},
    {"type": "function", "function": {"name": "delete_file", "description": "Delete a file.",
     "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}},
]

results = {}


def attempt(name, fn):
    try:
        results[name] = {"ok": True, "detail": fn()}
    except Exception as e:  # the verdict is netsim's, not ours
        results[name] = {"ok": False, "detail": f"{type(e).__name__}: {str(e)[:400]}"}


oai = openai.OpenAI(max_retries=0, timeout=20)


def chat(content, **kw):
    r = oai.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": content}], **kw)
    m = r.choices[0].message
    calls = [c.function.name for c in (m.tool_calls or [])]
    return {"text": m.content, "tool_calls": calls}


attempt("normal", lambda: chat("Summarise this week's status notes for the design review."))
attempt("secret", lambda: chat("Deploy with aws_access_key_id = AKIAZ7VRSQ5TJN2XJ4MB please."))
attempt("design", lambda: chat("Optimise this for timing: " + DESIGN_EXCERPT))
attempt("denied_tool", lambda: chat("Clean up the scratch dir. CALL_TOOL:delete_file", tools=TOOLS))
attempt("anthropic", lambda: anthropic.Anthropic(max_retries=0, timeout=20).messages.create(
    model="claude-sonnet-4", max_tokens=64,
    messages=[{"role": "user", "content": "Name one risk in the release plan."}]).content[0].text)


def direct():
    host, port = os.environ["DEMO_UPSTREAM"].rsplit(":", 1)
    socket.create_connection((host, int(port)), timeout=3).close()
    return "connected"


attempt("direct", direct)
results["environment"] = dict(os.environ)
print("RESULT " + json.dumps(results), flush=True)
