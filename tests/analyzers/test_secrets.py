"""Secrets in files and env values: what is found, what is not, and that nothing leaks.

Every secret here is FAKE and built at test time (prefixes joined to random bodies), so the
repository holds no secret-looking literal and secret scanners pointed at it stay quiet.
"""

from __future__ import annotations

import random
import shutil
import string
import subprocess
import sys
from pathlib import Path

import pytest

from tidegate.analyzers.secrets import MAX_SIZE, SecretsAnalyzer, is_config_file
from tidegate.core import secrets_rules
from tidegate.core.files import Entry, EntryKind
from tidegate.core.models import FileFindings
from tidegate.core.secrets_rules import (
    KEYWORDS,
    env_value_looks_secret,
    find_secrets,
    redact,
    shannon_entropy,
)

LAYER = "sha256:" + "cd" * 32
_rng = random.Random(20261126)
ALNUM = string.ascii_letters + string.digits
UPPER_B32 = string.ascii_uppercase + "234567"
B64 = ALNUM + "+/"


def rand(n: int, alphabet: str = ALNUM) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


def dashes(word: str) -> str:
    return "-----" + word + "-----"


def pem(kind: str, body_lines: int = 8, headers: str = "") -> str:
    label = f"{kind} PRIVATE KEY".strip()
    body = "\n".join(rand(64, B64) for _ in range(body_lines))
    return f"{dashes('BEGIN ' + label)}\n{headers}{body}\n{dashes('END ' + label)}\n"


# Fake credentials, assembled so that no source line holds one.
AWS_ID = "AK" + "IA" + rand(16, UPPER_B32)
AWS_STS_ID = "AS" + "IA" + rand(16, UPPER_B32)
AWS_SECRET = rand(20, string.ascii_letters) + rand(18, B64) + "Zz"
GH_PAT = "gh" + "p_" + rand(36)
GH_OAUTH = "gh" + "o_" + rand(36)
GH_APP_USER = "gh" + "u_" + rand(36)
GH_APP_SERVER = "gh" + "s_" + rand(36)
GH_REFRESH = "gh" + "r_" + rand(76)
GH_FINE = "github" + "_pat_" + rand(22) + "_" + rand(59)
GITLAB = "gl" + "pat-" + rand(20)
SLACK_BOT = "xo" + "xb-" + rand(12, string.digits) + "-" + rand(13, string.digits) + "-" + rand(24)
SLACK_USER = "xo" + "xp-" + rand(12, string.digits) + "-" + rand(24)
SLACK_HOOK_PATH = "T" + rand(8, UPPER_B32) + "/B" + rand(10, UPPER_B32) + "/" + rand(24)
SLACK_HOOK = "https://hooks." + "slack.com/services/" + SLACK_HOOK_PATH
GOOGLE = "AI" + "za" + rand(35, ALNUM + "_-")
STRIPE = "sk" + "_live_" + rand(32)
STRIPE_RESTRICTED = "rk" + "_live_" + rand(32)
NPM = "np" + "m_" + rand(36)
PYPI = "pypi-" + "AgEIcHlwaS5vcmc" + rand(70, ALNUM + "_-")
JWT = "ey" + "J" + rand(30, ALNUM + "_-") + ".ey" + "J" + rand(40, ALNUM + "_-") + "." + rand(43)
PASSWORD = "Xk9mQ2vL7pR4wZ"

ALL_SECRETS = [
    AWS_ID,
    AWS_STS_ID,
    AWS_SECRET,
    GH_PAT,
    GH_OAUTH,
    GH_APP_USER,
    GH_APP_SERVER,
    GH_REFRESH,
    GH_FINE,
    GITLAB,
    SLACK_BOT,
    SLACK_USER,
    SLACK_HOOK_PATH,
    GOOGLE,
    STRIPE,
    STRIPE_RESTRICTED,
    NPM,
    PYPI,
    JWT,
    PASSWORD,
]


