import type { RawImage } from '../types.js';

/**
 * Encodes pixels as an uncompressed 24-bit bottom-up BMP (BITMAPINFOHEADER), the variant C-NMC ships.
 * Grey and RGBA input are converted to RGB; alpha is dropped.
 */
export function encodeBmp24(image: RawImage): Uint8Array {
  const { width, height, channels, data } = image;
  const rowBytes = Math.ceil((width * 3) / 4) * 4; // rows are padded to 4 bytes
  const pixelOffset = 14 + 40;
  const fileSize = pixelOffset + rowBytes * height;
  const out = new Uint8Array(fileSize);
  const view = new DataView(out.buffer);
  out[0] = 0x42; // 'B'
  out[1] = 0x4d; // 'M'
  view.setUint32(2, fileSize, true);
  view.setUint32(10, pixelOffset, true);
  view.setUint32(14, 40, true); // BITMAPINFOHEADER
  view.setInt32(18, width, true);
  view.setInt32(22, height, true); // positive height = bottom-up
  view.setUint16(26, 1, true); // planes
  view.setUint16(28, 24, true); // bits per pixel
  view.setUint32(30, 0, true); // BI_RGB
  view.setUint32(34, rowBytes * height, true);
  view.setInt32(38, 2835, true); // 72 dpi
  view.setInt32(42, 2835, true);
  for (let y = 0; y < height; y++) {
    const dstRow = pixelOffset + (height - 1 - y) * rowBytes;
    for (let x = 0; x < width; x++) {
      const src = (y * width + x) * channels;
      const r = data[src];
      const g = channels === 1 ? r : data[src + 1];
      const b = channels === 1 ? r : data[src + 2];
      const dst = dstRow + x * 3;
      out[dst] = b; // BMP stores BGR
      out[dst + 1] = g;
      out[dst + 2] = r;
    }
  }
  return out;
}
