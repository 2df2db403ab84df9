"""Scenarios run with the official SDKs against the ASC (see ../sdk.rs).

Usage: python clients.py SCENARIO...   Each scenario asserts and prints
"ok SCENARIO"; the Rust test checks that every one it asked for printed it.
Environment: ASC (reverse proxy URL), FAKE (fake upstream URL), FAKE_CA,
SUB (the agent's substitute key), REAL_OPENAI/REAL_ANTHROPIC/REAL_GEMINI/
REAL_BEDROCK (what the upstream must receive), FWD and ASC_CA (forward
proxy), WRONG (a key the ASC does not know).
"""
import base64
import json
import os
import ssl
import sys
import urllib.request

import anthropic
import boto3
import openai
from botocore.config import Config
from botocore.exceptions import ClientError, EventStreamError
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

ASC = os.environ["ASC"]
SUB = os.environ["SUB"]
SECRET = "AKIA" + "Z7Q3RX6MW2KD4PLT"  # an AWS access key id shape, not a real key
HELLO = "Hello from the fake upstream."
BEDROCK_MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"


def seen():
    """Requests the fake upstream received."""
    ctx = ssl.create_default_context(cafile=os.environ["FAKE_CA"])
    with urllib.request.urlopen(os.environ["FAKE"] + "/_fake/requests", context=ctx) as r:
        return json.load(r)


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def raises(fn, exc, what):
    try:
        fn()
    except exc as e:
        return e
    raise AssertionError(f"{what}: no {exc}")


def no_substitute_upstream(since):
    for r in seen()[since:]:
        blob = json.dumps(r)
        expect(SUB not in blob, "the substitute key reached the upstream")


CLIENTS = {}


def cached(name, make):
    """One client per kind for the whole run (a google-genai client closes
    its connection pool when garbage-collected, even mid-call)."""
    if name not in CLIENTS:
        CLIENTS[name] = make()
    return CLIENTS[name]


def oa(key=None):
    return cached("openai-" + (key or SUB), lambda: openai.OpenAI(api_key=key or SUB, base_url=ASC + "/openai/v1", max_retries=0))


def an():
    return cached("anthropic", lambda: anthropic.Anthropic(api_key=SUB, base_url=ASC + "/anthropic", max_retries=0))


def gm():
    return cached("gemini", lambda: genai.Client(
        api_key=SUB, http_options=genai_types.HttpOptions(base_url=ASC + "/gemini", api_version="v1beta")))


def bd():
    return boto3.client(
        "bedrock-runtime", region_name="us-east-1", endpoint_url=ASC + "/bedrock",
        aws_access_key_id=SUB, aws_secret_access_key=SUB,
        config=Config(retries={"total_max_attempts": 1}))


def user(text):
    return [{"role": "user", "content": text}]


# --- OpenAI -----------------------------------------------------------------

def openai_chat_plain():
    n = len(seen())
    r = oa().chat.completions.create(model="gpt-4o", messages=user("hi"))
    expect(r.choices[0].message.content == HELLO, r)
    expect(r.usage.completion_tokens == 7, r.usage)
    last = seen()[-1]
    expect(last["headers"].get("authorization") == "Bearer " + os.environ["REAL_OPENAI"], "upstream did not get the real key")
    no_substitute_upstream(n)


def openai_chat_stream():
    s = oa().chat.completions.create(model="gpt-4o", messages=user("hi"), stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in s if c.choices)
    expect(text == HELLO, text)


def openai_responses_plain():
    r = oa().responses.create(model="gpt-4o-mini", input="hi", instructions="be brief")
    expect(r.output_text == HELLO, r)


def openai_responses_stream():
    s = oa().responses.create(model="gpt-4o-mini", input="hi", stream=True)
    text = "".join(e.delta for e in s if e.type == "response.output_text.delta")
    expect(text == HELLO, text)


def openai_block_secret():
    n = len(seen())
    e = raises(lambda: oa().chat.completions.create(model="gpt-4o", messages=user(f"my key is {SECRET}")),
               openai.PermissionDeniedError, "secret in a prompt")
    expect("aws" in str(e) and SECRET not in str(e), str(e))
    expect(len(seen()) == n, "a blocked request reached the upstream")


