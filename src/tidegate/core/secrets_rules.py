"""The secret rules: what a leaked credential looks like, as data, and the pure search over text.

Used by the file analyzer (`analyzers.secrets`) and by the image config facts (env values), so a
rule means the same thing wherever it fires. Three kinds of rule:

- TOKEN: a credential with a recognisable shape of its own (AWS key id, GitHub/GitLab/Slack/npm/
  PyPI tokens, Google API keys, Stripe live keys). Found anywhere in a text.
- PRIVATE_KEY: a PEM/PGP armoured private key block with a body (a header alone, as in the
  source code of crypto libraries, is not a key).
- ASSIGNMENT: a value assigned to a secret-looking name (`DB_PASSWORD=...`, `api_key: ...`,
  a JWT assigned to `token`). Names and values are checked against placeholders and, for
  generic values, a minimum entropy, because config files are full of `password: changeme`.

Speed: each rule has literal `keywords`; its regex only runs when one of them is in the text.
All keywords are looked for in one pass of an Aho-Corasick automaton (`ahocorasick-rs`, SIMD
prefiltered, GB/s); without that package, one `bytes in bytes` scan per keyword (about ten times
slower, same results). Most files contain no keyword and cost that one pass.

Nothing here returns a secret: a match carries a redacted hint (at most the first four
characters, fewer for short values, then "****").
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import NamedTuple


class RuleKind(StrEnum):
    TOKEN = "token"
    PRIVATE_KEY = "private-key"
    ASSIGNMENT = "assignment"


@dataclass(frozen=True, slots=True)
class SecretRule:
    """One kind of secret."""

    id: str
    """Stable id reported with findings ("aws-access-key-id")."""
    title: str
    severity: str
    """"critical" | "high" | "medium" | "low"."""
    kind: RuleKind
    keywords: tuple[bytes, ...]
    """The regex runs only when one of these literals occurs in the text."""
    pattern: re.Pattern[bytes]
    """Group "secret" holds the secret value."""
    min_entropy: float = 0.0
    """Minimum Shannon entropy (bits per character) of the value."""
    word_start: bool = True
    """The match must not continue a word (no letter, digit, "_" or "-" right before it)."""


class SecretMatch(NamedTuple):
    """One secret found in a text: which rule, on which line (1-based), and a redacted hint."""

    rule: SecretRule
    line: int
    redacted: str


_WORD = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_E = rb"(?![A-Za-z0-9_])"
# Bounded repeats: an unbounded lazy prefix would make the search quadratic on long lines.
_SECRET_NAME = (
    rb"[A-Za-z0-9_.\-]{0,60}?(?:password|passwd|passphrase|pwd|secret|api_?key|apikey"
    rb"|access_?key|auth_?key|private_?key|client_?secret|token|credentials?)[A-Za-z0-9_.\-]{0,60}"
)
_ASSIGN = rb"""["']?[ \t]*(?::=|=>|[:=])[ \t]*"""


def _token(
    rule_id: str, title: str, severity: str, keywords: tuple[bytes, ...], body: bytes
) -> SecretRule:
    pattern = re.compile(rb"(?P<secret>" + body + rb")" + _E)
    return SecretRule(rule_id, title, severity, RuleKind.TOKEN, keywords, pattern)


AWS_KEY_ID = _token(
    "aws-access-key-id",
    "AWS access key ID",
    "critical",
    (b"AKIA", b"ASIA", b"ABIA", b"ACCA", b"A3T"),
    rb"(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}",
)
AWS_SECRET_KEY = SecretRule(
    "aws-secret-access-key",
    "AWS secret access key",
    "critical",
    RuleKind.ASSIGNMENT,
    (b"secret_access_key", b"SECRET_ACCESS_KEY", b"SecretAccessKey", b"secretAccessKey"),
    re.compile(
        rb"(?i)secret_?access_?key"
        + _ASSIGN
        + rb"""["']?(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"""
    ),
    min_entropy=3.5,
    word_start=False,
)
_AWS_SECRET_NEARBY = re.compile(
    rb"(?<![A-Za-z0-9/+])(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
)
_AWS_NEARBY_WINDOW = 400
"""Bytes on either side of an AWS key id searched for its secret key (credentials files, .env)."""

PRIVATE_KEY = SecretRule(
    "private-key",
    "Private key",
    "high",
    RuleKind.PRIVATE_KEY,
    (b"PRIVATE KEY",),
    re.compile(rb"-----BEGIN[ A-Z0-9]{0,30}PRIVATE KEY(?: BLOCK)?-----"),
)
_PEM_END = b"-----END"
_PEM_MAX_BODY = 64 * 1024
_PEM_MIN_BODY = 40
_PEM_BODY = re.compile(rb"[A-Za-z0-9+/=]+")

TOKEN_RULES: tuple[SecretRule, ...] = (
    AWS_KEY_ID,
    _token(
        "github-pat",
        "GitHub personal access token",
        "critical",
        (b"ghp_",),
        rb"ghp_[A-Za-z0-9]{36}",
    ),
    _token(
        "github-fine-grained-pat",
        "GitHub fine-grained personal access token",
        "critical",
        (b"github_pat_",),
        rb"github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}",
    ),
    _token(
        "github-oauth", "GitHub OAuth access token", "critical", (b"gho_",), rb"gho_[A-Za-z0-9]{36}"
    ),
    _token(
        "github-app-token",
        "GitHub App token",
        "critical",
        (b"ghu_", b"ghs_"),
        rb"gh[us]_[A-Za-z0-9]{36}",
    ),
    _token(
        "github-refresh-token",
        "GitHub refresh token",
        "critical",
        (b"ghr_",),
        rb"ghr_[A-Za-z0-9]{36,76}",
    ),
    _token(
        "gitlab-pat",
        "GitLab personal access token",
        "critical",
        (b"glpat-",),
        rb"glpat-[A-Za-z0-9_\-]{20,}",
    ),
    _token(
        "slack-token",
        "Slack token",
        "high",
        (b"xoxb-", b"xoxa-", b"xoxp-", b"xoxr-", b"xoxs-"),
        rb"xox[baprs]-[0-9A-Za-z][0-9A-Za-z\-]{8,}[0-9A-Za-z]",
    ),
    SecretRule(
        "slack-webhook-url",
        "Slack webhook URL",
        "medium",
        RuleKind.TOKEN,
        (b"hooks.slack.com",),
        re.compile(
            rb"hooks\.slack\.com/(?:services|workflows)/"
            rb"(?P<secret>[A-Za-z0-9_]{8,}/[A-Za-z0-9_]{8,}/[A-Za-z0-9_]{16,})"
        ),
    ),
    _token("google-api-key", "Google API key", "high", (b"AIza",), rb"AIza[0-9A-Za-z_\-]{35}"),
    _token(
        "stripe-secret-key",
        "Stripe live secret key",
        "critical",
        (b"sk_live_", b"rk_live_"),
        rb"[sr]k_live_[0-9A-Za-z]{24,99}",
    ),
    _token("npm-access-token", "npm access token", "critical", (b"npm_",), rb"npm_[A-Za-z0-9]{36}"),
    _token(
        "pypi-upload-token",
        "PyPI upload token",
        "critical",
        (b"pypi-AgEIcHlwaS5vcmc",),
        rb"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}",
    ),
    SecretRule(
        "jwt-token",
        "JSON Web Token assigned to a secret",
        "high",
        RuleKind.ASSIGNMENT,
        (b"eyJ",),
        re.compile(
            rb"(?P<secret>eyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,})"
        ),
    ),
)
"""Rules that apply to any text."""

_JWT_NAME = re.compile(
    rb"(?i)(?:"
    + _SECRET_NAME
    + rb"|jwt|bearer|authorization)"
    + _ASSIGN
    + rb"""["']?(?:Bearer[ \t]+)?$"""
)
"""What must precede a JWT on its line: JWTs alone are everywhere (examples, test vectors)."""
_JWT_NAME_WINDOW = 120

GENERIC_ASSIGNMENT = SecretRule(
    "generic-secret-assignment",
    "Password or secret assigned in a configuration file",
    "medium",
    RuleKind.ASSIGNMENT,
    (),
    re.compile(
        rb"(?im)^[ \t]*(?:export[ \t]+)?[\"']?(?P<name>"
        + _SECRET_NAME
        + rb")"
        + _ASSIGN
        + rb"(?P<secret>[^\r\n]*?)[ \t]*\r?$"
    ),
    min_entropy=2.5,
)
"""Only for configuration files (.env, *.conf, *.ini, *.yaml, *.properties ...)."""

ENV_SECRET = SecretRule(
    "env-secret",
    "Secret-looking value in an environment variable",
    "high",
    RuleKind.ASSIGNMENT,
    (),
    re.compile(rb"(?i)^" + _SECRET_NAME + rb"$"),
)
"""An image config env var named like a secret (PASSWORD, TOKEN ...) whose value is real."""

ALL_RULES: tuple[SecretRule, ...] = (
    PRIVATE_KEY,
    *TOKEN_RULES,
    AWS_SECRET_KEY,
    GENERIC_ASSIGNMENT,
    ENV_SECRET,
)

_NOT_SECRET_NAME = re.compile(
    r"(?i)(?:_|\.|-)(?:file|path|dir|length|len|min|max|policy|prompt|type|field|env|var|enabled"
    r"|required|timeout|expiry|expires|age|regex|pattern|name|header|url|uri|hash_algo|mode"
    r"|command|cmd|size|count|ttl|format|location)$"
)
"""Names whose value is about a secret, not the secret (`PASSWORD_FILE`, `token_ttl`)."""
_PLACEHOLDER_WORDS = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "token",
        "changeme",
        "change_me",
        "change-me",
        "none",
        "null",
        "nil",
        "true",
        "false",
        "yes",
        "no",
        "on",
        "off",
        "empty",
        "default",
        "test",
        "testing",
        "example",
        "sample",
        "dummy",
        "placeholder",
        "redacted",
        "hidden",
        "todo",
        "fixme",
        "required",
        "optional",
        "undefined",
        "unset",
        "string",
        "str",
        "value",
        "xxx",
        "mypassword",
        "yourpassword",
        "your_password",
        "secretkey",
        "your_secret",
        "<redacted>",
        # OpenSSL's shipped openssl.cnf: the published password of the Insta demo CMP server.
        "pass:insta",
    }
)
_PLACEHOLDER_PARTS = (
    "example",
    "changeme",
    "change_me",
    "change-me",
    "placeholder",
    "dummy",
    "your_",
    "your-",
    "xxxx",
    "****",
    "....",
    "<",
    "${",
    "{{",
    "%(",
    "#{",
    "$(",
    "redacted",
    "insert",
    "replace",
)


