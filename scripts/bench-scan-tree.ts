// Builds the benchmark tree for bench-scan.ts: 15,000 450×450 24-bit BMPs laid out like C-NMC 2019
// (training_data/fold_k/{all,hem}), cells drawn by the demo generator. Drawing a 450 px cell takes ~75 ms, so
// each drawn cell is written in its 8 orientations (rotations and mirror images): distinct pixels and distinct
// textures, not near-duplicates of each other, as real cells are.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { randomStainTint, renderCell } from '../src/core/demo/generate.js';
import { encodeBmp24 } from '../src/core/image/bmpEncode.js';
import { createRng } from '../src/core/random.js';
import type { RawImage } from '../src/core/types.js';

export const TREE_FILES = 15_000;
export const TREE_SIDE = 450;
const ORIENTATIONS = 8;
const FOLDS = 3;
const CLASSES = ['all', 'hem'] as const;

function markerOf(root: string): string {
  return path.join(root, '.bench-tree.json'); // hidden, so the scanner ignores it
}
const MARKER_CONTENT = JSON.stringify({ files: TREE_FILES, side: TREE_SIDE, layout: 'fold_k/{all,hem}', v: 2 });

export async function treeIsBuilt(root: string): Promise<boolean> {
  return (await readFile(markerOf(root), 'utf8').catch(() => '')) === MARKER_CONTENT;
}

/** Rotation by 90° × (k mod 4), mirrored when k ≥ 4. */
function orient(image: RawImage, k: number): RawImage {
  const n = image.width; // square
  const out = new Uint8Array(image.data.length);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      let sx = k >= 4 ? n - 1 - x : x;
      let sy = y;
      for (let r = 0; r < k % 4; r++) [sx, sy] = [sy, n - 1 - sx];
      const s = (sy * n + sx) * 3;
      const o = (y * n + x) * 3;
      out[o] = image.data[s];
      out[o + 1] = image.data[s + 1];
      out[o + 2] = image.data[s + 2];
    }
  }
  return { ...image, data: out };
}

export function treeFilePath(root: string, index: number): string {
  const fold = index % FOLDS;
  const label = CLASSES[Math.floor(index / FOLDS) % CLASSES.length];
  return path.join(
    root,
    'training_data',
    `fold_${fold}`,
    label,
    `UID_${index}_${index % 17}_${index % 5}_${label}.bmp`,
  );
}

export async function buildTree(root: string, log: (line: string) => void = console.log): Promise<void> {
  await rm(root, { recursive: true, force: true });
  for (let fold = 0; fold < FOLDS; fold++) {
    for (const label of CLASSES)
      await mkdir(path.join(root, 'training_data', `fold_${fold}`, label), { recursive: true });
  }
  const cells = TREE_FILES / ORIENTATIONS;
  for (let cell = 0; cell < cells; cell++) {
    const rng = createRng(`bench-scan/${cell}`);
    const label = CLASSES[cell % 2];
    const image = renderCell(rng, label, TREE_SIDE, randomStainTint(rng.fork('stain')));
    for (let k = 0; k < ORIENTATIONS; k++) {
      await writeFile(treeFilePath(root, cell * ORIENTATIONS + k), encodeBmp24(orient(image, k)));
    }
    if (cell % 250 === 0) log(`  drew ${cell} of ${cells} cells`);
  }
  await writeFile(markerOf(root), MARKER_CONTENT);
}

if (process.argv[1]?.endsWith('bench-scan-tree.ts')) {
  const root = process.argv[2];
  if (!root) throw new Error('usage: bench-scan-tree.ts <folder>');
  buildTree(root).catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
