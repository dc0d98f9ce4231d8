// A self-contained HTML page of a demo run: the table and the training curves as inline SVG
// (no network, no external CSS or JavaScript).
import { COLUMNS, formatTable } from './table';
import type { DemoCurve, DemoResult } from './run';

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const COLORS = ['#c0392b', '#2471a3', '#229954', '#8e44ad'];

/** One line chart: a series per curve, x = epoch, y = value(epoch). */
function chart(title: string, curves: DemoCurve[], value: (e: DemoCurve['epochs'][number]) => number | null, yLabel: string, percent: boolean): string {
  const W = 520;
  const H = 300;
  const m = { l: 58, r: 16, t: 28, b: 40 };
  const series = curves.map((c) => c.epochs.map((e) => [e.epoch, value(e)] as [number, number | null]).filter((p): p is [number, number] => p[1] !== null && Number.isFinite(p[1])));
  const xs = series.flat().map((p) => p[0]);
  const ys = series.flat().map((p) => p[1]);
  if (ys.length === 0) return `<p>${esc(title)}: no data</p>`;
  const x0 = Math.min(1, ...xs);
  const x1 = Math.max(x0 + 1, ...xs);
  let y0 = Math.min(...ys);
  let y1 = Math.max(...ys);
  if (y1 - y0 < 1e-9) {
    y0 -= 0.5;
    y1 += 0.5;
  }
  const pad = (y1 - y0) * 0.08;
  y0 -= pad;
  y1 += pad;
  const px = (x: number) => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
  const py = (y: number) => H - m.b - ((y - y0) / (y1 - y0)) * (H - m.t - m.b);
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">`);
  parts.push(`<text x="${W / 2}" y="18" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`);
  for (let i = 0; i <= 4; i++) {
    const y = y0 + ((y1 - y0) * i) / 4;
    const label = percent ? `${(y * 100).toFixed(1)}%` : y.toFixed(3);
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${py(y).toFixed(1)}" y2="${py(y).toFixed(1)}" stroke="#ddd"/>`);
    parts.push(`<text x="${m.l - 6}" y="${(py(y) + 4).toFixed(1)}" text-anchor="end" font-size="11">${label}</text>`);
  }
  const xStep = Math.max(1, Math.ceil((x1 - x0) / 10));
  for (let x = Math.ceil(x0); x <= x1; x += xStep) {
    parts.push(`<text x="${px(x).toFixed(1)}" y="${H - m.b + 16}" text-anchor="middle" font-size="11">${x}</text>`);
  }
  parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 6}" text-anchor="middle" font-size="12">epoch</text>`);
  parts.push(`<text x="14" y="${(m.t + H - m.b) / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 14 ${(m.t + H - m.b) / 2})">${esc(yLabel)}</text>`);
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" fill="none" stroke="#888"/>`);
  series.forEach((pts, i) => {
    const color = COLORS[i % COLORS.length];
    if (pts.length > 1) parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y] of pts) parts.push(`<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${color}"/>`);
    parts.push(`<rect x="${m.l + 10}" y="${m.t + 8 + i * 16}" width="12" height="3" fill="${color}"/>`);
    parts.push(`<text x="${m.l + 26}" y="${m.t + 13 + i * 16}" font-size="11">${esc(curves[i].model)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** The report page (a complete HTML document). */
export function htmlReport(result: DemoResult): string {
  const head = COLUMNS.map((c) => `<th title="${esc(c.meaning)}">${esc(c.title)}</th>`).join('');
  const rows = result.rows.map((r) => `<tr>${COLUMNS.map((c) => `<td>${esc(c.cell(r))}</td>`).join('')}</tr>`).join('\n');
  const legend = COLUMNS.map((c) => `<dt>${esc(c.title)}</dt><dd>${esc(c.meaning)}</dd>`).join('\n');
  const summary = formatTable(result).split('\n').slice(result.rows.length + 3).filter(Boolean);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>joule demo: teacher, distilled student, int8 student</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 14px; }
th, td { border: 1px solid #bbb; padding: 4px 8px; text-align: right; }
th { background: #f0f0f0; }
td:first-child, td:nth-child(2) { text-align: left; }
.charts { display: flex; flex-wrap: wrap; gap: 1em; margin-top: 1.5em; }
dt { font-weight: bold; margin-top: .4em; }
dd { margin-left: 1.5em; }
pre { background: #f7f7f7; padding: .6em; overflow-x: auto; }
</style>
</head>
<body>
<h1>joule demo</h1>
<p>MNIST: a teacher, a small student trained from labels alone, the same student distilled from the teacher (T = ${result.config.temperature}, alpha = ${result.config.alpha}), and the distilled student quantized to int8.</p>
<table>
<thead><tr>${head}</tr></thead>
<tbody>
${rows}
</tbody>
</table>
<ul>
${summary.map((l) => `<li>${esc(l)}</li>`).join('\n')}
</ul>
<div class="charts">
${chart('training loss', result.curves, (e) => e.loss, 'loss (train)', false)}
${chart('validation accuracy', result.curves, (e) => e.valAccuracy, `accuracy (${result.config.curveSamples} test images)`, true)}
</div>
<h2>Columns</h2>
<dl>
${legend}
</dl>
<h2>Configuration</h2>
<pre>${esc(JSON.stringify(result.config, null, 2))}</pre>
</body>
</html>
`;
}
