/* chart.js - a small time-series line chart drawn on a canvas: the last
 * few minutes of one series, with its latest value and its maximum. */
"use strict";

KV.drawChart = function (canvas, points, windowMs, color) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 4, top = 16;
  ctx.clearRect(0, 0, w, h);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, w, h);
  ctx.strokeStyle = "#e3e6ea";
  ctx.lineWidth = 1;
  for (let i = 1; i < 4; i++) {
    const y = top + ((h - top - pad) * i) / 4;
    ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(w, y); ctx.stroke();
  }
  if (points.length === 0) return;
  const now = points[points.length - 1].t;
  let min = Infinity, max = -Infinity;
  for (const p of points) { min = Math.min(min, p.v); max = Math.max(max, p.v); }
  if (min > 0 && max - min < max * 0.5) min = Math.max(0, min - (max - min));
  else min = Math.min(0, min);
  const span = max - min || 1;
  ctx.strokeStyle = color;
  ctx.lineWidth = 2;
  ctx.beginPath();
  points.forEach((p, i) => {
    const x = w - pad - ((now - p.t) / windowMs) * (w - 2 * pad);
    const y = h - pad - ((p.v - min) / span) * (h - top - pad);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
  const last = points[points.length - 1].v;
  ctx.fillStyle = "#1d232a";
  ctx.font = "11px system-ui, sans-serif";
  const fmt = (v) => (Math.abs(v) >= 100 || Number.isInteger(v) ? String(Math.round(v)) : v.toFixed(1));
  ctx.fillText("now " + fmt(last) + "   max " + fmt(max), 4, 11);
  ctx.fillText(Math.round(windowMs / 60000) + " min", w - 36, 11);
};
