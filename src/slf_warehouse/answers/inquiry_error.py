"""The error an inquiry file's problems are reported with, in a module of its own: finding an
inquiry by name (``published.resolve_inquiry``) raises it without importing the inquiry model,
its templates and holiday calendar (about 0,3 s), so ``slf answer`` with a misspelt name answers
at once."""

from __future__ import annotations


class InquiryError(ValueError):
    """An inquiry file is not valid; the message names the file and the field."""