def openai_block_instructions():
    n = len(seen())
    raises(lambda: oa().responses.create(model="gpt-4o", input="hi", instructions=f"use {SECRET}"),
           openai.PermissionDeniedError, "secret in Responses instructions")
    expect(len(seen()) == n, "a blocked request reached the upstream")


def openai_block_base64_document():
    n = len(seen())
    doc = base64.b64encode(f"deploy notes\naws_access_key_id = {SECRET}\n".encode()).decode()
    msgs = [{"role": "user", "content": [
        {"type": "text", "text": "summarise the attached file"},
        {"type": "file", "file": {"filename": "notes.txt", "file_data": f"data:text/plain;base64,{doc}"}}]}]
    e = raises(lambda: oa().chat.completions.create(model="gpt-4o", messages=msgs),
               openai.PermissionDeniedError, "secret in a base64 document")
    expect("aws" in str(e), str(e))
    expect(len(seen()) == n, "a blocked request reached the upstream")


def openai_block_tool_arguments_in_history():
    msgs = [{"role": "user", "content": "go"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
             "function": {"name": "get_weather", "arguments": json.dumps({"token": SECRET})}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]
    raises(lambda: oa().chat.completions.create(model="gpt-4o", messages=msgs),
           openai.PermissionDeniedError, "secret in tool-call arguments")


def openai_model_not_allowed():
    raises(lambda: oa().chat.completions.create(model="gpt-3.5-turbo", messages=user("hi")),
           openai.PermissionDeniedError, "model outside the allow-list")


def openai_wrong_key():
    e = raises(lambda: oa(os.environ["WRONG"]).chat.completions.create(model="gpt-4o", messages=user("hi")),
               openai.AuthenticationError, "unknown substitute key")
    expect(e.status_code == 401, e)


def tools():
    return [{"type": "function", "function": {"name": n, "parameters": {"type": "object", "properties": {}}}}
            for n in ("delete_repo", "get_weather")]


def openai_tool_filtered():
    oa().chat.completions.create(model="gpt-4o", messages=user("weather?"), tools=tools())
    body = json.loads(seen()[-1]["body"])
    names = [t["function"]["name"] for t in body["tools"]]
    expect(names == ["get_weather"], names)


def openai_denied_tool_call_blocked():
    raises(lambda: oa().chat.completions.create(model="gpt-4o", messages=user("CALL_TOOL:delete_repo"), tools=tools()),
           openai.PermissionDeniedError, "model called a denied tool")


def openai_denied_tool_call_blocked_stream():
    def go():
        s = oa().chat.completions.create(model="gpt-4o", messages=user("CALL_TOOL:delete_repo"), tools=tools(), stream=True)
        for c in s:
            for ch in c.choices:
                for tc in ch.delta.tool_calls or []:
                    if tc.function and tc.function.name == "delete_repo":
                        raise AssertionError("the denied tool call reached the agent")
    e = raises(go, openai.APIError, "denied tool call in a stream")
    expect("delete_repo" in str(e), str(e))


def openai_response_secret_blocked_stream():
    def go():
        s = oa().chat.completions.create(model="gpt-4o", messages=user("LEAK_SECRET"), stream=True)
        text = ""
        for c in s:
            for ch in c.choices:
                text += ch.delta.content or ""
        raise AssertionError(f"stream completed: {text!r}")
    e = raises(go, openai.APIError, "secret in a streamed response")
    expect(SECRET not in str(e), str(e))


def openai_response_secret_blocked():
    e = raises(lambda: oa().chat.completions.create(model="gpt-4o", messages=user("LEAK_SECRET")),
               openai.PermissionDeniedError, "secret in a response")
    expect(SECRET not in str(e), str(e))


def openai_broken_stream():
    def go():
        for _ in oa().chat.completions.create(model="gpt-4o", messages=user("BREAK_STREAM"), stream=True):
            pass
    e = raises(go, openai.APIError, "upstream stream broke off")
    expect("broke off" in str(e), str(e))


def openai_key_echo_scrubbed():
    e = raises(lambda: oa().chat.completions.create(model="gpt-4o", messages=user("ECHO_KEY")),
               openai.AuthenticationError, "upstream echoing the key")
    expect(os.environ["REAL_OPENAI"] not in str(e) and os.environ["REAL_OPENAI"] not in json.dumps(e.body), str(e))
    expect("[REDACTED:api-key]" in str(e), str(e))


def openai_redact():
    r = oa().chat.completions.create(model="gpt-4o", messages=user(f"key {SECRET} and NIGHTJAR plans"),
                                     extra_body={"x_vendor": {"keep": [1, 2]}})
    expect(r.choices[0].message.content == HELLO, r)
    body = json.loads(seen()[-1]["body"])
    content = body["messages"][0]["content"]
    expect(SECRET not in content and "NIGHTJAR" not in content and "[REDACTED:" in content, content)
    expect(body["x_vendor"] == {"keep": [1, 2]}, body)


def openai_budget():
    oa().chat.completions.create(model="gpt-4o", messages=user("hi"))
    e = raises(lambda: oa().chat.completions.create(model="gpt-4o", messages=user("hi")),
               openai.RateLimitError, "budget exhausted")
    expect("budget" in str(e), str(e))


def openai_approval_granted():
    r = oa().chat.completions.create(model="gpt-4o", messages=user("CALL_TOOL:deploy_prod"))
    expect(r.choices[0].message.tool_calls[0].function.name == "deploy_prod", r)


def openai_approval_timeout():
    e = raises(lambda: oa().chat.completions.create(model="gpt-4o", messages=user("CALL_TOOL:deploy_prod")),
               openai.PermissionDeniedError, "approval timed out")
    expect("not approved in time" in str(e), str(e))


def openai_forward_proxy():
    os.environ["HTTPS_PROXY"] = os.environ["FWD"]
    os.environ["SSL_CERT_FILE"] = os.environ["ASC_CA"]
    c = openai.OpenAI(api_key=SUB, max_retries=0)  # default base URL: api.openai.com
    r = c.chat.completions.create(model="gpt-4o", messages=user("hi"))
    expect(r.choices[0].message.content == HELLO, r)
    raises(lambda: c.chat.completions.create(model="gpt-4o", messages=user(f"k {SECRET}")),
           openai.PermissionDeniedError, "DLP through the forward proxy")
    other = openai.OpenAI(api_key=SUB, max_retries=0, base_url="https://exfil.invalid/v1")
    raises(lambda: other.chat.completions.create(model="gpt-4o", messages=user("hi")),
           openai.APIConnectionError, "CONNECT to a host that is not a provider")


# --- Anthropic ----------------------------------------------------------------

def anthropic_plain():
    n = len(seen())
    m = an().messages.create(model="claude-sonnet-4", max_tokens=50, messages=user("hi"))
    expect(m.content[0].text == HELLO and m.usage.output_tokens == 7, m)
    expect(seen()[-1]["headers"].get("x-api-key") == os.environ["REAL_ANTHROPIC"], "real key")
    no_substitute_upstream(n)


def anthropic_stream():
    with an().messages.stream(model="claude-sonnet-4", max_tokens=50, messages=user("hi")) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    expect(text == HELLO and final.usage.output_tokens == 7, text)


def anthropic_block_secret():
    e = raises(lambda: an().messages.create(model="claude-sonnet-4", max_tokens=50, system=f"creds: {SECRET}", messages=user("hi")),
               anthropic.PermissionDeniedError, "secret in the system prompt")
    expect(SECRET not in str(e), str(e))


def anthropic_denied_tool_stream():
    def go():
        with an().messages.stream(model="claude-sonnet-4", max_tokens=50, messages=user("CALL_TOOL:delete_repo"),
                                  tools=[{"name": "get_weather", "input_schema": {"type": "object"}}]) as s:
            for ev in s:
                if ev.type == "content_block_start" and getattr(ev.content_block, "name", "") == "delete_repo":
                    raise AssertionError("the denied tool call reached the agent")
    raises(go, anthropic.APIStatusError, "denied tool call in an Anthropic stream")


# --- Gemini ---------------------------------------------------------------------

def gemini_plain():
    n = len(seen())
    r = gm().models.generate_content(model="gemini-2.5-flash", contents="hi")
    expect(r.text == HELLO and r.usage_metadata.candidates_token_count == 7, r)
    expect(seen()[-1]["headers"].get("x-goog-api-key") == os.environ["REAL_GEMINI"], "real key")
    no_substitute_upstream(n)


def gemini_stream():
    text = "".join(c.text or "" for c in gm().models.generate_content_stream(model="gemini-2.5-flash", contents="hi"))
    expect(text == HELLO, text)


def gemini_block_secret():
    e = raises(lambda: gm().models.generate_content(model="gemini-2.5-flash", contents=f"use {SECRET}"),
               genai_errors.ClientError, "secret to Gemini")
    expect(e.code == 403, e)


def gemini_tool_filtered():
    decl = lambda n: genai_types.FunctionDeclaration(name=n, parameters=genai_types.Schema(type="OBJECT", properties={}))
    cfg = genai_types.GenerateContentConfig(tools=[genai_types.Tool(function_declarations=[decl("delete_repo"), decl("get_weather")])])
    gm().models.generate_content(model="gemini-2.5-flash", contents="weather?", config=cfg)
    body = json.loads(seen()[-1]["body"])
    names = [d["name"] for t in body["tools"] for d in t.get("functionDeclarations", [])]
    expect(names == ["get_weather"], names)


# --- Bedrock ------------------------------------------------------------------

def bedrock_converse():
    n = len(seen())
    r = bd().converse(modelId=BEDROCK_MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    expect(r["output"]["message"]["content"][0]["text"] == HELLO and r["usage"]["outputTokens"] == 7, r)
    auth = seen()[-1]["headers"].get("authorization", "")
    expect(("Credential=" + os.environ["REAL_BEDROCK"].split(":")[0]) in auth, auth)
    no_substitute_upstream(n)


def bedrock_converse_stream():
    r = bd().converse_stream(modelId=BEDROCK_MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}])
    text = "".join(e["contentBlockDelta"]["delta"].get("text", "") for e in r["stream"] if "contentBlockDelta" in e)
    expect(text == HELLO, text)