def scan(path: str, content: bytes, chunk: int = 1024 * 1024) -> FileFindings | None:
    """Run the analyzer as the scan does: `wants`, then the content in chunks."""
    entry = Entry(path=path, kind=EntryKind.FILE, mode=0o644, size=len(content))
    analyzer = SecretsAnalyzer()
    if not analyzer.wants(entry):
        return None
    consumer = analyzer.begin(entry, LAYER)
    for start in range(0, len(content), chunk):
        consumer.feed(content[start : start + chunk])
    return consumer.finish()


def rule_lines(found: FileFindings | None) -> list[tuple[str, int | None]]:
    assert found is not None, "the analyzer did not want the file"
    return [(s.rule_id, s.line) for s in found.secrets]


FOUND = [
    ("/root/.ssh/id_rsa", pem("RSA"), [("private-key", 1)]),
    ("/etc/ssl/private/server.key", pem(""), [("private-key", 1)]),
    ("/home/app/.ssh/id_ed25519", pem("OPENSSH"), [("private-key", 1)]),
    ("/app/certs/ec.pem", "# ours\n" + pem("EC"), [("private-key", 2)]),
    ("/app/dsa.pem", pem("DSA"), [("private-key", 1)]),
    (
        "/app/encrypted.pem",
        pem("RSA", headers="Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,0A1B2C3D\n\n"),
        [("private-key", 1)],
    ),
    (
        "/root/secret.asc",
        pem("PGP", headers="Version: GnuPG v2\n\n").replace("KEY-----", "KEY BLOCK-----"),
        [("private-key", 1)],
    ),
    (
        "/app/settings.py",
        'KEY = "' + pem("RSA").replace("\n", "\\n") + '"\n',
        [("private-key", 1)],
    ),
    # A key file is read even in a place that is otherwise skipped.
    ("/usr/share/doc/app/deploy.pem", pem("RSA"), [("private-key", 1)]),
    (
        "/root/.aws/credentials",
        f"[default]\naws_access_key_id = {AWS_ID}\naws_secret_access_key = {AWS_SECRET}\n",
        [("aws-access-key-id", 2), ("aws-secret-access-key", 3)],
    ),
    (
        "/app/deploy.sh",
        f"#!/bin/sh\nexport K={AWS_STS_ID}\nexport S={AWS_SECRET}\naws s3 ls\n",
        [("aws-access-key-id", 2), ("aws-secret-access-key", 3)],
    ),
    # A hex digest (sha1 is 40 characters too) next to a key id is not its secret key.
    ("/app/x.sh", f"K={AWS_ID}\nSHA1={rand(40, '0123456789abcdef')}\n", [("aws-access-key-id", 1)]),
    ("/app/ci.sh", f"git clone https://{GH_PAT}@github.com/o/r\n", [("github-pat", 1)]),
    ("/app/a.json", f'{{"token": "{GH_OAUTH}"}}', [("github-oauth", 1)]),
    (
        "/app/b.txt",
        f"{GH_APP_USER}\n{GH_APP_SERVER}\n",
        [("github-app-token", 1), ("github-app-token", 2)],
    ),
    ("/app/c.txt", GH_REFRESH, [("github-refresh-token", 1)]),
    ("/app/d.txt", f"pat={GH_FINE}", [("github-fine-grained-pat", 1)]),
    ("/app/.gitlab-token", GITLAB, [("gitlab-pat", 1)]),
    (
        "/app/slack.js",
        f"const a = '{SLACK_BOT}';\nconst b = '{SLACK_USER}';\n",
        [("slack-token", 1), ("slack-token", 2)],
    ),
    ("/app/hook.rb", f'URL = "{SLACK_HOOK}"\n', [("slack-webhook-url", 1)]),
    (
        "/srv/www/maps.html",
        f'<script src="https://maps/api/js?key={GOOGLE}"></script>',
        [("google-api-key", 1)],
    ),
    (
        "/app/pay.py",
        f"stripe.api_key = '{STRIPE}'\nr = '{STRIPE_RESTRICTED}'\n",
        [("stripe-secret-key", 1), ("stripe-secret-key", 2)],
    ),
    ("/root/.npmrc", f"//registry.npmjs.org/:_authToken={NPM}\n", [("npm-access-token", 1)]),
    (
        "/root/.pypirc",
        f"[pypi]\nusername = __token__\npassword = {PYPI}\n",
        [("pypi-upload-token", 3)],
    ),
    ("/app/client.js", f'const API_TOKEN = "{JWT}";\n', [("jwt-token", 1)]),
    ("/app/curl.sh", f'curl -H "Authorization: Bearer {JWT}" https://api\n', [("jwt-token", 1)]),
    # Generic assignments, in configuration files only.
    ("/app/.env", f"DEBUG=1\nDB_PASSWORD={PASSWORD}\n", [("generic-secret-assignment", 2)]),
    (
        "/app/.env.production",
        f'export API_SECRET="{PASSWORD}"\n',
        [("generic-secret-assignment", 1)],
    ),
    (
        "/app/application.properties",
        f"spring.datasource.password={PASSWORD}\n",
        [("generic-secret-assignment", 1)],
    ),
    (
        "/etc/app/config.yaml",
        f"db:\n  host: x\n  password: '{PASSWORD}'  \n",
        [("generic-secret-assignment", 3)],
    ),
    ("/etc/app/app.ini", f"[db]\npassword = {PASSWORD}\n", [("generic-secret-assignment", 2)]),
    (
        "/etc/mysql/conf.d/client.cnf",
        f"[client]\npassword={PASSWORD}\n",
        [("generic-secret-assignment", 2)],
    ),
    # A specific rule wins over the generic one on the same line.
    ("/app/.env", f"GITHUB_TOKEN={GH_PAT}\n", [("github-pat", 1)]),
    # The application's own tests are the owner's: scanned.
    ("/app/tests/fixtures/key.pem", pem("RSA"), [("private-key", 1)]),
    ("/app/server_test.go", "const k = `" + pem("EC") + "`\n", [("private-key", 1)]),
]