def find_secrets(text: bytes, *, assignments: bool = False) -> list[SecretMatch]:
    """Every secret in `text`, in order of position (at most one per rule and line).

    `assignments` adds the generic `name = value` rule: pass it for configuration files only,
    elsewhere (source code, scripts) it would mostly find variables, not secrets.
    """
    present = _keyword_finder()(text)
    if not present and not assignments:
        return []
    hits: list[_Hit] = []
    if present.intersection(PRIVATE_KEY.keywords):
        hits += (_Hit(start, PRIVATE_KEY, body) for start, body in _private_keys(text))
    for rule in (*TOKEN_RULES, AWS_SECRET_KEY):
        if present.intersection(rule.keywords):
            hits += _anchored_hits(rule, text, present)
    key_ids = sorted(h.start for h in hits if h.rule is AWS_KEY_ID)
    hits += _aws_secrets_near(text, key_ids[:_MAX_HITS_PER_RULE])
    if assignments:
        hits += _generic_assignments(text)
    return _matches(text, hits)


class _Hit(NamedTuple):
    start: int
    rule: SecretRule
    value: bytes


_MAX_HITS_PER_RULE = 100
"""Enough to report a file; more would only let a hostile file make the scan slow."""


def _anchored_hits(rule: SecretRule, text: bytes, present: set[bytes]) -> list[_Hit]:
    """Matches of `rule` starting where one of its keywords starts a word.

    Trying the regex only there (instead of `finditer` at every position) is fast and linear:
    the token classes are word characters, so two tries never scan the same run of characters.
    A text with very many keyword occurrences (hostile, or a base64 blob full of "eyJ") is
    searched with a look-behind regex instead, slower per byte but without a Python loop.
    """
    hits: list[_Hit] = []
    for keyword in rule.keywords:
        if keyword not in present:
            continue
        if text.count(keyword) > _MAX_TRIES:
            candidates = _word_start(rule).finditer(text)
            hits += _checked(rule, text, candidates, _MAX_HITS_PER_RULE - len(hits))
            continue
        pos = text.find(keyword)
        while pos >= 0 and len(hits) < _MAX_HITS_PER_RULE:
            m = None
            if not rule.word_start or pos == 0 or text[pos - 1] not in _WORD:
                m = rule.pattern.match(text, pos)
            if m is not None:
                hits += _checked(rule, text, (m,), 1)
            pos = text.find(keyword, m.end() if m is not None else pos + 1)
    return hits


