"""Navigation in Debian's Chromium (issue #21): what Praat and bertviz users expect.

The playhead follows the player on the time axes, a click on the spectrogram seeks the player,
a drag-select gives the F0 statistics of that range (the whole clip comes back on reset), F0 can
have its own Hz axis, a click on a thumbnail of the model view or on a head-score cell opens that
head, and a cross-attention cell marks and plays its stretch of audio. Same server and page
fixtures as tests/test_browser.py (its own app.py on a free port); screenshots go to
test-artifacts/.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from test_browser import (ACTION_BOUND_MS, ARTIFACTS, _clip_loaded, _no_error, _rendered, _shipped, _shot,
                          _tab, page, playwright_driver, server, uploads)  # noqa: F401 (fixtures)

MEDIA = "window.echoNav.media()"
GD = "document.querySelector(s + ' .js-plotly-plot')"


def _point(page, selector: str, x, y=None, axis: str = "x") -> tuple[float, float]:
    """Page coordinates of data (x, y) on a plot's subplot (y None: its vertical middle)."""
    page.locator(selector).scroll_into_view_if_needed()
    return tuple(page.evaluate(
        "([s, x, y, a]) => { const gd = " + GD + ", f = gd._fullLayout;"
        " const xa = f['xaxis' + a.slice(1)], ya = f['yaxis' + xa.anchor.slice(1)];"
        " const r = gd.getBoundingClientRect();"
        " return [r.left + xa._offset + xa.l2p(x), r.top + ya._offset"
        " + (y === null ? ya._length / 2 : ya.l2p(y))]; }", [selector, x, y, axis]))


def _seek_by_click(page, seconds: float, attempts: int = 3) -> None:
    """Click the spectrogram at ``seconds`` until the player is there.

    A click is sent again (at most ``attempts`` times, each point measured afresh) when the
    player has not moved within 10 s: a click landing while gradio redraws the plot under the
    pointer is lost, as a user's would be, and a user clicks again (CI once waited its whole
    bound on one lost click). A seek that never lands fails naming where the player is."""
    for _ in range(attempts):
        page.mouse.click(*_point(page, "#pitch-plot", seconds))
        try:
            page.wait_for_function(f"t => Math.abs({MEDIA}.currentTime - t) < 0.02", arg=seconds,
                                   timeout=10_000)
            return
        except PlaywrightTimeout:
            pass
    where = page.evaluate(f"() => {MEDIA}?.currentTime")
    raise AssertionError(f"{attempts} clicks at {seconds} s: the player stayed at {where} s")


STATISTICS = ("median", "mean", "min", "max", "std", "voiced fraction", "n frames", "n voiced")


def _stats(page) -> dict:
    """{statistic: value text} read from the table as shown (each cell is a line)."""
    lines = [line.strip() for line in page.locator("#f0-stats").inner_text().split("\n")]
    lines = [line for line in lines if line]
    return {name: lines[lines.index(name) + 1] for name in STATISTICS}


def _stats_title(page) -> str:
    return page.locator("#f0-stats").inner_text().split("\n")[0]


def test_clicking_the_spectrogram_seeks_the_player_and_moves_the_playhead(page):
    _clip_loaded(page)
    _rendered(page, "#pitch-plot")
    _seek_by_click(page, 0.8)
    line = page.locator("#pitch-plot .echo-playhead")
    page.wait_for_function("() => document.querySelector('#pitch-plot .echo-playhead')"
                           "?.dataset.time === '0.800'")
    assert line.is_visible()
    box = line.bounding_box()
    x_at, _ = _point(page, "#pitch-plot", 0.8)
    assert abs(box["x"] + box["width"] / 2 - x_at) < 3  # drawn at 0.8 s on the time axis
    _no_error(page)
    _shot(page, "nav_1_seek")


