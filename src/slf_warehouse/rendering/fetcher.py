"""The only URL fetcher WeasyPrint gets (a letter, its archive copy, the quality report): files the
project ships, nothing else.

WeasyPrint resolves every ``<link>``, ``<img>``, ``url()`` and ``<link rel="attachment">`` through
its URL fetcher; the default one reads any local file and any URL, which is how a PDF could
attach the pseudonymisation key or call a server. This one serves a file only when its real path
(symlinks followed) lies inside the templates folder (``report_templates/``: the stylesheet and
whatever fonts or images it may name). Every other URL, ``data:`` included, is refused: the letters,
the quality report and their charts are inline HTML and SVG and need none.

A refusal is logged as a warning with the URL's scheme and a digest, never the URL: a URL made to
leak data would carry that data. It then stops the rendering (``ResourceRefused``), so a PDF
that asked for something it may not have is never written, and WeasyPrint's own warning, which
quotes the URL, is not reached.

WeasyPrint fetches ``<link rel="attachment">`` files only when it writes the PDF, after laying out
every page; ``refuse_early`` asks the same question of them before the layout, so such a letter is
refused at once (the fetcher still guards the fetch itself).

Imported only where WeasyPrint is (``pdf.html_to_pdfs``).
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from weasyprint.html import element_has_link_type, parse_url
from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

if TYPE_CHECKING:
    from weasyprint import HTML

log = logging.getLogger(__name__)


class ResourceRefused(FatalURLFetchingError):  # type: ignore[misc]  # weasyprint ships no type hints
    """The HTML asked WeasyPrint for a URL outside the project's templates folder."""


def url_digest(url: str) -> str:
    """What a log line may say about a refused URL: enough to match two refusals, nothing of its content."""
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:12]


class ProjectFilesFetcher(URLFetcher):  # type: ignore[misc]  # weasyprint ships no type hints
    """Serves ``file:`` URLs whose real path is inside ``root``; refuses everything else."""

    def __init__(self, root: Path) -> None:
        super().__init__(allowed_protocols=("file",), allow_redirects=False, fail_on_errors=True)
        self.root = Path(root).resolve()

    def _allowed(self, url: str) -> Path | None:
        parts = urlsplit(url)
        if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
            return None
        path = Path(url2pathname(unquote(parts.path))).resolve()
        if path.is_file() and path.is_relative_to(self.root):
            return path
        return None

    def check(self, url: str) -> Path:
        """The project file ``url`` names; ResourceRefused (logged without the URL) for anything else."""
        path = self._allowed(url)
        if path is None:
            scheme = urlsplit(url).scheme.lower() or "relative"
            log.warning(
                "refused to fetch a %s URL for a PDF (sha256 %s, %d characters): only files "
                "under %s are served",
                scheme,
                url_digest(url),
                len(url),
                self.root,
            )
            raise ResourceRefused(
                f"the HTML refers to a {scheme} URL outside {self.root} "
                f"(sha256 {url_digest(url)}); only the project's own files are served"
            )
        return path

    def fetch(self, url: str, headers: dict[str, str] | None = None) -> URLFetcherResponse:
        path = self.check(url)
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(
            path.as_uri(), body=path.read_bytes(), headers={"Content-Type": content_type}
        )


def refuse_early(document: HTML, fetcher: ProjectFilesFetcher) -> None:
    """Check the attachments ``document`` names (``<link rel="attachment">``, resolved as WeasyPrint
    resolves them) before WeasyPrint lays the pages out: a refused one raises ResourceRefused now."""
    for link in document.wrapper_element.query_all("link"):
        element = link.etree_element
        if element_has_link_type(element, "attachment"):
            url = parse_url(element.get("href"), document.base_url)
            if url is not None:
                fetcher.check(url)
