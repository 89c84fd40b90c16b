"""The demo report renders in a real browser with the network blocked: map, overlay, Bokeh plots."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_report_renders_offline(browser, demo_report, artifacts):
    out, _ = demo_report
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    attempted = []
    page.on("request", lambda r: attempted.append(r.url))
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))

    def only_local(route):
        if route.request.url.startswith(("file:", "data:", "blob:")):
            route.continue_()
        else:
            route.abort()

    page.route("**/*", only_local)
    try:
        page.goto((out / "report.html").as_uri())
        page.wait_for_selector(".leaflet-container", timeout=60_000)
        overlay = page.wait_for_selector("img.leaflet-image-layer", timeout=30_000)
        assert overlay.get_attribute("src").startswith("data:image/png;base64,")
        page.wait_for_function(
            "() => [...document.querySelectorAll('img.leaflet-image-layer')]"
            ".some(i => i.complete && i.naturalWidth > 0)",
            timeout=30_000,
        )
        # Bokeh: every embedded root renders a canvas (playwright's CSS pierces shadow roots)
        page.wait_for_selector("[data-root-id] canvas", state="attached", timeout=60_000)
        page.wait_for_function(
            "() => document.querySelectorAll('[data-root-id]').length >= 4", timeout=30_000
        )
        assert page.locator("[data-root-id] canvas").count() >= 4
        # the map's legend and the GeoJSON land-cover polygons are drawn too
        assert page.locator(".leaflet-container path.leaflet-interactive").count() > 10
        assert page.locator(".eoai-legend").count() >= 1
    finally:
        page.screenshot(path=str(artifacts / "report_offline.png"), full_page=True)
        page.close()
    remote = [u for u in attempted if not u.startswith(("file:", "data:", "blob:"))]
    assert remote == [], f"the report tried to fetch {remote}"
    assert not [e for e in errors if "leaflet" in e.lower() or "bokeh" in e.lower()], errors
