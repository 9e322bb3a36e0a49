/* Echo Workbench navigation (issue #21): the playhead, click to seek, audio spans, picks.
 *
 * Loaded once into the page <head> (workbench.ui.page.launch_kwargs). It knows no plot ids:
 * figures declare what is navigable in plotly's `meta` fields (workbench/nav_meta.py), so a
 * re-rendered or newly drawn plot gets the same behaviour. A timer re-attaches listeners to
 * plots gradio (re)creates; the playhead is an absolutely placed <div> per time axis (no
 * plotly redraw while the clip plays).
 *
 * The player's <audio> element: gradio's waveform player keeps it in the shadow root of the
 * div inside #audio #waveform; the plain browser player (no waveform) has it in #audio.
 */
(() => {
  if (window.echoNav) return;
  let stopAt = null;  // a played span ends here (s)
  let raf = 0;

  function media() {
    const host = document.querySelector("#audio #waveform > div");
    const inShadow = host && host.shadowRoot && host.shadowRoot.querySelector("audio");
    if (inShadow && inShadow.currentSrc) return inShadow;
    const plain = document.querySelector("#audio audio");
    return plain && plain.currentSrc ? plain : inShadow || null;
  }

  function seek(t, play = false, until = null) {
    const m = media();
    if (!m) return;
    const end = Number.isFinite(m.duration) ? m.duration : t;
    m.currentTime = Math.max(0, Math.min(t, end));
    stopAt = until;
    if (play) m.play().catch(() => {});
    kick();
  }

  /* Send a value to a hidden gradio textbox (elem_id): its change event runs on the server. */
  let sent = 0;
  function send(elemId, value) {
    const box = document.querySelector(`#${elemId} textarea, #${elemId} input`);
    if (!box) return;
    box.value = JSON.stringify({...value, n: ++sent});  // n: the same pick twice still changes
    box.dispatchEvent(new Event("input", {bubbles: true}));
  }

  function axisKey(letter, id) {  // trace axis id "x2" -> layout key "xaxis2"
    return `${letter}axis${(id || letter).slice(1)}`;
  }

  function spanMarker(t0, t1) {
    const wave = document.querySelector("#audio #waveform");
    const m = media();
    let mark = document.getElementById("echo-span");
    if (t0 === null || !wave || !m || !Number.isFinite(m.duration) || !m.duration) {
      if (mark) mark.style.display = "none";
      return;
    }
    if (!mark) {
      mark = document.createElement("div");
      mark.id = "echo-span";
      mark.style.cssText = "position:absolute;top:0;bottom:0;pointer-events:none;z-index:5;" +
        "background:rgba(31,119,180,0.28);border:1px solid #1f77b4;font:12px sans-serif;" +
        "color:#0b3d66;white-space:nowrap;overflow:visible";
    }
    if (mark.parentElement !== wave.parentElement) {
      wave.parentElement.style.position = "relative";
      wave.parentElement.appendChild(mark);
    }
    const width = wave.getBoundingClientRect().width;
    const left = wave.offsetLeft + width * t0 / m.duration;
    mark.style.left = `${left}px`;
    mark.style.width = `${Math.max(2, width * (t1 - t0) / m.duration)}px`;
    mark.style.display = "block";
    mark.textContent = `audio ${t0.toFixed(2)}–${t1.toFixed(2)} s`;
    mark.dataset.t0 = t0;
    mark.dataset.t1 = t1;
  }

  /* The same stretch as a band on the hovered plot's own time axis (the player may be
   * scrolled out of view). */
  function spanBand(gd, xaxis, t0, t1) {
    const box = gd.querySelector(".svg-container");
    let band = box && box.querySelector(".echo-span-band");
    const perSecond = ((gd.layout.meta || {}).echo_time || {})[xaxis];
    const xa = gd._fullLayout && gd._fullLayout[xaxis];
    const ya = xa && gd._fullLayout[axisKey("y", xa.anchor)];
    if (!box || t0 === null || !perSecond || !ya) {
      if (band) band.style.display = "none";
      return;
    }
    if (!band) {
      band = document.createElement("div");
      band.className = "echo-span-band";
      band.style.cssText = "position:absolute;pointer-events:none;z-index:4;" +
        "background:rgba(255,255,255,0.25);border:1px solid #39ff14";
      box.appendChild(band);
    }
    const [a, b] = [xa.l2p(t0 * perSecond), xa.l2p(t1 * perSecond)];
    band.style.left = `${xa._offset + Math.min(a, b)}px`;
    band.style.width = `${Math.max(2, Math.abs(b - a))}px`;
    band.style.top = `${ya._offset}px`;
    band.style.height = `${ya._length}px`;
    band.style.display = "block";
  }

  function onClick(gd, ev) {
    const p = ev && ev.points && ev.points[0];
    const meta = p && p.data && p.data.meta;
    if (!meta) return;
    if (meta.echo_seek === "x") {
      const perSecond = ((gd.layout.meta || {}).echo_time || {})[axisKey("x", p.data.xaxis)];
      if (perSecond) seek(Number(p.x) / perSecond);
    } else if (meta.echo_seek === "span" && p.customdata) {
      seek(Number(p.customdata[0]), true, Number(p.customdata[1]));
    } else if (meta.echo_pick && p.customdata) {
      send(meta.echo_pick, {kind: meta.kind, layer: Number(p.customdata[0]),
                            head: Number(p.customdata[1])});
    }
  }

  function attach(gd) {
    if (typeof gd.on !== "function" || gd.__echoOn === gd.on) return;
    gd.__echoOn = gd.on;  // plotly replaces gd.on when it purges a plot: attach again then
    gd.on("plotly_click", (ev) => onClick(gd, ev));
    gd.on("plotly_hover", (ev) => {
      const p = ev && ev.points && ev.points[0];
      if (p && p.data.meta && p.data.meta.echo_seek === "span" && p.customdata) {
        const [t0, t1] = [Number(p.customdata[0]), Number(p.customdata[1])];
        spanMarker(t0, t1);
        spanBand(gd, axisKey("x", p.data.xaxis), t0, t1);
      }
    });
    gd.on("plotly_unhover", () => {
      spanMarker(null);
      spanBand(gd, null, null, null);
    });
    gd.on("plotly_selected", (ev) => {
      const target = (gd.layout.meta || {}).echo_range;
      const range = ev && ev.range && ev.range.x;
      if (target && range) send(target, {range: [Math.min(...range), Math.max(...range)]});
    });
  }

  function drawPlayheads(t, show) {
    for (const gd of document.querySelectorAll(".js-plotly-plot")) {
      const axes = gd.layout && gd.layout.meta && gd.layout.meta.echo_time;
      const full = gd._fullLayout;
      const box = gd.querySelector(".svg-container");
      if (!axes || !full || !box) continue;
      for (const [key, perSecond] of Object.entries(axes)) {
        const xa = full[key];
        const ya = xa && full[axisKey("y", xa.anchor)];
        let line = box.querySelector(`.echo-playhead[data-axis="${key}"]`);
        if (!xa || !ya) continue;
        if (!line) {
          line = document.createElement("div");
          line.className = "echo-playhead";
          line.dataset.axis = key;
          line.style.cssText = "position:absolute;width:2px;margin-left:-1px;z-index:5;" +
            "pointer-events:none;background:#39ff14;box-shadow:0 0 0 1px rgba(0,0,0,0.55)";
          box.appendChild(line);
        }
        const value = t * perSecond;
        const [lo, hi] = [Math.min(...xa.range), Math.max(...xa.range)];
        const visible = show && value >= lo && value <= hi;
        line.style.display = visible ? "block" : "none";
        if (!visible) continue;
        line.style.left = `${xa._offset + xa.l2p(value)}px`;
        line.style.top = `${ya._offset}px`;
        line.style.height = `${ya._length}px`;
        line.dataset.time = t.toFixed(3);
      }
    }
  }

  function tick() {
    raf = 0;
    const m = media();
    const t = m ? m.currentTime : 0;
    if (m && stopAt !== null && t >= stopAt) {
      m.pause();
      stopAt = null;
    }
    drawPlayheads(t, !!m && (t > 0 || !m.paused));
    if (m && !m.paused) raf = requestAnimationFrame(tick);
  }

  function kick() {
    if (!raf) raf = requestAnimationFrame(tick);
  }

  function watchMedia() {
    const m = media();
    if (!m || m.__echoNav) return;
    m.__echoNav = true;
    for (const name of ["play", "seeked", "timeupdate", "pause", "loadedmetadata"]) {
      m.addEventListener(name, kick);
    }
  }

  /* A plot gradio has just (re)drawn gets its listeners at the latest when the pointer
   * reaches it: a click within the timer's period after a redraw was otherwise lost. */
  for (const name of ["pointerover", "pointerdown"]) {
    document.addEventListener(name, (ev) => {
      const gd = ev.target && ev.target.closest && ev.target.closest(".js-plotly-plot");
      if (gd) attach(gd);
    }, true);
  }

  setInterval(() => {  // new plots and players appear whenever gradio re-renders
    document.querySelectorAll(".js-plotly-plot").forEach(attach);
    watchMedia();
    kick();
  }, 400);
  window.echoNav = {media, seek};
})();