_MAX_TRIES = 1000


@cache
def _word_start(rule: SecretRule) -> re.Pattern[bytes]:
    if not rule.word_start:
        return rule.pattern
    return re.compile(rb"(?<![A-Za-z0-9_\-])(?:" + rule.pattern.pattern + rb")", rule.pattern.flags)


def _checked(
    rule: SecretRule, text: bytes, candidates: Iterable[re.Match[bytes]], limit: int
) -> list[_Hit]:
    hits: list[_Hit] = []
    for m in candidates:
        if len(hits) >= limit:
            break
        if _accepted(rule, text, m.start(), m.group("secret")):
            hits.append(_Hit(m.start("secret"), rule, m.group("secret")))
    return hits


def _accepted(rule: SecretRule, text: bytes, start: int, value: bytes) -> bool:
    """Rule-specific checks of a match: placeholders, randomness, the name a JWT is given."""
    decoded = value.decode("latin-1")
    if rule is AWS_SECRET_KEY:
        return _looks_random(decoded, rule.min_entropy)
    if _is_placeholder(decoded):
        return False
    if rule.kind is RuleKind.ASSIGNMENT:
        line_start = max(text.rfind(b"\n", 0, start) + 1, start - _JWT_NAME_WINDOW)
        return _JWT_NAME.search(text, line_start, start) is not None
    return True


