/**
 * From map values to colours, with no Node or tfjs import: the overlay PNGs (overlay.ts) and the results
 * view's canvases (webview/results/gallery.ts) use this one module, so a map looks the same in both.
 * Scaling a map to [0, 1] (per image or on a shared scale) lives here too, for the same reason.
 */

/**
 * viridis (default) and turbo are perceptually ordered: equal steps in the map look like equal steps in
 * colour, so a bright spot is a strong value rather than an artefact of the palette. jet is offered because
 * most published Grad-CAM figures use it; its bright cyan and yellow bands invent edges that are not in the map.
 */
export type ColormapName = 'viridis' | 'turbo' | 'jet';
export const COLORMAPS: readonly ColormapName[] = ['viridis', 'turbo', 'jet'];
export const DEFAULT_COLORMAP: ColormapName = 'viridis';

export function isColormapName(value: unknown): value is ColormapName {
  return typeof value === 'string' && (COLORMAPS as readonly string[]).includes(value);
}

/** A channel as piecewise-linear knots: sorted positions in [0, 1] and the values (0–255) there. */
interface ChannelKnots {
  at: readonly number[];
  value: readonly number[];
}

/** The same knots for three channels from a table of RGB colours at evenly spaced positions. */
function evenlySpaced(colours: readonly (readonly [number, number, number])[]): ChannelKnots[] {
  const at = colours.map((_, i) => i / (colours.length - 1));
  return [0, 1, 2].map((channel) => ({ at, value: colours.map((colour) => colour[channel]) }));
}

/**
 * viridis and turbo sampled at 33 evenly spaced points from matplotlib 3.6 (`cm.get_cmap(name)(i / 32)`,
 * rounded to bytes). Linear interpolation between them stays within 3.3/255 of the full 256-entry tables.
 */
const VIRIDIS = evenlySpaced([
  [68, 1, 84],
  [71, 13, 96],
  [72, 24, 106],
  [72, 35, 116],
  [71, 45, 123],
  [69, 55, 129],
  [66, 64, 134],
  [62, 73, 137],
  [59, 82, 139],
  [55, 91, 141],
  [51, 99, 141],
  [47, 107, 142],
  [44, 114, 142],
  [41, 122, 142],
  [38, 130, 142],
  [35, 137, 142],
  [33, 145, 140],
  [31, 152, 139],
  [31, 160, 136],
  [34, 167, 133],
  [40, 174, 128],
  [50, 182, 122],
  [63, 188, 115],
  [78, 195, 107],
  [94, 201, 98],
  [112, 207, 87],
  [132, 212, 75],
  [152, 216, 62],
  [173, 220, 48],
  [194, 223, 35],
  [216, 226, 25],
  [236, 229, 27],
  [253, 231, 37],
]);

const TURBO = evenlySpaced([
  [48, 18, 59],
  [57, 42, 115],
  [64, 64, 162],
  [68, 86, 199],
  [70, 107, 227],
  [70, 128, 246],
  [66, 148, 255],
  [55, 168, 250],
  [40, 188, 235],
  [28, 205, 216],
  [24, 221, 194],
  [31, 233, 175],
  [50, 242, 152],
  [78, 249, 125],
  [109, 254, 98],
  [139, 255, 75],
  [164, 252, 60],
  [185, 246, 53],
  [205, 236, 52],
  [223, 223, 55],
  [238, 207, 58],
  [248, 190, 57],
  [253, 172, 52],
  [254, 150, 43],
  [251, 126, 33],
  [244, 102, 23],
  [235, 80, 14],
  [223, 63, 8],
  [208, 47, 5],
  [190, 33, 2],
  [169, 22, 1],
  [146, 11, 1],
  [122, 4, 3],
]);