@pytest.mark.parametrize(
    ("path", "content", "expected"), FOUND, ids=[f"{c[0]}-{c[2][0][0]}" for c in FOUND]
)
def test_secrets_found(path: str, content: str, expected: list[tuple[str, int]]) -> None:
    found = scan(path, content.encode())
    assert rule_lines(found) == expected
    assert found is not None
    for secret in found.secrets:
        assert (secret.path, secret.layer) == (path, LAYER)
        assert secret.title
        assert secret.severity in ("critical", "high", "medium", "low")


NOT_FOUND = [
    # Placeholders and references in config files.
    ("/app/.env", "DB_PASSWORD=changeme\nAPI_KEY=${API_KEY}\nSECRET=<password>\n"),
    ("/app/.env", "PASSWORD=example-password\nTOKEN=\nAPI_SECRET=''\nDB_PASS=\"\"\n"),
    ("/app/.env", "MYSQL_ALLOW_EMPTY_PASSWORD=yes\nPASSWORD_MIN_LENGTH=12\n"),
    ("/app/.env", "DB_PASSWORD_FILE=/run/secrets/db\nSECRET_PATH=/etc/secret\n"),
    ("/etc/app.conf", "password = $DB_PASSWORD\ntoken = {{ vault_token }}\nsecret = %(secret)s\n"),
    ("/etc/ssl/openssl.cnf", "secret = pass:insta # can be used for both client and server\n"),
    ("/etc/app.conf", "# password = Xk9mQ2vL7pR4wZ\n; secret = Xk9mQ2vL7pR4wZ\n"),
    ("/etc/app.yaml", "password: xxxxxxxxxxxx\ntoken: '********'\nsecret: null\n"),
    ("/etc/app.yaml", "auth:\n  password:\n    from_env: DB\n  token: [a, b]\n"),
    ("/etc/app.yaml", "password: aaaaaaaaaa\nsecret: 123456789\npassword: aaabbb\n"),
    ("/etc/cli.yaml", "examples: |\n  --webhook-secret-version=projects/p1/secrets/s/versions/1\n"),
    ("/etc/nsswitch.conf", "passwd:         files systemd\nshadow: files\n"),
    ("/etc/security/pwquality.conf", "# minlen = 9\nminlen = 9\n"),
    # A generic assignment outside a config file is a program variable, not a setting.
    ("/app/main.py", f"password = '{PASSWORD}'\n"),
    # The AWS documentation's example key, and a hex digest next to a key id.
    ("/app/README.txt", "aws_access_key_id = " + "AKIA" + "IOSFODNN7" + "EXAMPLE\n"),
    # Tokens glued inside a longer word are not tokens.
    ("/app/y.txt", "x" + GH_PAT + "\n" + "abc" + NPM + "\n"),
    # A JWT on its own (docs, test vectors) is not a secret assignment.
    ("/app/doc.txt", f"An example looks like {JWT} and decodes to JSON.\n"),
    # The header of a key in a crypto library's code, with no key body.
    ("/app/crypto.py", "HEADER = b'" + dashes("BEGIN RSA PRIVATE KEY") + "'\nif line == HEADER:\n"),
    ("/app/pem.txt", dashes("BEGIN PRIVATE KEY") + "\n...\n" + dashes("END PRIVATE KEY") + "\n"),
    # Test accounts: Stripe test keys are meant to be shared.
    ("/app/pay.py", "stripe.api_key = 'sk" + "_test_" + rand(32) + "'\n"),
]


