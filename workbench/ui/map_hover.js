/* Echo Workbench map hover (issue #20): values under the pointer for maps drawn as images.
 *
 * Loaded once into the page <head> with playhead.js. A map that a slider redraws carries no
 * hover trace (plotly paints and encodes an invisible heatmap at plot size on every redraw,
 * which cost more than the rest of the figure); its image trace declares a grid of values in
 * `meta.echo_hover` (workbench/nav_meta.py, hover_values) and this script shows the value of
 * the grid cell nearest the pointer in a tooltip, in the plot's own axis units.
 */
(() => {
  if (window.echoHover) return;

  const DTYPES = {f4: Float32Array, f8: Float64Array, i4: Int32Array, u1: Uint8Array};

  /* plotly.py sends numpy arrays as {dtype, bdata (base64), shape}; plain lists pass. */
  function decode(v) {
    if (Array.isArray(v)) {
      const flat = v.flat();
      return {data: flat, cols: Array.isArray(v[0]) ? v[0].length : flat.length};
    }
    if (!v || !v.bdata) return null;
    const raw = atob(v.bdata);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    const data = new (DTYPES[v.dtype] || Float32Array)(bytes.buffer);
    const shape = String(v.shape || data.length).split(",").map(Number);
    return {data, cols: shape.length > 1 ? shape[1] : data.length};
  }

  function nearest(values, v) {  // index of the closest of ascending values (binary search)
    let lo = 0, hi = values.length - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (values[mid] < v) lo = mid; else hi = mid;
    }
    return Math.abs(values[hi] - v) < Math.abs(values[lo] - v) ? hi : lo;
  }

  function fmt(v) {
    if (!Number.isFinite(v)) return "–";
    return Number.isInteger(v) ? String(v) : String(Number(v.toFixed(3)));
  }

  /* The decoded grids of a plot, rebuilt when plotly has new data. */
  function grids(gd) {
    if (gd.__echoHoverData === gd.data) return gd.__echoHoverGrids;
    const out = [];
    for (const trace of gd.data || []) {
      const h = trace.meta && trace.meta.echo_hover;
      if (!h) continue;
      const x = decode(h.x), y = decode(h.y), z = decode(h.z);
      if (!x || !y || !z) continue;
      out.push({h, x: x.data, y: y.data, z: z.data, cols: z.cols,
                xaxis: `xaxis${(trace.xaxis || "x").slice(1)}`,
                yaxis: `yaxis${(trace.yaxis || "y").slice(1)}`});
    }
    gd.__echoHoverData = gd.data;
    gd.__echoHoverGrids = out;
    return out;
  }

  /* The tooltip lives inside the plot's own .svg-container (as the playhead does): an element
   * added to <body> disturbed Gradio's page (clicks on other plots were lost afterwards). */
  function tooltip(gd) {
    const box = gd.querySelector(".svg-container");
    if (!box) return null;
    let tip = box.querySelector(".echo-map-hover");
    if (!tip) {
      tip = document.createElement("div");
      tip.className = "echo-map-hover";
      tip.style.cssText = "position:absolute;z-index:1000;pointer-events:none;display:none;" +
        "background:#333;color:#fff;font:12px sans-serif;padding:4px 7px;border-radius:3px;" +
        "white-space:pre;line-height:1.35";
      box.appendChild(tip);
    }
    return tip;
  }

  function show(gd, ev) {
    const full = gd._fullLayout;
    const svg = gd.querySelector(".main-svg");
    const t = tooltip(gd);
    if (!full || !svg || !t) return;
    const box = svg.getBoundingClientRect();
    const px = ev.clientX - box.left, py = ev.clientY - box.top;
    for (const g of grids(gd)) {
      const xa = full[g.xaxis], ya = full[g.yaxis];
      if (!xa || !ya) continue;
      const [u, v] = [px - xa._offset, py - ya._offset];
      if (u < 0 || u > xa._length || v < 0 || v > ya._length) continue;
      const col = nearest(g.x, xa.p2l(u)), row = nearest(g.y, ya.p2l(v));
      const [xv, yv, zv] = [g.x[col], g.y[row], g.z[row * g.cols + col]];
      const L = g.h.labels || {};
      const lines = [`${L.y || "y"}=${fmt(yv)}`, `${L.x || "x"}=${fmt(xv)}`];
      if (L.lag) lines.push(`lag=${fmt(Math.abs(xv - yv))}`);
      lines.push(`${L.z || "value"}=${Number.isFinite(zv) ? zv.toFixed(3) : "–"}`);
      if (g.h.name) lines.push(g.h.name);
      t.textContent = lines.join("\n");
      t.dataset.row = row;
      t.dataset.col = col;
      t.dataset.value = zv;
      t.style.left = `${px + 14}px`;
      t.style.top = `${py + 12}px`;
      t.style.display = "block";
      return;
    }
    t.style.display = "none";
  }

  /* One listener for the page: the plot under the pointer (gradio creates and replaces plots
   * at will, so nothing is attached to them, and nothing polls for them). */
  let current = null;
  document.addEventListener("mousemove", (ev) => {
    const gd = ev.target && ev.target.closest && ev.target.closest(".js-plotly-plot");
    if (current && current !== gd) {
      const t = current.querySelector(".echo-map-hover");
      if (t) t.style.display = "none";
    }
    current = gd || null;
    if (gd) show(gd, ev);
  }, {passive: true});
  window.echoHover = {show, grids};
})();
