// A small SVG line chart: one line per series over block numbers.

import { h } from './dom';

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c'];
const NS = 'http://www.w3.org/2000/svg';

export interface Series { name: string; points: [number, number][] }

function svg (tag: string, attrs: Record<string, string | number>): SVGElement {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** A chart of `series` (x: block, y: value) titled `title`, values printed by `format`. */
export function lineChart (title: string, series: Series[], format: (v: number) => string): HTMLElement {
  const width = 560, height = 180, pad = 36;
  const all = series.flatMap((s) => s.points);
  const figure = h('figure', { class: 'chart' }, h('figcaption', {}, title));
  if (all.length < 2) {
    figure.append(h('p', { class: 'muted' }, 'collecting: one point per finalized block'));
    return figure;
  }
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  // The blocks it spans, for tests and tools reading the page.
  figure.dataset.first = String(x0);
  figure.dataset.last = String(x1);
  const y1 = Math.max(...ys, 1);
  const sx = (x: number) => pad + ((x - x0) / Math.max(x1 - x0, 1)) * (width - 2 * pad);
  const sy = (y: number) => height - pad / 2 - (y / y1) * (height - pad);
  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `${title}: ${series.map((s) => `${s.name} ${format(s.points.at(-1)?.[1] ?? 0)}`).join(', ')}` });
  root.append(svg('line', { x1: pad, y1: height - pad / 2, x2: width - pad, y2: height - pad / 2, stroke: '#999' }));
  const top = svg('text', { x: 2, y: 12, 'font-size': 10 }); top.textContent = format(y1); root.append(top);
  const left = svg('text', { x: pad, y: height - 2, 'font-size': 10 }); left.textContent = `#${x0}`; root.append(left);
  const right = svg('text', { x: width - pad, y: height - 2, 'font-size': 10, 'text-anchor': 'end' }); right.textContent = `#${x1}`; root.append(right);
  series.forEach((s, i) => {
    if (s.points.length === 0) return;
    root.append(svg('polyline', {
      fill: 'none', stroke: COLORS[i % COLORS.length], 'stroke-width': 2,
      points: s.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')
    }));
  });
  figure.append(root, h('ul', { class: 'legend' }, ...series.map((s, i) =>
    h('li', { style: `--c:${COLORS[i % COLORS.length]}` }, `${s.name}: ${format(s.points.at(-1)?.[1] ?? 0)}`))));
  return figure;
}