def test_the_playhead_follows_the_playing_clip(page):
    _clip_loaded(page)
    _rendered(page, "#pitch-plot")
    _seek_by_click(page, 0.1)
    page.locator("#audio .play-pause-button").click()
    page.wait_for_function(f"() => !{MEDIA}.paused")
    page.wait_for_function("() => parseFloat(document.querySelector('#pitch-plot .echo-playhead')"
                           ".dataset.time) > 0.3")  # moved on while playing
    page.wait_for_function(f"() => {MEDIA}.paused || {MEDIA}.ended")  # the clip ends by itself
    _no_error(page)


def test_a_drag_select_gives_the_statistics_of_that_range(page):
    _clip_loaded(page)
    _rendered(page, "#pitch-plot")
    whole = _stats(page)
    assert "whole clip" in _stats_title(page)
    x0, y = _point(page, "#pitch-plot", 0.3)
    x1, _ = _point(page, "#pitch-plot", 0.9)
    page.mouse.move(x0, y)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, y, steps=4)
    page.mouse.move(x1, y, steps=4)
    page.mouse.up()
    page.wait_for_function("() => document.querySelector('#f0-stats').innerText"
                           ".includes('0.30–0.90 s')")
    part = _stats(page)
    assert float(part["n frames"]) < float(whole["n frames"])
    assert part["mean"] != whole["mean"] or part["std"] != whole["std"]
    assert page.locator("#range-from input").input_value() == "0.3"
    assert page.locator("#range-to input").input_value() == "0.9"
    _shot(page, "nav_2_range")
    # a typed range, then the whole clip again
    page.locator("#range-from input").fill("0.5")
    page.locator("#range-to input").fill("1.1")
    page.locator("#range-apply").click()
    page.wait_for_function("() => document.querySelector('#f0-stats').innerText"
                           ".includes('0.50–1.10 s')")
    page.locator("#range-reset").click()
    page.wait_for_function("() => document.querySelector('#f0-stats').innerText"
                           ".includes('whole clip')")
    assert _stats(page) == whole
    assert page.locator("#range-from input").input_value() == ""
    _no_error(page)


def test_f0_on_its_own_hz_axis(page):
    _clip_loaded(page)
    page.locator("#f0-axis label", has_text="own Hz axis").click()
    page.wait_for_function("() => { const gd = document.querySelector('#pitch-plot .js-plotly-plot');"
                           " return gd && gd.layout.yaxis2 && gd.data[1].yaxis === 'y2'; }")
    top = page.evaluate("() => document.querySelector('#pitch-plot .js-plotly-plot')"
                        "._fullLayout.yaxis2.range[1]")
    assert 60 < top < 1500  # Hz, not mel
    assert "F0 (Hz, linear)" in page.locator("#pitch-plot").inner_text()
    _rendered(page, "#pitch-plot")
    _shot(page, "nav_3_f0_hz_axis")
    page.locator("#f0-axis label", has_text="on the spectrogram").click()
    page.wait_for_function("() => !document.querySelector('#pitch-plot .js-plotly-plot')"
                           ".layout.yaxis2")
    _no_error(page)


def test_the_playhead_is_drawn_on_the_rotary_maps(page):
    _clip_loaded(page)
    _tab(page, "Audio & Pitch")
    _rendered(page, "#pitch-plot")
    _seek_by_click(page, 0.8)
    _tab(page, "Rotary patterns")
    _rendered(page, "#sim-plot")
    page.wait_for_function("() => document.querySelectorAll('#sim-plot .echo-playhead').length"
                           " === 3")  # static, clip theta, difference
    line = page.locator("#sim-plot .echo-playhead").first
    page.wait_for_function("() => document.querySelector('#sim-plot .echo-playhead')"
                           ".style.display === 'block'")
    unit = page.locator("#axes input:checked").input_value()
    at = 0.8 if unit == "seconds" else 0.8 / 0.008  # 8 ms frames
    x_at, _ = _point(page, "#sim-plot", at)
    box = line.bounding_box()
    assert abs(box["x"] + box["width"] / 2 - x_at) < 3
    _no_error(page)
    _shot(page, "nav_4_rotary_playhead")


