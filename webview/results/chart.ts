/**
 * A small line chart in inline SVG: axes with ticks, grid, series with optional markers, an optional
 * diagonal (ROC chance line, perfect calibration) and an optional vertical marker (best epoch). Colours come
 * from CSS classes (`tone-N`) so the theme decides them; series also differ in dash pattern, for
 * colour-blind readers and high-contrast themes.
 */
import { h, svg } from './dom.js';

export type Point = [x: number, y: number];

export interface Series {
  label: string;
  points: Point[];
  /** 1 = training, 2 = validation, 3 = test: the same colour means the same split in every chart. */
  tone: number;
  dashed?: boolean;
  /** Draw a marker per point with a tooltip; `describe` writes the tooltip, `radius` sizes it. */
  markers?: { describe: (index: number) => string; radius?: (index: number) => number };
}

export interface Axis {
  label: string;
  min: number;
  max: number;
  ticks: number[];
  format: (value: number) => string;
}

export interface ChartSpec {
  title: string;
  /** One sentence for screen readers: what the chart shows. */
  description: string;
  x: Axis;
  y: Axis;
  series: Series[];
  diagonal?: string;
  verticalMarker?: { x: number; label: string };
}

const WIDTH = 480;
const HEIGHT = 300;
const MARGIN = { left: 56, right: 16, top: 22, bottom: 46 };

let chartCount = 0;

export function lineChart(spec: ChartSpec): HTMLElement {
  const id = `chart-${++chartCount}`;
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const span = (axis: Axis) => axis.max - axis.min || 1;
  const px = (x: number) => MARGIN.left + ((x - spec.x.min) / span(spec.x)) * plotWidth;
  const py = (y: number) => MARGIN.top + plotHeight - ((y - spec.y.min) / span(spec.y)) * plotHeight;
  const round = (v: number) => Math.round(v * 10) / 10;

  const grid = svg(
    'g',
    { class: 'grid-lines' },
    ...spec.y.ticks.map((t) =>
      svg('line', { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: round(py(t)), y2: round(py(t)) }),
    ),
  );
  const axes = svg(
    'g',
    { class: 'axes' },
    svg('line', {
      x1: MARGIN.left,
      x2: WIDTH - MARGIN.right,
      y1: MARGIN.top + plotHeight,
      y2: MARGIN.top + plotHeight,
    }),
    svg('line', { x1: MARGIN.left, x2: MARGIN.left, y1: MARGIN.top, y2: MARGIN.top + plotHeight }),
    ...spec.x.ticks.map((t) =>
      svg('text', { x: round(px(t)), y: MARGIN.top + plotHeight + 16, 'text-anchor': 'middle' }, spec.x.format(t)),
    ),
    ...spec.y.ticks.map((t) =>
      svg('text', { x: MARGIN.left - 6, y: round(py(t)) + 4, 'text-anchor': 'end' }, spec.y.format(t)),
    ),
    svg(
      'text',
      { class: 'axis-label', x: MARGIN.left + plotWidth / 2, y: HEIGHT - 6, 'text-anchor': 'middle' },
      spec.x.label,
    ),
    svg(
      'text',
      {
        class: 'axis-label',
        x: -(MARGIN.top + plotHeight / 2),
        y: 14,
        transform: 'rotate(-90)',
        'text-anchor': 'middle',
      },
      spec.y.label,
    ),
  );
  const reference = spec.diagonal
    ? svg(
        'line',
        { class: 'reference', x1: px(spec.x.min), y1: py(spec.y.min), x2: px(spec.x.max), y2: py(spec.y.max) },
        svg('title', {}, spec.diagonal),
      )
    : null;
  const marker = spec.verticalMarker
    ? svg(
        'g',
        { class: 'vertical-marker' },
        svg('line', {
          x1: round(px(spec.verticalMarker.x)),
          x2: round(px(spec.verticalMarker.x)),
          y1: MARGIN.top,
          y2: MARGIN.top + plotHeight,
        }),
        // The label sits above the plot, where no series can run through it.
        svg(
          'text',
          { x: round(px(spec.verticalMarker.x)), y: MARGIN.top - 6, 'text-anchor': 'middle' },
          spec.verticalMarker.label,
        ),
      )
    : null;
  const lines = spec.series.map((s) => {
    const d = s.points.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${round(px(x))},${round(py(y))}`).join('');
    const markers = s.markers
      ? s.points.map(([x, y], i) =>
          svg(
            'circle',
            { cx: round(px(x)), cy: round(py(y)), r: s.markers!.radius?.(i) ?? 3 },
            svg('title', {}, s.markers!.describe(i)),
          ),
        )
      : [];
    return svg('g', { class: `series tone-${s.tone}${s.dashed ? ' dashed' : ''}` }, svg('path', { d }), ...markers);
  });
  const chart = svg(
    'svg',
    { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-labelledby': `${id}-title ${id}-desc`, class: 'chart' },
    svg('title', { id: `${id}-title` }, spec.title),
    svg('desc', { id: `${id}-desc` }, spec.description),
    grid,
    reference,
    marker,
    axes,
    ...lines,
  );
  return h(
    'figure',
    { class: 'chart-figure' },
    h('figcaption', {}, spec.title),
    chart,
    h(
      'ul',
      { class: 'legend' },
      ...spec.series.map((s) => h('li', {}, legendSwatch(s), s.label)),
      spec.diagonal ? h('li', {}, legendSwatch(null), spec.diagonal) : null,
    ),
  );
}

function legendSwatch(series: Series | null): SVGElement {
  const cls = series ? `series tone-${series.tone}${series.dashed ? ' dashed' : ''}` : 'reference';
  return svg(
    'svg',
    { class: 'swatch', viewBox: '0 0 24 10', 'aria-hidden': 'true' },
    svg('g', { class: cls }, series ? svg('path', { d: 'M1,5L23,5' }) : svg('line', { x1: 1, y1: 5, x2: 23, y2: 5 })),
  );
}

/** About `count` round tick values covering [min, max]; the axis is widened to the outer ticks. */
export function niceAxis(label: string, min: number, max: number, format: (v: number) => string, count = 5): Axis {
  if (!(max > min)) max = min + 1;
  const raw = (max - min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? raw;
  const lo = Math.floor(min / step + 1e-9) * step;
  const hi = Math.ceil(max / step - 1e-9) * step;
  const ticks: number[] = [];
  for (let v = lo; v <= hi + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
  return { label, min: lo, max: hi, ticks, format };
}

/** The unit interval, for rates and probabilities. */
export function unitAxis(label: string): Axis {
  return { label, min: 0, max: 1, ticks: [0, 0.2, 0.4, 0.6, 0.8, 1], format: (v) => v.toFixed(1) };
}