def bedrock_invoke():
    body = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50, "messages": user("hi")})
    r = bd().invoke_model(modelId=BEDROCK_MODEL, body=body, contentType="application/json")
    out = json.loads(r["body"].read())
    expect(out["content"][0]["text"] == HELLO, out)


def bedrock_invoke_stream():
    body = json.dumps({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 50, "messages": user("hi")})
    r = bd().invoke_model_with_response_stream(modelId=BEDROCK_MODEL, body=body, contentType="application/json")
    text = ""
    for e in r["body"]:
        ev = json.loads(e["chunk"]["bytes"])
        if ev["type"] == "content_block_delta":
            text += ev["delta"]["text"]
    expect(text == HELLO, text)


def bedrock_block_secret():
    e = raises(lambda: bd().converse(modelId=BEDROCK_MODEL, messages=[{"role": "user", "content": [{"text": f"k {SECRET}"}]}]),
               ClientError, "secret to Bedrock")
    expect(e.response["Error"]["Code"] == "AccessDeniedException", e.response)


def bedrock_denied_tool_stream():
    def go():
        r = bd().converse_stream(modelId=BEDROCK_MODEL, messages=[{"role": "user", "content": [{"text": "CALL_TOOL:delete_repo"}]}])
        for e in r["stream"]:
            if "contentBlockStart" in e:
                raise AssertionError("the denied tool call reached the agent")
    raises(go, EventStreamError, "denied tool call in a Bedrock stream")


def bedrock_bad_signature():
    c = boto3.client("bedrock-runtime", region_name="us-east-1", endpoint_url=ASC + "/bedrock",
                     aws_access_key_id=SUB, aws_secret_access_key="not-the-substitute-key",
                     config=Config(retries={"total_max_attempts": 1}))
    e = raises(lambda: c.converse(modelId=BEDROCK_MODEL, messages=[{"role": "user", "content": [{"text": "hi"}]}]),
               ClientError, "wrong SigV4 secret")
    expect(e.response["ResponseMetadata"]["HTTPStatusCode"] == 403, e.response)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        globals()[name]()
        print("ok", name, flush=True)
