"""What a visitor sees of an error: the readable message, never a server path (those stay in the log)."""

from __future__ import annotations

import logging
import re
import secrets

import gradio as gr

from core.errors import PlaygroundError

# An absolute path of two or more parts (/home/x/.cache/y.bin); the last part is kept, the folders are not.
ABSOLUTE_PATH = re.compile(r"(?<![\w:/.])/(?:[^\s/'\"`()<>|]+/)+([^\s/'\"`()<>|]*)")


def public_text(message: str) -> str:
    """message with every absolute path cut to its last part."""
    return ABSOLUTE_PATH.sub(lambda m: m.group(1) or "(a server folder)", message)


def user_error(error: BaseException | str) -> gr.Error:
    """A gr.Error to raise in a handler, with server paths removed."""
    return gr.Error(public_text(str(error)), print_exception=False)  # a user error: no traceback in the log


def any_error(error: Exception) -> gr.Error:
    """user_error for a PlaygroundError; for anything else (a bug) log the traceback, show a reference."""
    if isinstance(error, PlaygroundError):
        return user_error(error)
    ref = secrets.token_hex(4)
    logging.getLogger("playground.requests").error("bug %s in a handler: %s", ref, type(error).__name__,
                                                  exc_info=error)
    return user_error(f"Something went wrong on the server (reference {ref}); it has been logged.")
