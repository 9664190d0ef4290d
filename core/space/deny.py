"""Files a deploy never publishes: secrets by name or extension, and hidden files not explicitly allowed."""

from __future__ import annotations

import fnmatch
import re

# fnmatch patterns on a file's own name (case-insensitive): keys, certificates, env files, shell credentials.
SECRET_NAMES = (".env", ".env.*", "*.env", "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "id_rsa*",
                "id_dsa*", "id_ecdsa*", "id_ed25519*", "*.ppk", ".netrc", "_netrc", ".pypirc", ".npmrc",
                ".git-credentials", ".htpasswd")
# A word in the name, between separators: hf_token, token.txt, my-credentials.json, secrets.yaml, api_key.
# `tokenizer.json` and `special_tokens_map.json` are model files, not secrets: "tokenizer"/"tokens" do not match.
SECRET_WORDS = re.compile(r"(^|[._\-\s])(token|credentials?|secrets?|passwords?|passwd|api[_-]?key|apikey|"
                          r"private[_-]?key|access[_-]?key)([._\-\s]|$)", re.IGNORECASE)


def secret_reason(path: str) -> str | None:
    """Why this repo-relative path looks like a secret, or None."""
    name = path.rsplit("/", 1)[-1]
    for pattern in SECRET_NAMES:
        if fnmatch.fnmatch(name.lower(), pattern):
            return f"secret: name matches {pattern}"
    match = SECRET_WORDS.search(name)
    if match:
        return f"secret: name contains '{match.group(2)}'"
    return None


def hidden_reason(path: str, allowed: list[str]) -> str | None:
    """Why a path under a dot-folder or with a dot-name is left out, unless upload.allow_hidden lists it."""
    hidden = [part for part in path.split("/") if part.startswith(".")]
    if not hidden or any(fnmatch.fnmatch(path, pattern) for pattern in allowed):
        return None
    return f"hidden: '{hidden[0]}' (list it in upload.allow_hidden to publish it)"