@pytest.mark.parametrize(("path", "content"), NOT_FOUND)
def test_no_false_alarm(path: str, content: str) -> None:
    found = scan(path, content.encode())
    assert rule_lines(found) == []


@pytest.mark.parametrize(
    "path",
    [
        "/usr/share/doc/openssl/README",
        "/usr/share/man/man1/ssh.1",
        "/usr/share/locale/de/LC_MESSAGES/x.txt",
        "/usr/include/openssl/pem.h",
        "/usr/lib/python3.11/test/keycert.txt",
        "/usr/local/lib/python3.12/test/certdata/x.txt",
        "/usr/share/ca-certificates/mozilla/x.crt",
        "/etc/ssl/certs/ca-certificates.crt",
        "/var/lib/dpkg/status",
        "/lib/apk/db/installed",
        "/var/lib/rpm/rpmdb.sqlite",
        "/app/__pycache__/settings.cpython-311.pyc",
        "/usr/lib/x86_64-linux-gnu/libssl.so.3",
        "/app/lib/app.jar",
        # Vendored packages' own test fixtures (Trivy-style allow rule), key files included.
        "/usr/lib/python3/dist-packages/paramiko/tests/test_rsa.key",
        "/usr/local/lib/python3.11/site-packages/requests/tests/data/key.pem",
        "/app/node_modules/jsonwebtoken/test/priv.pem",
        "/root/go/pkg/mod/golang.org/x/crypto@v0.1.0/ssh/testdata/keys.go",
        "/app/vendor/github.com/x/y/testdata/id_rsa",
        "/usr/local/go/src/crypto/tls/example_test.go",
        "/usr/share/go-1.19/src/crypto/tls/handshake_test.go",
        "/root/.pyenv/versions/3.13.0/lib/python3.13/test/certdata/keycert.pem",
    ],
)
def test_noisy_and_vendored_test_paths_are_not_read(path: str) -> None:
    assert scan(path, (pem("RSA") + GH_PAT).encode()) is None


@pytest.mark.parametrize(
    ("path", "wanted"),
    [("/app/.env", True), ("/app/empty", False), ("/app/huge.txt", False), ("/app/max.txt", True)],
)
def test_size_limits(path: str, wanted: bool) -> None:
    size = {"/app/empty": 0, "/app/huge.txt": MAX_SIZE + 1, "/app/max.txt": MAX_SIZE}.get(path, 10)
    entry = Entry(path=path, kind=EntryKind.FILE, mode=0o644, size=size)
    assert SecretsAnalyzer().wants(entry) is wanted
    assert not SecretsAnalyzer().wants(Entry(path=path, kind=EntryKind.SYMLINK, size=size))