def _run_model(page) -> None:
    if not _shipped():
        pytest.skip("no shipped checkpoint in assets/checkpoints yet")
    _clip_loaded(page)
    _tab(page, "Model")
    if page.locator("#attention-grid .js-plotly-plot .main-svg").count() == 0:
        page.locator("#run-model").click()
        page.wait_for_function("() => document.querySelector("
                               "'#attention-grid .js-plotly-plot .main-svg')",
                               timeout=ACTION_BOUND_MS)
    _rendered(page, "#attention-grid", min_width=250)


def _sliders(page) -> tuple[str, str]:
    values = page.locator("#tab-model input[type=number]")
    return values.nth(0).input_value(), values.nth(1).input_value()


def _att_title(page) -> str:
    return page.locator("#attention-plot .annotation-text").first.text_content()


def test_clicking_a_thumbnail_opens_that_head(page):
    _run_model(page)
    cells = page.evaluate("() => { const t = document.querySelector('#attention-grid "
                          ".js-plotly-plot')._fullData[1]; return [Array.from(t.x),"
                          " Array.from(t.y), t.customdata]; }")
    xs, ys, pairs = cells
    i, j = len(ys) - 1, len(xs) - 1  # the last layer's last head
    layer, head = pairs[i][j]
    assert (layer, head) != (1, 0)  # not what is already open
    page.mouse.click(*_point(page, "#attention-grid", xs[j], ys[i]))
    page.wait_for_function("t => document.querySelector('#attention-plot')"
                           ".innerText.includes(t)", arg=f"layer {layer}, head {head}")
    assert _sliders(page) == (str(layer), str(head))
    assert f"layer {layer}, head {head}" in _att_title(page)
    _shot(page, "nav_5_thumbnail")
    _no_error(page)


def test_clicking_a_head_score_cell_opens_that_head(page):
    _run_model(page)
    page.locator("#head-score-plot").scroll_into_view_if_needed()
    _rendered(page, "#head-score-plot", min_width=250)
    # the first panel (encoder self-attention): layer 2, head 1
    page.mouse.click(*_point(page, "#head-score-plot", 1, 2))
    page.wait_for_function("() => document.querySelector('#attention-plot')"
                           ".innerText.includes('layer 2, head 1')")
    assert _sliders(page) == ("2", "1")
    _no_error(page)


def test_a_cross_attention_cell_marks_and_plays_its_audio(page):
    _run_model(page)
    page.locator("#tab-model label", has_text="decoder cross-attention").first.click()
    page.wait_for_function("() => document.querySelector('#attention-plot .gtitle')"
                           "?.textContent.includes('cross-attention')")
    k, q = 10, 1
    x, span = page.evaluate("k => { const t = document.querySelector('#attention-plot "
                            ".js-plotly-plot')._fullData.at(-1); return [t.x[k],"
                            " t.customdata[0][k]]; }", k)
    point = _point(page, "#attention-plot", x, q)
    page.mouse.move(point[0] - 2, point[1])
    page.mouse.move(*point)
    mark = page.locator("#echo-span")
    mark.wait_for(state="visible")
    assert mark.inner_text() == f"audio {span[0]:.2f}–{span[1]:.2f} s"
    wave = page.locator("#audio #waveform").bounding_box()
    duration = page.evaluate(f"() => {MEDIA}.duration")
    assert abs(mark.bounding_box()["x"] - (wave["x"] + wave["width"] * span[0] / duration)) < 3
    band = page.locator("#attention-plot .echo-span-band")  # the same stretch on the map
    assert band.is_visible()
    per_second = page.evaluate("() => document.querySelector('#attention-plot .js-plotly-plot')"
                               ".layout.meta.echo_time.xaxis")
    left, _ = _point(page, "#attention-plot", span[0] * per_second)
    assert abs(band.bounding_box()["x"] - left) < 3
    page.screenshot(path=str(ARTIFACTS / "nav_6_cross_attention_hover.png"))  # hover kept
    page.mouse.click(*point)
    page.wait_for_function(f"([t0, t1]) => {MEDIA}.currentTime >= t0 - 0.01", arg=span)
    page.wait_for_function(f"([t0, t1]) => {MEDIA}.paused && {MEDIA}.currentTime >= t1 - 0.05"
                           f" && {MEDIA}.currentTime < t1 + 0.5", arg=span)  # the span, no more
    _no_error(page)


