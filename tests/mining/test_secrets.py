"""Secrets never leave the repo: planted credentials of many kinds are redacted everywhere."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from guardian.core.jsonl import read_jsonl
from guardian.core.schema import Chunk
from guardian.mining.secrets import find_secrets, redact
from guardian.steps import get_step
from guardian.steps.base import StepContext
from guardian.steps.mine import Params, run
from tests.helpers_git import make_git_repo

# Fake credentials with the shapes real ones have; assembled so this file holds none verbatim.
AWS_KEY = "AKIA" + "IOSFODNN7" + "EXAMPLQ"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
GITHUB = "ghp_" + "aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"
GITLAB = "glpat-" + "Zx8Yw7Vu6Ts5Rq4Po3Nm"
SLACK = "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
STRIPE = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"
GOOGLE = "AIza" + "SyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"
SENDGRID = "SG." + "ngeVfQFYQlKU0ufo8x5d1A.TwL2iGABf9DHoTf-09kqeF8tAmbihYzrnopKc-1s5cr"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
DB_PASSWORD = "Tr0ub4dor&3-horse"
URL_PASSWORD = "Sup3rS3cretPw"
ENTROPY = "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MEFCQ0RFRkdISUpLTE1OT1BRUlNU"
PEM_LINES = (
    "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi0ERAMVwJgWrzyh4c1bYNbSgIy",
    "2xTz8E7xsDOpf0hTmF2RtNX0gD1k0rZ3fl0DdKsdFtHjwAhXnVpmBQHRlERSYECY",
)
PEM = (
    "-----BEGIN RSA "
    + "PRIVATE KEY-----\n"
    + "\n".join(PEM_LINES)
    + "\n-----END RSA PRIVATE KEY-----"
)

SECRETS = [AWS_KEY, AWS_SECRET, GITHUB, GITLAB, SLACK, STRIPE, GOOGLE, SENDGRID, JWT]
SECRETS += [DB_PASSWORD, URL_PASSWORD, ENTROPY, *PEM_LINES]

CASES = [
    ("aws_access_key", f'AWS_ACCESS_KEY_ID = "{AWS_KEY}"', AWS_KEY),
    ("aws_access_key", f'aws_secret_access_key = "{AWS_SECRET}"', AWS_SECRET),
    ("github_token", f"token: '{GITHUB}',", GITHUB),
    ("gitlab_token", f'const t = "{GITLAB}";', GITLAB),
    ("slack_token", f'slack = "{SLACK}"', SLACK),
    ("stripe_access_key", f'stripe.api_key = "{STRIPE}"', STRIPE),
    ("google_api_key", f'maps := "{GOOGLE}"', GOOGLE),
    ("sendgrid_api_key", f"# key: {SENDGRID}", SENDGRID),
    ("json_web_token", f'headers = {{"Authorization": "Bearer {JWT}"}}', JWT),
    ("secret_assignment", f"db_password = '{DB_PASSWORD}'", DB_PASSWORD),
    ("secret_assignment", f'password: string = "{DB_PASSWORD}";', DB_PASSWORD),
    (
        "basic_auth_credentials",
        f"url = 'postgres://admin:{URL_PASSWORD}@db:5432/app'",
        URL_PASSWORD,
    ),
    ("high_entropy_string", f'blob = "{ENTROPY}"', ENTROPY),
    ("private_key", f'KEY = """{PEM}"""', PEM_LINES[0]),
]


@pytest.mark.parametrize(("kind", "line", "secret"), CASES, ids=[c[0] for c in CASES])
def test_each_kind_is_redacted_in_place(kind: str, line: str, secret: str) -> None:
    text = f"before = 1\n{line}\nafter = 2\n"
    redacted, counts = redact(text)
    assert secret not in redacted
    assert f"<REDACTED:{kind}>" in redacted
    assert counts[kind] >= 1
    assert redacted.count("\n") == text.count("\n")
    assert redacted.startswith("before = 1\n") and redacted.endswith("after = 2\n")


def test_private_key_block_keeps_its_shape_and_counts_once() -> None:
    redacted, counts = redact(f'KEY = """{PEM}"""\n')
    assert counts == {"private_key": 1}
    assert redacted.splitlines() == [
        'KEY = """-----BEGIN RSA PRIVATE KEY-----',
        "<REDACTED:private_key>",
        "<REDACTED:private_key>",
        '-----END RSA PRIVATE KEY-----"""',
    ]
    ast.parse(redacted)