@pytest.mark.parametrize("nul_at", [0, 100, 8191])
def test_binary_files_are_skipped(nul_at: int) -> None:
    # A token embedded in a binary (e.g. a base64 blob in a compiled program) is not reported:
    # binaries are the executables analyzer's business.
    content = bytearray(("A" * 9000 + "\n" + GH_PAT + "\n" + pem("RSA")).encode())
    content[nul_at] = 0
    assert rule_lines(scan("/usr/bin/tool", bytes(content), chunk=4096)) == []


def test_nul_after_the_probe_window_is_still_text() -> None:
    content = ("x" * 9000 + "\0\n" + GH_PAT + "\n").encode()
    assert rule_lines(scan("/app/data.txt", content, chunk=1000)) == [("github-pat", 2)]


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_secret_split_across_chunks_is_found(chunk: int) -> None:
    content = (f"line\n{AWS_ID}\n").encode()
    assert rule_lines(scan("/app/k.txt", content, chunk=chunk)) == [("aws-access-key-id", 2)]


def test_oversized_stream_is_dropped_not_buffered() -> None:
    # The header says small, the stream says otherwise: the analyzer stops keeping bytes.
    entry = Entry(path="/app/liar.txt", kind=EntryKind.FILE, mode=0o644, size=10)
    consumer = SecretsAnalyzer().begin(entry, None)
    block = (GH_PAT + "\n").encode() * 1000
    for _ in range(MAX_SIZE // len(block) + 2):
        consumer.feed(block)
    assert consumer.finish().secrets == ()


def test_no_output_field_contains_a_secret() -> None:
    content = "\n".join(
        [pem("RSA"), f"aws_access_key_id={AWS_ID}", f"aws_secret_access_key={AWS_SECRET}"]
        + [f"X{i}='{s}'" for i, s in enumerate(ALL_SECRETS)]
        + [f"password={PASSWORD}"]
    )
    found = scan("/app/everything.env", content.encode())
    assert found is not None
    assert len(found.secrets) >= len(ALL_SECRETS)
    dumped = repr(found)
    for secret in ALL_SECRETS:
        # Not the secret, nor any 5-character piece of it past the public prefix.
        for i in range(4, len(secret) - 4):
            assert secret[i : i + 5] not in dumped, secret
    for s in found.secrets:
        assert s.redacted.endswith("****")
        assert len(s.redacted) <= 8


def test_secret_rules_find_nothing_in_real_system_text_files() -> None:
    # Real text shipped by Python and Perl (crypto libraries included) is free of secrets: a rule
    # that fires here would drown users in false alarms. The rules are applied directly, past
    # the path filters, to test them on as much real text as possible.
    roots = [Path("/usr/lib/python3.11"), Path("/usr/share/perl5")]
    scanned = 0
    for root in roots:
        for path in sorted(root.rglob("*"))[:4000]:
            if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_SIZE:
                continue
            if "/test" in str(path):
                continue  # the test suites hold test keys on purpose
            content = path.read_bytes()
            if b"\0" in content[:8192]:
                continue
            scanned += 1
            found = find_secrets(content, assignments=is_config_file(str(path)))
            assert [(m.rule.id, m.line) for m in found] == [], path
    if scanned == 0:
        pytest.skip("no system text files to scan here")


@pytest.mark.parametrize(
    ("tool_args", "label"),
    [
        (["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"], "pkcs8"),
        (["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], "ec"),
        (["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f"], "openssh"),
    ],
)
def test_keys_made_by_real_tools_are_found(
    tmp_path: Path, tool_args: list[str], label: str
) -> None:
    if shutil.which(tool_args[0]) is None:
        pytest.skip(f"{tool_args[0]} is not installed")
    key = tmp_path / "id_key"
    if tool_args[0] == "ssh-keygen":
        subprocess.run([*tool_args, str(key)], check=True, capture_output=True)
    else:
        subprocess.run([*tool_args, "-out", str(key)], check=True, capture_output=True)
    content = key.read_bytes()
    found = scan(f"/home/app/{label}.key", content)
    assert rule_lines(found) == [("private-key", 1)]
    assert found is not None
    assert content.decode().splitlines()[1][4:12] not in repr(found)


ENV = [
    ("GITHUB_TOKEN", GH_PAT, "github-pat"),
    ("ANY_NAME", AWS_ID, "aws-access-key-id"),
    ("AWS_SECRET_ACCESS_KEY", AWS_SECRET, "aws-secret-access-key"),
    ("NPM_TOKEN", NPM, "npm-access-token"),
    ("SESSION_JWT", JWT, "jwt-token"),
    ("DB_PASSWORD", PASSWORD, "env-secret"),
    ("POSTGRES_PASSWORD", "postgres", "env-secret"),
    ("API_KEY", "k-" + rand(20), "env-secret"),
    ("CLIENT_SECRET", rand(30), "env-secret"),
    ("SSH_PRIVATE_KEY", pem("OPENSSH"), "private-key"),
    ("MYSQL_ROOT_PASSWORD", "changeme", None),
    ("DB_PASSWORD", "${DB_PASSWORD}", None),
    ("DB_PASSWORD", "", None),
    ("MYSQL_ALLOW_EMPTY_PASSWORD", "yes", None),
    ("PASSWORD_FILE", "/run/secrets/db", None),
    ("TOKEN_TTL", "3600", None),
    # The python images' GPG_KEY is a public key fingerprint.
    ("GPG_KEY", "A035C8C19219BA821ECEA86B64E628F8D684696D", None),
    ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", None),
    ("PYTHON_VERSION", "3.12.1", None),
    ("LANG", "C.UTF-8", None),
    ("PWD", "/app", None),
]


@pytest.mark.parametrize(("name", "value", "rule_id"), ENV)
def test_env_value_looks_secret(name: str, value: str, rule_id: str | None) -> None:
    assert env_value_looks_secret(name, value) == rule_id


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", "****"), ("abc", "****"), ("abcdefgh", "ab****"), (GH_PAT, GH_PAT[:4] + "****")],
)
def test_redact_shows_at_most_four_characters(value: str, expected: str) -> None:
    assert redact(value) == expected


@pytest.mark.parametrize(
    ("value", "low", "high"), [("aaaa", 0.0, 0.0), ("abab", 1.0, 1.0), (rand(64, B64), 5.0, 6.0)]
)
def test_shannon_entropy(value: str, low: float, high: float) -> None:
    assert low <= shannon_entropy(value) <= high


def test_keyword_prefilter_agrees_with_plain_substring_search() -> None:
    text = ("noise " * 1000 + " ".join(ALL_SECRETS) + pem("EC")).encode()
    assert [m.rule.id for m in find_secrets(text)]
    for keyword in KEYWORDS:
        assert keyword in text or not any(keyword in s.encode() for s in ALL_SECRETS)
    # No keyword contains another: the non-overlapping automaton then sees every one.
    for a in KEYWORDS:
        assert not any(a != b and a in b for b in KEYWORDS)


def test_same_results_without_the_aho_corasick_package(monkeypatch: pytest.MonkeyPatch) -> None:
    text = ("x\n" * 100 + "\n".join(ALL_SECRETS) + "\n" + pem("RSA")).encode()
    with_automaton = find_secrets(text)
    secrets_rules._keyword_finder.cache_clear()
    monkeypatch.setitem(sys.modules, "ahocorasick_rs", None)  # makes the import fail
    try:
        assert find_secrets(text) == with_automaton
    finally:
        secrets_rules._keyword_finder.cache_clear()


@pytest.mark.parametrize(
    "hostile",
    [
        b"eyJ" * 700_000,
        b"npm_" * 500_000,
        b"AKIA" * 500_000,
        b"AKIAABCDEFGHIJKLMNOP " * 100_000,
        b"-----BEGIN PRIVATE KEY-----\n" * 70_000,
        b"token=eyJaaaaaaaaaaaa.eyJaaaaaaaaaaaaa.aaaaaaaaaaaa\n" * 40_000,
        b"password=\n" * 200_000,
        b"x" * 2_000_000,
    ],
    ids=lambda b: repr(b[:12]),
)
def test_hostile_texts_stay_fast(hostile: bytes) -> None:
    import time

    started = time.perf_counter()
    found = find_secrets(hostile, assignments=True)
    assert time.perf_counter() - started < 2.0
    assert len(found) <= 200