def _generic_assignments(text: bytes) -> list[_Hit]:
    """`name = value` lines whose name says secret; only lines holding such a word are parsed."""
    hits: list[_Hit] = []
    seen_lines: set[int] = set()
    for tries, word in enumerate(_GENERIC_NAME_WORDS.finditer(text.lower())):
        if tries >= _MAX_GENERIC_TRIES or len(hits) >= _MAX_HITS_PER_RULE:
            break
        line_start = text.rfind(b"\n", 0, word.start()) + 1
        if line_start in seen_lines:
            continue
        seen_lines.add(line_start)
        line_end = text.find(b"\n", word.end())
        m = GENERIC_ASSIGNMENT.pattern.match(
            text, line_start, len(text) if line_end < 0 else line_end
        )
        if m is None:
            continue
        raw = m.group("secret").decode("utf-8", "replace").strip()
        value = _unquote(raw)
        quoted = len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'`"
        # An unquoted value with blanks is a list or prose ("passwd: files systemd").
        if not quoted and any(c.isspace() for c in value):
            continue
        name = m.group("name").decode("utf-8", "replace")
        if _plausible_assignment(name, value, GENERIC_ASSIGNMENT.min_entropy):
            hits.append(_Hit(m.start("secret"), GENERIC_ASSIGNMENT, value.encode("utf-8")))
    return hits