/** matplotlib's jet, which is defined by exactly these knots per channel (dark blue → cyan → yellow → dark red). */
const JET: ChannelKnots[] = [
  { at: [0, 0.35, 0.66, 0.89, 1], value: [0, 0, 255, 255, 127.5] },
  { at: [0, 0.125, 0.375, 0.64, 0.91, 1], value: [0, 0, 255, 255, 0, 0] },
  { at: [0, 0.11, 0.34, 0.65, 1], value: [127.5, 255, 255, 0, 0] },
];

const KNOTS: Record<ColormapName, ChannelKnots[]> = { viridis: VIRIDIS, turbo: TURBO, jet: JET };

function interpolate({ at, value }: ChannelKnots, t: number): number {
  let i = 1;
  while (i < at.length - 1 && at[i] < t) i++;
  const fraction = (t - at[i - 1]) / (at[i] - at[i - 1]);
  return value[i - 1] + (value[i] - value[i - 1]) * Math.min(1, Math.max(0, fraction));
}

/** 256-entry RGB lookup table of a colormap; entry i is the colour of i/255. A fresh copy: the caller may keep or change it. */
export function colormapTable(name: ColormapName): Uint8Array {
  const knots = KNOTS[name];
  const table = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    for (let channel = 0; channel < 3; channel++)
      table[i * 3 + channel] = Math.round(interpolate(knots[channel], i / 255));
  }
  return table;
}

const tables = new Map<ColormapName, Uint8Array>();

/** The table of `name`, built once; private because callers could otherwise repaint every later overlay. */
function cachedTable(name: ColormapName): Uint8Array {
  let table = tables.get(name);
  if (!table) tables.set(name, (table = colormapTable(name)));
  return table;
}

/** The table entry of a value in [0, 1]: clamped, NaN counts as 0, rounded to the nearest of 256 steps. */
export function colourIndex(value: number): number {
  return value > 0 ? Math.round(Math.min(1, value) * 255) : 0;
}

/** The colour of a value in [0, 1] (clamped; NaN counts as 0). */
export function colourOf(name: ColormapName, value: number): [number, number, number] {
  const table = cachedTable(name);
  const i = colourIndex(value) * 3;
  return [table[i], table[i + 1], table[i + 2]];
}

/**
 * Values in [0, 1] (clamped) as opaque RGBA bytes, one pixel per value in the same order: what a canvas
 * `ImageData` holds.
 */
export function colouriseRgba(
  unitMap: ArrayLike<number>,
  name: ColormapName = DEFAULT_COLORMAP,
): Uint8ClampedArray<ArrayBuffer> {
  const table = cachedTable(name);
  const rgba = new Uint8ClampedArray(unitMap.length * 4);
  for (let p = 0; p < unitMap.length; p++) {
    const colour = colourIndex(unitMap[p]) * 3;
    rgba[p * 4] = table[colour];
    rgba[p * 4 + 1] = table[colour + 1];
    rgba[p * 4 + 2] = table[colour + 2];
    rgba[p * 4 + 3] = 255;
  }
  return rgba;
}

/** (v − min) / (max − min): the map's own range becomes [0, 1]; a flat map becomes all 0 (nothing stands out). */
export function normalisePerImage(map: Float32Array): Float32Array {
  let min = Infinity;
  let max = -Infinity;
  for (const value of map) {
    min = Math.min(min, value);
    max = Math.max(max, value);
  }
  const range = max - min;
  return map.map((value) => (range > 0 ? (value - min) / range : 0));
}

/**
 * A scale shared by a set of maps: the largest value of any of them. Dividing by it keeps zero at zero and
 * keeps the ratio between images, so a weak map looks weak next to a strong one (per-image scaling would
 * stretch both to full brightness).
 */
export function sharedScale(maps: readonly Float32Array[]): number {
  let max = 0;
  for (const map of maps) for (const value of map) max = Math.max(max, value);
  return max;
}

/** v / scale clamped to [0, 1]; with a zero scale (all maps blank) everything is 0. */
export function normaliseShared(map: Float32Array, scale: number): Float32Array {
  return map.map((value) => (scale > 0 ? Math.min(1, Math.max(0, value / scale)) : 0));
}
