/**
 * Grad-CAM maps painted in the page: the raw map at the layer's resolution (`ExplainedSample.cam`) scaled
 * to [0, 1], coloured with the chosen colour map into an ImageData of that same small size, and drawn scaled
 * up onto a canvas the size of the network input with image smoothing (bilinear). The canvas lies over the
 * input image; its CSS opacity is the overlay opacity. Nothing reads the image's pixels: webview image URIs
 * are cross-origin, and the map does not need them.
 */
import {
  colouriseRgba,
  normalisePerImage,
  normaliseShared,
  type ColormapName,
} from '../../src/core/explain/colormaps.js';

/** A map the page can draw: a non-empty rectangle of finite numbers (run.json is data; it is checked, not trusted). */
export function isCam(value: unknown): value is number[][] {
  if (!Array.isArray(value) || value.length === 0 || !Array.isArray(value[0]) || value[0].length === 0) return false;
  const width = value[0].length;
  return value.every(
    (row) =>
      Array.isArray(row) && row.length === width && row.every((v) => typeof v === 'number' && Number.isFinite(v)),
  );
}

/** The map as [0, 1] values, row-major: its own range (`scale` undefined), or divided by a run-wide scale. */
export function unitCam(cam: readonly (readonly number[])[], scale?: number): Float32Array {
  const flat = Float32Array.from(cam.flat());
  return scale === undefined ? normalisePerImage(flat) : normaliseShared(flat, scale);
}

/** The largest value of any map: the shared scale of runs whose run.json does not record `sharedScale`. */
export function largestValue(cams: readonly (readonly (readonly number[])[])[]): number {
  let max = 0;
  for (const cam of cams) for (const row of cam) for (const value of row) max = Math.max(max, value);
  return max;
}

/**
 * Paints `cam` over the whole of `canvas` (whose width and height are the image size). The small coloured
 * map goes through a scratch canvas because `putImageData` does not scale; `drawImage` does, smoothly.
 */
export function paintCam(
  canvas: HTMLCanvasElement,
  cam: readonly (readonly number[])[],
  colormap: ColormapName,
  scale?: number,
): void {
  const rows = cam.length;
  const columns = cam[0].length;
  const small = document.createElement('canvas');
  small.width = columns;
  small.height = rows;
  const smallContext = small.getContext('2d');
  const context = canvas.getContext('2d');
  if (!smallContext || !context) return;
  smallContext.putImageData(new ImageData(colouriseRgba(unitCam(cam, scale), colormap), columns, rows), 0, 0);
  context.clearRect(0, 0, canvas.width, canvas.height);
  context.imageSmoothingEnabled = true;
  // 'low' is plain bilinear filtering in Chromium; the higher settings add mipmaps or cubic filters.
  context.imageSmoothingQuality = 'low';
  context.drawImage(small, 0, 0, canvas.width, canvas.height);
  canvas.dataset.colormap = colormap;
}

/** The colour map from low to high as a small canvas, drawn from the same table as the maps. */
export function colormapBar(colormap: ColormapName): HTMLCanvasElement {
  const bar = document.createElement('canvas');
  bar.className = 'colormap';
  bar.setAttribute('aria-hidden', 'true');
  bar.width = 256;
  bar.height = 1;
  const ramp = Float32Array.from({ length: 256 }, (_, i) => i / 255);
  bar.getContext('2d')?.putImageData(new ImageData(colouriseRgba(ramp, colormap), 256, 1), 0, 0);
  return bar;
}