_GENERIC_NAME_WORDS = re.compile(rb"pass|pwd|secret|key|token|credential")
"""Lower-case words every secret name of `GENERIC_ASSIGNMENT` contains (searched lower-cased)."""
_MAX_GENERIC_TRIES = 20_000


def _matches(text: bytes, hits: list[_Hit]) -> list[SecretMatch]:
    """One match per rule and line, line numbers counted in one pass over the text."""
    found: dict[tuple[str, int], SecretMatch] = {}
    line, counted_to = 1, 0
    for hit in sorted(hits, key=lambda h: h.start):
        line += text.count(b"\n", counted_to, hit.start)
        counted_to = hit.start
        found.setdefault(
            (hit.rule.id, line), SecretMatch(hit.rule, line, redact(hit.value.decode("latin-1")))
        )
    # A line holding a specific rule's secret is not reported again as a generic assignment.
    specific = {line for (rule_id, line) in found if rule_id != GENERIC_ASSIGNMENT.id}
    return sorted(
        (
            m
            for (rule_id, line), m in found.items()
            if rule_id != GENERIC_ASSIGNMENT.id or line not in specific
        ),
        key=lambda m: (m.line, m.rule.id),
    )


def env_value_looks_secret(name: str, value: str) -> str | None:
    """The id of the rule an environment variable's value trips, or None.

    A value of a recognisable shape (a token, a key) counts whatever the name; otherwise the name
    must say "secret" (PASSWORD, TOKEN, API_KEY ...) and the value must not be a placeholder.
    """
    if not value:
        return None
    matches = find_secrets(value.encode("utf-8", "surrogateescape"))
    if matches:
        return matches[0].rule.id
    joined = f"{name}={value}".encode("utf-8", "surrogateescape")
    for m in find_secrets(joined):
        return m.rule.id
    if ENV_SECRET.pattern.match(name.encode("utf-8", "surrogateescape")) and _plausible_assignment(
        name, _unquote(value), ENV_SECRET.min_entropy
    ):
        return ENV_SECRET.id
    return None