def test_hovering_an_image_map_shows_the_value_under_the_pointer(page):
    """Rotary maps carry no hover trace (issue #20): map_hover.js reads the image's value grid.
    On the diagonal the similarity is 1 at lag 0; off it, the tooltip shows the grid cell
    nearest the pointer (found here independently from the figure's data)."""
    _clip_loaded(page)
    _tab(page, "Rotary patterns")
    _rendered(page, "#sim-plot")
    grid = page.evaluate(
        "() => { const gd = document.querySelector('#sim-plot .js-plotly-plot');"
        " const g = window.echoHover.grids(gd)[1];"
        " return {x: Array.from(g.x), y: Array.from(g.y), z: Array.from(g.z), cols: g.cols,"
        " heat: gd.data.filter(t => t.type === 'heatmap').length}; }")
    assert grid["heat"] == 0 and grid["cols"] == len(grid["x"])
    tip = page.locator("#sim-plot .echo-map-hover")
    x, y = grid["x"], grid["y"]
    at = x[len(x) // 3]
    page.mouse.move(*_point(page, "#sim-plot", at, at, axis="x2"))
    page.wait_for_function("() => document.querySelector('#sim-plot .echo-map-hover')"
                           "?.style.display === 'block'")
    text = tip.inner_text()
    assert "lag=0\n" in text and "sim=1.000" in text and "clip θ_eff" in text
    col, row = len(x) // 5, (4 * len(y)) // 5
    page.mouse.move(*_point(page, "#sim-plot", x[col], y[row], axis="x2"))
    tip_js = "document.querySelector('#sim-plot .echo-map-hover')"
    page.wait_for_function(f"() => {tip_js}.dataset.col == {col} && {tip_js}.dataset.row == {row}")
    value = grid["z"][row * grid["cols"] + col]
    assert f"sim={value:.3f}" in tip.inner_text()
    lag = abs(x[col] - y[row])
    assert f"lag={lag:g}" in tip.inner_text() or f"lag={round(lag, 3):g}" in tip.inner_text()
    _shot(page, "nav_9_map_hover")
    page.mouse.move(5, 5)
    page.wait_for_function(f"() => {tip_js}.style.display === 'none'")
    _tab(page, "Audio & Pitch")  # plotly's own clicks still work after the hover script ran
    _rendered(page, "#pitch-plot")
    _seek_by_click(page, 0.5)
    _no_error(page)


def test_a_theta_step_swaps_the_map_pictures_titles_and_hover_values(page):
    """On a small theta step the similarity and variant maps change their pictures, panel
    titles and hover grids alone (the fitted colour bars are rounded out and hold still); the
    page swaps those in place (live_views.js) instead of replotting. What it then shows must be
    that step's answer: the pictures, titles and hover grids equal those the live route gives
    for the same values (asked here independently), plotly's own data agrees, and the tooltip
    reads the new grid."""
    _clip_loaded(page)
    _tab(page, "Rotary patterns")
    _rendered(page, "#variants-plot")
    plots = ("#sim-plot", "#variants-plot")
    gd = "document.querySelector(s + ' .js-plotly-plot')"
    page.wait_for_function("() => document.querySelector('#sim-plot .js-plotly-plot')"
                           "?.layout?.meta?.echo_live?.key")
    page.wait_for_timeout(3000)  # the tab's own redraw lands first (readiness, not speed)
    page.evaluate("() => document.querySelector('#theta').scrollIntoView({block: 'start'})")
    hrefs = f"s => [...{gd}.querySelectorAll('g.im image')].map(i => i.getAttribute('href'))"
    titles = (f"s => [...{gd}.querySelectorAll('g.annotation text.annotation-text')]"
              ".map(t => t.textContent)")
    step = ("v => { const r = document.querySelector('#theta input[type=range]');"
            " r.value = v; r.dispatchEvent(new Event('input', {bubbles: true})); }")
    ask = ("async v => { const live = document.querySelector('#sim-plot .js-plotly-plot')"
           ".layout.meta.echo_live; const head = document.querySelector('#head-dim input:checked');"
           " const tilt = document.querySelector('#tilt input[type=range]');"
           " const res = await fetch(new URL('echo/live', location.href), {method: 'POST',"
           " body: JSON.stringify({views: ['rotary'], values: {...live, log10_theta: v,"
           " head_dim: Number(head.value), tilt: Number(tilt.value)}})});"
           " return (await res.json()).outputs; }")
    first, second = page.evaluate(ask, 3.30), page.evaluate(ask, 3.31)

    def bars(figure):
        return [t["marker"] for t in figure["data"] if t["type"] == "scatter" and "marker" in t]

    for s in plots:  # the premise: only pictures, names, grids and titles differ
        assert bars(first[s[1:]]["figure"]) == bars(second[s[1:]]["figure"]), s
    before = [page.evaluate(hrefs, s) for s in plots]
    page.evaluate(step, 3.30)  # the first step replots what Gradio drew; later ones may swap
    for s, b in zip(plots, before):
        page.wait_for_function(f"([s, b]) => ({hrefs})(s)[0] !== b[0]", arg=[s, b])
    page.wait_for_timeout(500)
    before = [page.evaluate(hrefs, s) for s in plots]
    for s in plots:
        page.evaluate(f"s => {{ {gd}.data.__probe = 1; }}", s)  # a Plotly.react replaces gd.data
    page.evaluate(step, 3.31)
    for s, b in zip(plots, before):
        page.wait_for_function(f"([s, b]) => ({hrefs})(s)[0] !== b[0]", arg=[s, b])
    for s in plots:
        answer = second[s[1:]]["figure"]
        shown = page.evaluate(f"s => ({{probe: {gd}.data.__probe, data: {gd}.data.map(t => "
                              "({source: t.source, z: t.meta?.echo_hover?.z?.bdata,"
                              " name: t.meta?.echo_hover?.name}))})", s)
        assert shown["probe"] == 1, s  # swapped in place, not replotted
        images = [t for t in answer["data"] if t["type"] == "image"]
        assert page.evaluate(hrefs, s) == [t["source"] for t in images]
        for t, got in zip(answer["data"], shown["data"]):
            if t["type"] == "image":
                assert got["source"] == t["source"]
                assert got["z"] == t["meta"]["echo_hover"]["z"]["bdata"]
                assert got["name"] == t["meta"]["echo_hover"]["name"]
        assert page.evaluate(titles, s) == [a["text"] for a in answer["layout"]["annotations"]]
    assert page.evaluate(titles, "#sim-plot")[0] == "static θ = 2,042"  # 10 ** 3.31
    grid = page.evaluate("() => { const g = window.echoHover.grids(document.querySelector("
                         "'#variants-plot .js-plotly-plot'))[0];"
                         " return {x: Array.from(g.x), y: Array.from(g.y), z: Array.from(g.z),"
                         " cols: g.cols}; }")
    col, row = len(grid["x"]) // 4, (3 * len(grid["y"])) // 4
    page.mouse.move(*_point(page, "#variants-plot", grid["x"][col], grid["y"][row], axis="x"))
    tip = "document.querySelector('#variants-plot .echo-map-hover')"
    page.wait_for_function(f"() => {tip}?.dataset.col == {col} && {tip}.dataset.row == {row}")
    value = grid["z"][row * grid["cols"] + col]
    assert f"={value:.3f}" in page.locator("#variants-plot .echo-map-hover").inner_text()
    _no_error(page)
