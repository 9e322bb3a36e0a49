// Slider steps the page paints itself (see workbench/ui/live_route.py for why).
//
// A theta, radius-tilt or bias-scale slider move, or a head-dim click, posts the controls'
// values to the app's /echo/live route and hands the figures that come back to Plotly.react
// on the plots already shown (the same figures Gradio's event draws when the slider is released,
// built by the same Python callbacks). The clip key and Praat settings come from the figures
// themselves (layout.meta.echo_live); with no figure drawn yet, or any error, nothing happens
// here and Gradio's event does the work (and shows any message).
//
// Only plots on screen are redrawn at each step: a theta step's four figures cost ~160 ms of
// Plotly.react, a quarter to a third of it for plots below the fold (benchmarks/RESULTS.md).
// An answer for a plot off screen waits; it is drawn as soon as the plot scrolls into view, or
// once the steps pause (IDLE_MS without a request), one plot per task so input stays served.
// A waiting answer is dropped if anything else (Gradio) redraws that plot meanwhile.
(() => {
  const ROUTE = "echo/live";
  // control elem_id -> the views it redraws, the plot whose meta names the clip, its field
  const CONTROLS = {
    "theta": {views: ["rotary"], from: "sim-plot", field: "log10_theta"},
    "tilt": {views: ["variants"], from: "variants-plot", field: "tilt"},
    "head-dim": {views: ["rotary", "sweep"], from: "sim-plot", field: "head_dim"},
    "bias-scale": {views: ["bias"], from: "bias-plot", field: "scale"},
  };
  const busy = {};  // control -> a request in flight
  const next = {};  // control -> the newest values waiting for it
  let stamp = 0;  // paint only the newest answer per plot
  const painted = {};  // elem_id -> stamp of what it shows
  const waiting = {};  // elem_id -> {fig, mine, shown}: an answer for a plot off screen
  const IDLE_MS = 120;  // steps paused this long: draw the waiting answers
  let idleTimer = 0;

  const plot = (id) => document.querySelector(`#${id} .js-plotly-plot`);
  const number = (v) => (v === undefined || v === "" ? NaN : Number(v));

  function sliderValue(id) {
    const range = document.querySelector(`#${id} input[type=range]`);
    return range ? number(range.value) : NaN;
  }

  function controlValues(live) {
    // The live sliders and the head dim as the page shows them; unit and grid from the figure.
    const head = document.querySelector("#head-dim input:checked");
    return {
      key: live.key, praat: live.praat, unit: live.unit, grid: live.grid || "frames",
      log10_theta: sliderValue("theta"), tilt: sliderValue("tilt"),
      scale: sliderValue("bias-scale"), head_dim: head ? number(head.value) : NaN,
    };
  }

  function inRange(input, value) {
    // A typed value outside the slider's range is Gradio's to clamp and explain.
    const lo = number(input.min), hi = number(input.max);
    return Number.isFinite(value) && !(value < lo) && !(value > hi);
  }

  function markdownHtml(text) {
    const esc = text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
    return "<p>" + esc.replace(/\*\*(.+?)\*\*/g, "<strong>$1</strong>") + "</p>";
  }

  function onScreen(el) {
    const r = el.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && r.bottom > 0 && r.right > 0 &&
      r.top < window.innerHeight && r.left < window.innerWidth;
  }

  // A figure less what a map's step may change on its own: its image traces' pictures, names
  // and hover grids, and the text of its plain-text annotations (the panel titles). Equal
  // frames: the step changes those alone (the similarity and variant maps on a theta step: their
  // colour bars are rounded out and hold still, workbench/figures.nice_ceiling), and swapping
  // them beats a Plotly.react (a full replot: axes, colour bars, titles; ~50 ms for three maps).
  const plain = (s) => typeof s === "string" && !/[<>&\n]/.test(s);  // drawn as a bare text node
  function frame(fig) {
    const data = (fig.data || []).map((t) => (t.type === "image" ?
      {...t, source: 0, meta: 0, name: 0} : t));
    const layout = fig.layout || {};
    const notes = (layout.annotations || []).map((a) => (plain(a.text) ? {...a, text: 0} : a));
    return JSON.stringify([data, {...layout, annotations: notes}]);
  }
  const framed = {};  // elem_id -> {frame, data}: the frame of what the page drew last, gd.data

  function swapInPlace(gd, fig) {
    // plotly draws an image trace with a source as an SVG <image> of that source, in a g.im
    // bound to the trace's calcdata; an annotation as g.annotation[data-index] > text
    const shown = new Map();
    for (const g of gd.querySelectorAll("g.im")) {
      const trace = g.__data__ && g.__data__[0] && g.__data__[0].trace;
      if (trace) shown.set(trace.index, g.querySelector("image"));
    }
    const images = [];
    for (const [i, t] of fig.data.entries()) {
      if (t.type !== "image") continue;
      if (!gd._fullData[i] || (t.source !== gd.data[i].source && !shown.get(i))) return false;
      images.push([i, t]);
    }
    const texts = [];
    const wasNotes = gd.layout.annotations || [];
    for (const [i, a] of ((fig.layout || {}).annotations || []).entries()) {
      if (!wasNotes[i] || a.text === wasNotes[i].text) continue;
      const el = gd.querySelector(`g.annotation[data-index="${i}"] text.annotation-text`);
      if (!el || !gd._fullLayout.annotations[i]) return false;
      texts.push([i, a.text, el]);
    }
    for (const [i, t] of images) {
      if (t.source !== gd.data[i].source) shown.get(i).setAttribute("href", t.source);
      for (const trace of [gd.data[i], gd._fullData[i]]) {
        trace.source = t.source;
        trace.meta = t.meta;
        trace.name = t.name;
      }
    }
    for (const [i, text, el] of texts) {
      el.textContent = text;
      el.setAttribute("data-unformatted", text);
      wasNotes[i].text = text;
      gd._fullLayout.annotations[i].text = text;
    }
    gd.__echoHoverData = null;  // map_hover.js reads the grids again
    return true;
  }

  function draw(gd, id, fig, mine) {
    const now = frame(fig);
    const last = framed[id];
    if (last && last.data === gd.data && last.frame === now && swapInPlace(gd, fig)) {
      painted[id] = mine;
      return;
    }
    const layout = fig.layout || {};
    // As Gradio's Plot draws a figure, so that its own redraw later changes nothing.
    layout.autosize = true;
    layout.margin = layout.margin || {};
    const shown = (gd.layout && gd.layout.margin && gd.layout.margin.t) || 0;
    if (shown > (layout.margin.t || 0)) layout.margin.t = shown;
    layout.margin.autoexpand = true;
    window.Plotly.react(gd, fig.data, layout, {...(fig.config || {}), responsive: true});
    framed[id] = {frame: now, data: gd.data};
    painted[id] = mine;
  }

  function drawWaiting(id) {
    const w = waiting[id];
    delete waiting[id];
    const gd = plot(id);
    // gd.data is replaced by every Plotly.react: another object means Gradio redrew the plot
    if (!w || !gd || gd.data !== w.shown || (painted[id] || 0) > w.mine) return;
    draw(gd, id, w.fig, w.mine);
  }

  const seen = "IntersectionObserver" in window ? new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (entry.isIntersecting && waiting[entry.target.id]) drawWaiting(entry.target.id);
    }
  }) : null;

  function drawWhenIdle() {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(function drawOne() {
      if (Object.values(busy).some(Boolean) || Object.keys(next).length) return drawWhenIdle();
      const id = Object.keys(waiting)[0];
      if (id === undefined) return;
      drawWaiting(id);
      idleTimer = setTimeout(drawOne, 0);  // one plot per task: a new step can come first
    }, IDLE_MS);
  }

  function paint(outputs, mine) {
    for (const [id, out] of Object.entries(outputs)) {
      if ((painted[id] || 0) > mine) continue;
      if (out.markdown !== undefined) {
        const box = document.querySelector(`#${id} .prose, #${id} .md`);
        if (box) box.innerHTML = markdownHtml(out.markdown);
        painted[id] = mine;
        continue;
      }
      const gd = plot(id);
      if (!gd || !gd._fullLayout || !window.Plotly) continue;  // not drawn (hidden tab)
      const box = document.getElementById(id);
      if (seen && box && !onScreen(box)) {
        waiting[id] = {fig: out.figure, mine, shown: gd.data};
        seen.observe(box);
        continue;
      }
      delete waiting[id];
      draw(gd, id, out.figure, mine);
    }
    if (Object.keys(waiting).length) drawWhenIdle();
  }

  async function send(control) {
    const values = next[control];
    delete next[control];
    busy[control] = true;
    const mine = ++stamp;
    try {
      const res = await fetch(new URL(ROUTE, window.location.href), {
        method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify({views: CONTROLS[control].views, values}),
      });
      if (res.ok) paint((await res.json()).outputs, mine);
    } catch (err) {
      // the route is a shortcut: Gradio's event still draws this step
    } finally {
      busy[control] = false;
      if (next[control]) send(control);  // the newest value asked for meanwhile
    }
  }

  function request(control, value, input) {
    const spec = CONTROLS[control];
    const gd = plot(spec.from);
    const live = gd && gd.layout && gd.layout.meta && gd.layout.meta.echo_live;
    if (!live || !inRange(input, value)) return;
    next[control] = {...controlValues(live), [spec.field]: value};
    if (!busy[control]) send(control);
  }

  // Gradio's own event for a step the page is painting waits for that paint (its front-end
  // work would otherwise hold the main thread while the answer waits to be drawn): the events
  // wired with js=LIVE_SETTLED in clip_views await this before they go to the server.
  window.echoLiveSettled = (...args) => new Promise((resolve) => {
    const t0 = performance.now();
    const check = () => {
      const idle = !Object.values(busy).some(Boolean) && !Object.keys(next).length;
      if (idle || performance.now() - t0 > 5000) {
        requestAnimationFrame(() => setTimeout(() => resolve(args), 0));
      } else {
        setTimeout(check, 10);
      }
    };
    setTimeout(check, 0);  // after this event's own input handler has sent its request
  });

  document.addEventListener("input", (ev) => {
    const input = ev.target;
    if (!input || !input.closest) return;
    for (const control of ["theta", "tilt", "bias-scale"]) {
      if (input.closest(`#${control}`) && (input.type === "range" || input.type === "number")) {
        request(control, number(input.value), input);
        return;
      }
    }
  }, true);

  document.addEventListener("change", (ev) => {
    const input = ev.target;
    if (input && input.closest && input.closest("#head-dim") && input.type === "radio") {
      request("head-dim", number(input.value), input);
    }
  }, true);
})();
