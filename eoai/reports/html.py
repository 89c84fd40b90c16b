"""Self-contained, offline HTML from an executed notebook (nbconvert, code hidden by default).

The exported page embeds everything its outputs need, so maps and plots render with no network:

- the Jupyter widget state (ipyleaflet maps, sliders) with the widget manager
  (``@jupyter-widgets/html-manager`` ``embed-amd.js`` and ``require.js``, shipped in
  ``eoai/viz/static``) and the jupyter-leaflet JavaScript read from the installed package;
- the Bokeh / HoloViews JavaScript, which the notebook inlines itself when it calls
  ``eoai.viz.notebook()`` (``hv.extension("bokeh", inline=True)``);
- images as data URLs. MathJax and Mermaid (CDN-only in nbconvert) are left out.

Examples
--------
>>> from eoai.reports.html import export_html
>>> export_html("executed.ipynb", "report.html")  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import re
from functools import lru_cache
from pathlib import Path

from ..errors import InputError, ReportError

STATIC = Path(__file__).resolve().parents[1] / "viz" / "static"

_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}
{%- for js in resources.eoai_inline_js %}
<script type="text/javascript">
{{ js }}
</script>
{%- endfor %}
{%- endblock html_head_js_requirejs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""

# URL prefixes that would make a report depend on the network
FORBIDDEN_URLS = ("https://cdn", "http://cdn", "unpkg.com", "jsdelivr", "cdnjs")


def _script_safe(js: str) -> str:
    """Make JavaScript safe to inline in a <script> element."""
    return js.replace("</script", "<\\/script").replace("<!--", "<\\!--")


@lru_cache(maxsize=1)
def leaflet_widget_js() -> str:
    """The jupyter-leaflet widget module as a named AMD module, its images inlined.

    Read from the installed jupyter-leaflet nbextension, so the JavaScript matches ipyleaflet.

    Raises
    ------
    eoai.errors.ReportError
        When the jupyter-leaflet files are not installed.

    Examples
    --------
    >>> leaflet_widget_js().startswith('/*') or leaflet_widget_js().startswith('define')
    True
    """
    from jupyter_core.paths import jupyter_path

    for folder in jupyter_path("nbextensions", "jupyter-leaflet"):
        index = Path(folder) / "index.js"
        if index.is_file():
            break
    else:
        raise ReportError(
            "the jupyter-leaflet JavaScript is not installed (looked in "
            f"{jupyter_path('nbextensions', 'jupyter-leaflet')}): reinstall it with "
            "`pip install --force-reinstall jupyter-leaflet ipyleaflet`"
        )
    js = index.read_text(encoding="utf-8")
    js = js.replace("define([", 'define("jupyter-leaflet",[', 1)

    def _inline_png(match: re.Match) -> str:
        png = index.parent / match.group(1)
        if not png.is_file():
            return match.group(0)
        return '"data:image/png;base64,' + base64.b64encode(png.read_bytes()).decode() + '"'

    js = re.sub(r'\b[A-Za-z_$]\.p\+"([0-9a-f]{16,}\.png)"', _inline_png, js)
    return js


@lru_cache(maxsize=1)
def widget_js() -> tuple[str, ...]:
    """JavaScript (in order) that renders embedded Jupyter widgets offline.

    Examples
    --------
    >>> len(widget_js())
    3
    """
    files = [STATIC / "require.js", STATIC / "embed-amd.js"]
    for f in files:
        if not f.is_file():
            raise ReportError(f"eoai is missing its shipped file {f}: reinstall eoai")
    require_js, embed_js = (f.read_text(encoding="utf-8") for f in files)
    return tuple(_script_safe(js) for js in (require_js, leaflet_widget_js(), embed_js))


_HOLOVIEWS_LOAD = "application/vnd.holoviews_load.v0+json"
_PANEL_CDN = re.compile(
    r"https?://cdn\.holoviz\.org/panel/[^/\"']+/dist/([^\"'\s?)]+)(\?v=[^\"'\s)]*)?"
)


def drop_cdn_loaders(nb) -> int:
    """Drop HoloViews/Bokeh loader outputs that load from a CDN when an inline one exists.

    Importing hvplot after ``eoai.viz.notebook()`` re-emits a loader listing the Bokeh CDN
    files; in a page that already inlines Bokeh it would only fetch them again. Returns how many
    outputs were dropped (none when no inline loader exists, so the page stays as it was).

    Examples
    --------
    >>> import nbformat
    >>> drop_cdn_loaders(nbformat.v4.new_notebook())
    0
    """
    loaders = [
        (cell, out)
        for cell in nb.cells
        for out in cell.get("outputs", [])
        if _HOLOVIEWS_LOAD in out.get("data", {})
    ]
    is_cdn = {id(out): "cdn.bokeh.org" in out["data"][_HOLOVIEWS_LOAD] for _, out in loaders}
    if not any(
        not cdn
        and "Bokeh" in out["data"][_HOLOVIEWS_LOAD]
        and len(out["data"][_HOLOVIEWS_LOAD]) > 500_000
        for (_, out), cdn in zip(loaders, is_cdn.values(), strict=True)
    ):
        return 0
    dropped = 0
    for cell, out in loaders:
        if is_cdn[id(out)]:
            cell["outputs"].remove(out)
            dropped += 1
    return dropped


def _panel_dist() -> Path | None:
    try:
        import panel
    except ImportError:  # pragma: no cover - panel comes with hvplot
        return None
    return Path(panel.__file__).parent / "dist"


def inline_panel_assets(text: str) -> str:
    """Replace Panel CDN asset URLs (CSS, JS shims) by data URLs of the installed files.

    Examples
    --------
    >>> inline_panel_assets('"https://cdn.holoviz.org/panel/1.0/dist/css/loading.css?v=1"')[:22]
    '"data:text/css;base64,'
    """
    from urllib.parse import unquote

    dist = _panel_dist()
    cache: dict[str, str] = {}

    def _sub(match: re.Match) -> str:
        rel = unquote(match.group(1))
        if rel not in cache:
            f = (dist / rel) if dist else None
            if f is None or not f.is_file():
                cache[rel] = match.group(0)
            else:
                mime = "text/css" if rel.endswith(".css") else "application/javascript"
                cache[rel] = f"data:{mime};base64," + base64.b64encode(f.read_bytes()).decode()
        return cache[rel]

    return _PANEL_CDN.sub(_sub, text)


def export_html(
    notebook: str | Path,
    html: str | Path,
    *,
    hide_code: bool = True,
    title: str | None = None,
) -> Path:
    """Export an executed notebook to one self-contained HTML file that renders offline.

    Parameters
    ----------
    notebook : str or Path
        Executed ``.ipynb``.
    html : str or Path
        Output ``.html`` path (its folder is created).
    hide_code : bool
        Hide code cells and prompts (outputs and markdown stay); ``False`` shows the code.
    title : str, optional
        Page title (default the notebook's ``metadata.title`` or file name).

    Returns
    -------
    pathlib.Path
        The HTML file.

    Raises
    ------
    eoai.errors.InputError
        When the notebook does not exist.

    Examples
    --------
    >>> export_html("out/report.ipynb", "out/report.html")  # doctest: +SKIP
    PosixPath('out/report.html')
    """
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    notebook, html = Path(notebook), Path(html)
    if not notebook.is_file():
        raise InputError(f"notebook {notebook} does not exist")
    nb = nbformat.read(notebook, as_version=4)
    if title:
        nb.metadata["title"] = title
    drop_cdn_loaders(nb)
    exporter = HTMLExporter(
        template_name="lab",
        template_file="eoai_report.html.j2",
        extra_loaders=[jinja2.DictLoader({"eoai_report.html.j2": _TEMPLATE})],
        exclude_input=hide_code,
        exclude_input_prompt=hide_code,
        exclude_output_prompt=hide_code,
    )
    resources = {"eoai_inline_js": list(widget_js()), "metadata": {"name": notebook.stem}}
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    body = inline_panel_assets(body)
    html.parent.mkdir(parents=True, exist_ok=True)
    html.write_text(body, encoding="utf-8")
    return html


def network_urls(html_text: str) -> list[str]:
    """CDN URLs a page would load: in ``src=``/``href=``, CSS ``url()``/``@import``, Bokeh
    stylesheet ``"url"`` fields and loader ``js_urls``/``css_urls`` lists (an offline report has
    none). URLs merely mentioned inside inlined library code (e.g. Panel's lazy MathJax) are not
    loads and are not listed.

    Examples
    --------
    >>> network_urls('<script src="https://cdn.example.org/x.js"></script><p>https://cdn.x</p>')
    ['https://cdn.example.org/x.js']
    """
    url = r"((?:https?:)?//[^\s\"'<>)]+)"
    patterns = [
        rf"(?<=[\s<])(?:src|href)\s*=\s*[\"']?{url}",
        rf"url\(\s*[\"']?{url}",
        rf"@import\s+[\"']{url}",
        rf"\\?\"url\\?\"\s*:\s*\\?\"{url}",
        rf"(?:js_urls|css_urls|js_modules)\s*=\s*\[[^\]]*?{url}",
    ]
    found = []
    for pattern in patterns:
        for m in re.finditer(pattern, html_text):
            if any(tok in m.group(1) for tok in FORBIDDEN_URLS):
                found.append(m.group(1))
    return found