def redact(value: str) -> str:
    """At most the first 4 characters (a quarter of a short value), then "****"."""
    shown = min(4, len(value) // 4)
    return value[:shown] + "****"


def shannon_entropy(value: str) -> float:
    """Bits per character of `value`'s character distribution."""
    if not value:
        return 0.0
    total = len(value)
    return -sum(n / total * math.log2(n / total) for n in Counter(value).values())


def _private_keys(text: bytes) -> list[tuple[int, bytes]]:
    """(position, body) of every armoured private key block that has a real body."""
    keys: list[tuple[int, bytes]] = []
    headers = list(PRIVATE_KEY.pattern.finditer(text))
    for i, m in enumerate(headers):
        # A body ends before the next header: bodies never overlap, the work stays linear.
        limit = headers[i + 1].start() if i + 1 < len(headers) else len(text)
        end = text.find(_PEM_END, m.end(), min(limit, m.end() + _PEM_MAX_BODY))
        if end < 0:
            continue
        # Keys embedded in source code carry "\n" escapes instead of line breaks.
        lines = text[m.end() : end].replace(b"\\n", b"\n").replace(b"\\r", b"\n").splitlines()
        # Armour headers ("Proc-Type: 4,ENCRYPTED", "Version: GnuPG") precede the body.
        body = b"".join(line.strip().strip(b"\"'") for line in lines if b":" not in line)
        if len(body) >= _PEM_MIN_BODY and _PEM_BODY.fullmatch(body):
            keys.append((m.start(), body))
            if len(keys) >= _MAX_HITS_PER_RULE:
                break
    return keys


KEYWORDS: tuple[bytes, ...] = tuple(
    dict.fromkeys(k for rule in (PRIVATE_KEY, *TOKEN_RULES, AWS_SECRET_KEY) for k in rule.keywords)
)
"""Every rule keyword, without repeats, in rule order."""


@cache
def _keyword_finder() -> Callable[[bytes], set[bytes]]:
    """A function giving the keywords present in a text; the automaton is built on first use."""
    try:
        import ahocorasick_rs  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return lambda text: {k for k in KEYWORDS if k in text}
    # Leftmost-first matching is what enables the library's SIMD prefilter. Its matches do not
    # overlap, which loses nothing: no keyword contains another, and a keyword overlapping the
    # end of an earlier match starts inside a word, where no rule accepts a token.
    automaton = ahocorasick_rs.BytesAhoCorasick(
        KEYWORDS,
        matchkind=ahocorasick_rs.MatchKind.LeftmostFirst,
        implementation=ahocorasick_rs.Implementation.ContiguousNFA,
    )
    overlap = max(len(k) for k in KEYWORDS) - 1

    def present(text: bytes) -> set[bytes]:
        # In slices, so that a text packed with keywords ("eyJeyJ...") costs one slice's worth
        # of match objects before the plain substring search takes over.
        found: set[bytes] = set()
        view = memoryview(text)
        for lo in range(0, len(text), _PREFILTER_SLICE):
            matches = automaton.find_matches_as_indexes(view[lo : lo + _PREFILTER_SLICE + overlap])
            found.update(KEYWORDS[i] for i, _, _ in matches)
            if len(matches) > _MAX_TRIES:
                found.update(k for k in KEYWORDS if k not in found and k in text)
                break
        return found

    return present


_PREFILTER_SLICE = 256 * 1024


def _aws_secrets_near(text: bytes, key_id_positions: list[int]) -> list[_Hit]:
    """Unnamed AWS secret keys: 40 random characters next to a key id (credentials, .env)."""
    hits: list[_Hit] = []
    searched_to = 0
    for position in key_id_positions:
        lo = max(searched_to, position - _AWS_NEARBY_WINDOW)
        hi = position + _AWS_NEARBY_WINDOW
        for m in _AWS_SECRET_NEARBY.finditer(text, lo, hi):
            if _looks_random(m.group("secret").decode("ascii"), AWS_SECRET_KEY.min_entropy):
                hits.append(_Hit(m.start("secret"), AWS_SECRET_KEY, m.group("secret")))
        searched_to = max(searched_to, hi)
    return hits


def _looks_random(value: str, min_entropy: float) -> bool:
    # Mixed case keeps hex digests (sha1 is 40 characters too) out.
    return (
        shannon_entropy(value) >= min_entropy
        and value.lower() != value
        and value.upper() != value
        and not _is_placeholder(value)
    )


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'`":
        return value[1:-1]
    # An unquoted value may end in a trailing comment or a separator (YAML flow, JSON-ish).
    return value.split(" #", 1)[0].rstrip(",;").strip()


def _is_placeholder(value: str) -> bool:
    lowered = value.lower()
    if lowered in _PLACEHOLDER_WORDS:
        return True
    if any(part in lowered for part in _PLACEHOLDER_PARTS):
        return True
    # "$VAR", "%VAR%", "@VAR@": a reference to a value, not the value.
    return (
        lowered.startswith("$")
        or (lowered.startswith("%") and lowered.endswith("%"))
        or (lowered.startswith("@") and lowered.endswith("@"))
    )


def _plausible_assignment(name: str, value: str, min_entropy: float) -> bool:
    """True when `value` assigned to `name` is likely a real secret."""
    # "--token-secret=..." is a command line flag in an example, not a setting.
    if name.startswith("-") or _NOT_SECRET_NAME.search(name):
        return False
    if len(value) < 4 or _is_placeholder(value):
        return False
    if len(set(value)) == 1 or value.isdigit():
        return False
    # A path, a list or a nested block is configuration about a secret, not the secret.
    if value[0] in "/[{(|>&*!" or value.startswith("~/") or value.startswith("file:"):
        return False
    if not min_entropy:
        return True
    return len(value) >= 6 and shannon_entropy(value) >= min_entropy