@pytest.mark.parametrize(
    "clean",
    [
        'token = "NAME"\nif token == "OP": pass\n',
        "password = input('Password: ')\nself.password = password\n",
        'SECRET_KEY = os.environ["SECRET_KEY"]\napi_key = "${API_KEY}"\n',
        'key = "value"\nmonkey = "banana_split"\n',
        'uuid = "123e4567-e89b-12d3-a456-426614174000"\n',
        'alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij"\n',
        'name = "test_urlsplit_normalization_with_port"\nurl = "https://example.com/a/b"\n',
        "def connect(host, password=None):\n    return host\n",
    ],
)
def test_ordinary_code_is_left_alone(clean: str) -> None:
    assert find_secrets(clean) == []
    assert redact(clean) == (clean, {})


PY_FILE = f'''\
"""Service settings."""

AWS_ACCESS_KEY_ID = "{AWS_KEY}"


def connect(password="{DB_PASSWORD}", url="postgres://svc:{URL_PASSWORD}@db/app"):
    """Connect with token {GITHUB} unless told otherwise."""
    aws_secret_access_key = "{AWS_SECRET}"
    return (password, url, aws_secret_access_key)


class Keys:
    PEM = """{PEM}"""

    def blob(self):
        return "{ENTROPY}"
'''

JS_FILE = f"""\
/**
 * Post to Slack with {SLACK}.
 */
export async function notify(text, token = "{SLACK}") {{
  return fetch("https://slack.com/api", {{ headers: {{ Authorization: "Bearer {JWT}" }} }});
}}
"""

TS_FILE = f"""\
export class Billing {{
  private readonly stripeKey: string = "{STRIPE}";
  charge = (cents: number): string => `${{cents}}:{SENDGRID}`;
}}
"""

GO_FILE = f"""\
package cfg

// Maps key: {GOOGLE}
func MapsKey() string {{
	gitlab := "{GITLAB}"
	return gitlab + "{GOOGLE}"
}}
"""


def test_planted_secrets_reach_no_chunk_dataset_cache_or_stat(tmp_path: Path) -> None:
    files = {"svc/settings.py": PY_FILE, "web/notify.js": JS_FILE, "web/billing.ts": TS_FILE}
    files["cfg/maps.go"] = GO_FILE
    make_git_repo(tmp_path / "repo", dict(files))
    home, out = tmp_path / "home", tmp_path / "mine"
    result = run(StepContext(repo=tmp_path / "repo", out_dir=out, home=home), Params())
    chunks = list(read_jsonl(out / "chunks.jsonl", Chunk))
    assert {c.qualname for c in chunks} >= {
        "connect",
        "Keys.blob",
        "notify",
        "Billing.charge",
        "MapsKey",
    }
    kinds = {k.removeprefix("secrets_") for k in result.metrics if k.startswith("secrets_")}
    assert len(kinds - {"redacted"}) >= 8, kinds
    assert result.metrics["secrets_redacted"] >= 14
    connect = next(c for c in chunks if c.qualname == "connect")
    assert "<REDACTED:" in connect.signature and "<REDACTED:" in (connect.docstring or "")
    notify = next(c for c in chunks if c.qualname == "notify")
    assert "<REDACTED:slack_token>" in (notify.docstring or "")
    for chunk in chunks:
        if chunk.language == "python":
            ast.parse(chunk.code)

    synth = get_step("synthesize")
    synth_out = tmp_path / "synth"
    ctx = StepContext(repo=tmp_path / "repo", out_dir=synth_out, home=home, inputs={"chunks": out})
    synth.fn(ctx, synth.params())
    written = [p for p in [*out.rglob("*"), *synth_out.rglob("*"), *home.rglob("*")] if p.is_file()]
    assert any(p.parent.parent.name == "mine" for p in written), "no cache entries written"
    blobs = [p.read_bytes() for p in written] + [repr(result.metrics).encode()]
    leaks = [s for s in SECRETS for blob in blobs if s.encode() in blob]
    assert leaks == []


@pytest.mark.parametrize(
    ("pattern", "literal"),
    [
        ("gl(?:pat|dt)-", "gl"),
        ("a|b", ""),
        ("xox[ab|c]-", "xox"),
        (r"SG\.", "SG."),
        (r"-us\d", "-us"),
        ("ab?c", "a"),
        (r"\.cloudant\.com", ".cloudant.com"),
    ],
)
def test_trigger_literals_are_safe_prefixes(pattern: str, literal: str) -> None:
    from guardian.mining.secrets import _literal_prefix

    assert _literal_prefix(pattern) == literal


def test_every_detect_secrets_provider_we_name_is_installed() -> None:
    from guardian.mining.secrets import _PROVIDER_TRIGGERS, _providers

    assert len(_providers()) == len(_PROVIDER_TRIGGERS)
