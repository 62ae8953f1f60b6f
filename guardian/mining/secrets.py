"""Credential scanning and in-place redaction of source text, before anything is parsed or kept.

Detectors: detect-secrets' provider plugins (AWS, GitHub, GitLab, Slack, Stripe, JWT, SendGrid,
npm, PyPI, Twilio, basic-auth URLs, ...; their maintained patterns and validation via
`analyze_string`, never their network `verify`), plus our own for PEM private-key blocks,
Google API keys, GitHub fine-grained and provider project tokens, secrets assigned to
credential-named variables (detect-secrets' keyword list plus `token`/`credential`), and
quoted high-entropy base64/hex strings (detect-secrets' entropy measure and limits).

Speed: detect-secrets scans line by line (about 6k lines/s); here each plugin runs only on
lines that a cheap, literal-led trigger regex finds in the whole file, so a clean file costs
a few C-level regex passes. A secret is replaced by `<REDACTED:kind>` inside its string, so
code structure, line numbers and parseability survive.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

PLACEHOLDER = "<REDACTED:{kind}>"

_KEYWORD_GATED = "keyword"
_PROVIDER_TRIGGERS: dict[str, tuple[str, ...]] = {
    "AWSKeyDetector": (
        *(f"{prefix}[0-9A-Z]{{16}}" for prefix in ("AKIA", "ASIA", "ABIA", "ACCA", "A3T[A-Z0-9]")),
        _KEYWORD_GATED,
    ),
    "ArtifactoryDetector": (r"AKC[a-zA-Z0-9]{10}", r"AP[\dA-F][a-zA-Z0-9]{8}"),
    "AzureStorageKeyDetector": ("AccountKey=",),
    "BasicAuthDetector": ("://",),
    "CloudantDetector": (r"\.cloudant\.com", _KEYWORD_GATED),
    "DiscordBotTokenDetector": (r"\.[a-zA-Z\d_-]{6}\.[a-zA-Z\d_-]{27}",),
    "GitHubTokenDetector": ("gh[pousr]_",),
    "GitLabTokenDetector": ("gl(?:pat|dt|ft|soat|rt|cbt|imt|ptt|agent|oas)-", "GR1348941"),
    "IbmCosHmacDetector": (_KEYWORD_GATED,),
    "IbmCloudIamDetector": (_KEYWORD_GATED,),
    "JwtTokenDetector": ("eyJ",),
    "MailchimpDetector": (r"-us\d",),
    "NpmDetector": ("_authToken=",),
    "OpenAIDetector": ("T3BlbkFJ",),
    "PypiTokenDetector": ("pypi-AgE",),
    "SendGridDetector": (r"SG\.",),
    "SlackDetector": ("xox[abposr]-", r"hooks\.slack\.com"),
    "SoftlayerDetector": (r"api\.softlayer\.com", _KEYWORD_GATED),
    "SquareOAuthDetector": ("sq0csp-",),
    "StripeDetector": ("k_live_",),
    "TelegramBotTokenDetector": (r":[0-9A-Za-z_-]{35}",),
    "TwilioKeyDetector": ("AC[a-z0-9]{32}", "SK[a-z0-9]{32}"),
}

_EXTRA_PATTERNS: tuple[tuple[str, str], ...] = (
    ("google_api_key", r"AIza[0-9A-Za-z_\-]{35}"),
    ("github_token", r"github_pat_[A-Za-z0-9_]{22,}"),
    ("stripe_access_key", r"k_test_[0-9a-zA-Z]{24,}"),
    ("api_token", r"sk-(?:proj|ant|svcacct|admin)-[A-Za-z0-9_\-]{20,}"),
)

_PEM_BEGIN = re.compile(r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_PEM_END = re.compile(r"-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_PEM_RUN = re.compile(r"[A-Za-z0-9+/=]{8,}")
_QUOTED = re.compile(r"""(["'`])([A-Za-z0-9+/=_\-]{20,})\1""")
_HEX = re.compile(r"[0-9a-fA-F]+")
_STRONG_KEYWORDS = ("token", "credential")
_GATE_WORDS = ("key", "pass", "pwd", "secret", "token", "credential", "contrase")
_IDENT_FORWARD = re.compile(r"[\w.\-]*")
_ASSIGNED_VALUE = re.compile(
    r"""["'\]]{0,2}[ \t]*(?::[ \t]*[\w<>\[\]|. ]{1,40}?[ \t]*)?"""
    r"""(?::=|===?|!==?|=>|=|:)[ \t]*(?:[rbuRBU]{1,2})?(["'`])([^"'`\n]+?)\1"""
)
_DELIMITERS = frozenset(" \t\r\n\"'=:`")
_TOKEN_TAIL = re.compile(r"[A-Za-z0-9_\-.+/=]*")
_LONG_RUN = re.compile(r"[A-Za-z0-9_\-/+]{24}")
_TEMPLATED = re.compile(r"^(?:\$|%\(|%s$|\{.*\}$|<.*>$|\*+$|x+$|\.\.\.)|\$\{|\{\{|%[sd]")


@dataclass(frozen=True)
class Finding:
    """A secret's [start, end) character span; `count` is 0 for extra spans of one secret."""

    start: int
    end: int
    kind: str
    count: int = 1


def _slug(secret_type: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", secret_type.lower()).strip("_")


_Trigger = tuple[str, re.Pattern[str]]


def _literal_prefix(pattern: str) -> str:
    """The literal text every match of `pattern` starts with ("" when none): a cheap `in`
    test on it skips the regex pass for almost every file."""
    if _top_level_alternation(pattern):
        return ""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern) and not pattern[i + 1].isalnum():
            out.append(pattern[i + 1])
            i += 2
            continue
        if c in ".^$*+?{}[]()|\\":
            break
        out.append(c)
        i += 1
    if i < len(pattern) and pattern[i] in "*?{" and out:
        out.pop()
    return "".join(out)


def _top_level_alternation(pattern: str) -> bool:
    depth, i, in_class = 0, 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            return True
        i += 1
    return False


def _trigger(pattern: str) -> _Trigger:
    return _literal_prefix(pattern), re.compile(pattern)


@lru_cache(maxsize=1)
def _providers() -> tuple[tuple[str, Any, tuple[_Trigger, ...], bool], ...]:
    """(kind, plugin, literal-led triggers, runs on keyword lines) per detect-secrets plugin."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class

    classes: list[Any] = list(get_mapping_from_secret_type_to_class().values())
    plugins: dict[str, Any] = {plugin.__name__: plugin for plugin in classes}
    found = []
    for name, triggers in _PROVIDER_TRIGGERS.items():
        cls = plugins.get(name)
        if cls is None:
            continue
        compiled = tuple(_trigger(t) for t in triggers if t != _KEYWORD_GATED)
        found.append((_slug(cls.secret_type), cls(), compiled, _KEYWORD_GATED in triggers))
    return tuple(found)


@lru_cache(maxsize=1)
def _gates() -> tuple[tuple[re.Pattern[str], ...], re.Pattern[str]]:
    """Literal gate patterns (one per word, so each is a fast literal search) and key names."""
    from detect_secrets.plugins.keyword import DENYLIST

    names = re.compile("|".join([*DENYLIST, *_STRONG_KEYWORDS]), re.IGNORECASE)
    return tuple(re.compile(word) for word in _GATE_WORDS), names


@lru_cache(maxsize=1)
def _entropy_plugins() -> tuple[Any, Any]:
    from detect_secrets.plugins.high_entropy_strings import (
        Base64HighEntropyString,
        HexHighEntropyString,
    )

    return Base64HighEntropyString(), HexHighEntropyString()


@lru_cache(maxsize=1)
def _extra_patterns() -> tuple[tuple[str, _Trigger], ...]:
    return tuple((kind, _trigger(pat)) for kind, pat in _EXTRA_PATTERNS)


def _line_bounds(text: str, pos: int) -> tuple[int, int]:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return start, len(text) if end < 0 else end


def _value_spans(plugin: Any, text: str, start: int, end: int, kind: str) -> list[Finding]:
    """Spans of the plugin's patterns in one line: the longest group, else the whole match,
    trimmed of delimiters and extended to the end of the token (JWT signatures included)."""
    found: list[Finding] = []
    for pattern in plugin.denylist:
        for match in pattern.finditer(text, start, end):
            groups = [i for i in range(1, (pattern.groups or 0) + 1) if match.group(i)]
            best = max(groups, key=lambda i: len(match.group(i)), default=0)
            if best and len(match.group(best)) < 8:
                best = 0
            lo, hi = match.span(best)
            while lo < hi and text[lo] in _DELIMITERS:
                lo += 1
            while hi > lo and text[hi - 1] in _DELIMITERS:
                hi -= 1
            tail = _TOKEN_TAIL.match(text, hi, end)
            hi = tail.end() if tail is not None else hi
            if hi - lo >= 6:
                found.append(Finding(lo, hi, kind))
    return found


def _provider_findings(text: str, keyword_lines: dict[int, int]) -> list[Finding]:
    long_lines = {s: e for s, e in keyword_lines.items() if _LONG_RUN.search(text, s, e)}
    found: list[Finding] = []
    for kind, plugin, triggers, keyword_gated in _providers():
        lines = dict(long_lines) if keyword_gated else {}
        for literal, pattern in triggers:
            if literal not in text:
                continue
            for match in pattern.finditer(text):
                start, end = _line_bounds(text, match.start())
                lines[start] = end
        for start, end in sorted(lines.items()):
            found.extend(_value_spans(plugin, text, start, end, kind))
    for kind, (literal, pattern) in _extra_patterns():
        if literal in text:
            found.extend(Finding(m.start(), m.end(), kind) for m in pattern.finditer(text))
    return found


def _pem_findings(text: str) -> list[Finding]:
    found: list[Finding] = []
    for begin in _PEM_BEGIN.finditer(text):
        end_match = _PEM_END.search(text, begin.end(), begin.end() + 20_000)
        if end_match is not None:
            stop = end_match.start()
        else:
            stop = begin.end()
            for _ in range(60):
                line_end = text.find("\n", stop + 1)
                if line_end < 0 or not _PEM_RUN.search(text, stop, line_end):
                    break
                stop = line_end
        runs = list(_PEM_RUN.finditer(text, begin.end(), stop))
        for i, run in enumerate(runs):
            found.append(Finding(run.start(), run.end(), "private_key", 1 if i == 0 else 0))
    return found


def _plausible_value(key: str, value: str) -> bool:
    """Whether an assigned literal looks like a real credential, not a label or template."""
    if len(value) < 4 or any(c.isspace() for c in value) or _TEMPLATED.search(value):
        return False
    if value.lower() == key.lower() or len(set(value)) < 3:
        return False
    lowered = key.lower()
    if not any(w in lowered for w in ("pass", "pwd", "secret", "key", "contras")):
        has_digit = any(c.isdigit() for c in value)
        return len(value) >= 16 and has_digit and any(c.isalpha() for c in value)
    return True


def _keyword_findings(text: str, lower: str) -> tuple[list[Finding], dict[int, int]]:
    """Secrets assigned to credential-named keys, and every line holding a gate word."""
    gates, names = _gates()
    found: list[Finding] = []
    lines: dict[int, int] = {}
    idents: set[int] = set()
    for gate in gates:
        for hit in gate.finditer(lower):
            start, end = _line_bounds(text, hit.start())
            lines[start] = end
            ident = hit.start()
            while ident > start and (text[ident - 1].isalnum() or text[ident - 1] in "_.-"):
                ident -= 1
            if ident in idents:
                continue
            idents.add(ident)
            ident_end = _IDENT_FORWARD.match(text, hit.start()).end()  # type: ignore[union-attr]
            key = text[ident:ident_end]
            if not names.search(key):
                continue
            match = _ASSIGNED_VALUE.match(text, ident_end, end)
            if match is not None and _plausible_value(key, match.group(2)):
                found.append(Finding(match.start(2), match.end(2), "secret_assignment"))
    return found, lines


def _entropy_findings(text: str) -> list[Finding]:
    from detect_secrets.filters.heuristic import is_potential_uuid, is_sequential_string

    b64, hexa = _entropy_plugins()
    found: list[Finding] = []
    for match in _QUOTED.finditer(text):
        value = match.group(2)
        if _HEX.fullmatch(value):
            mixed = any(c.isdigit() for c in value) and any(c.isalpha() for c in value)
            hit = mixed and hexa.calculate_shannon_entropy(value) > hexa.entropy_limit
        else:
            hit = (
                any(c.isdigit() for c in value)
                and any(c.isupper() for c in value)
                and any(c.islower() for c in value)
                and b64.calculate_shannon_entropy(value) > b64.entropy_limit
            )
        if hit and not is_sequential_string(value) and not is_potential_uuid(value):
            found.append(Finding(match.start(2), match.end(2), "high_entropy_string"))
    return found


def warm_up() -> None:
    """Import detect-secrets and build every detector now (before forking parser workers)."""
    _providers()
    _gates()
    _entropy_plugins()
    _extra_patterns()
    from detect_secrets.filters import heuristic  # noqa: F401


def find_secrets(text: str) -> list[Finding]:
    """Every credential in `text`, as non-overlapping spans sorted by position."""
    lower = text.lower()
    if len(lower) != len(text):
        lower = text.encode("ascii", "replace").decode("ascii").lower()
    keyword, keyword_lines = _keyword_findings(text, lower)
    raw = [
        *_pem_findings(text),
        *_provider_findings(text, keyword_lines),
        *keyword,
        *_entropy_findings(text),
    ]
    raw.sort(key=lambda f: (f.start, -f.end))
    merged: list[Finding] = []
    for finding in raw:
        if merged and finding.start < merged[-1].end:
            last = merged[-1]
            if finding.end > last.end:
                merged[-1] = Finding(last.start, finding.end, last.kind, last.count)
            continue
        merged.append(finding)
    return merged


def redact(text: str) -> tuple[str, Counter[str]]:
    """`text` with every secret replaced by `<REDACTED:kind>`, and the count per kind."""
    findings = find_secrets(text)
    counts: Counter[str] = Counter()
    if not findings:
        return text, counts
    parts: list[str] = []
    pos = 0
    for finding in findings:
        parts.append(text[pos : finding.start])
        parts.append(PLACEHOLDER.format(kind=finding.kind))
        counts[finding.kind] += finding.count
        pos = finding.end
    parts.append(text[pos:])
    return "".join(parts), counts
