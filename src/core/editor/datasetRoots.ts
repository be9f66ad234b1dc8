/**
 * Which folders of a workspace are image datasets, from a bounded list of image files (the editor lists them
 * with its file search, so nothing here walks the disk). A dataset root is where a tree of images stops being
 * a chain of single folders and starts looking like labels, folds or splits.
 */
import * as path from 'node:path';
import { classifyName } from '../audit/names.js';
import { isInside } from '../paths.js';

export interface DatasetCandidate {
  folder: string;
  images: number;
  /** `root`: the top of a tree of images; `part`: a folder inside one that is a dataset of its own (e.g. `training_data`). */
  kind: 'root' | 'part';
}

export interface FoundDatasets {
  candidates: DatasetCandidate[];
  /** Every folder with images somewhere below it, for matching paths written in code. */
  knownFolders: string[];
}

export interface DatasetFolderOptions {
  workspaceFolders: string[];
  /** Folders whose images are not datasets: run folders (Grad-CAM PNGs), build output. */
  excludedFolders?: string[];
  maxCandidates?: number;
}

interface Node {
  direct: number;
  total: number;
  children: Set<string>;
}

export function findDatasetFolders(imageFiles: string[], options: DatasetFolderOptions): FoundDatasets {
  const roots = [...options.workspaceFolders].map((f) => path.resolve(f)).sort((a, b) => b.length - a.length);
  const excluded = (options.excludedFolders ?? []).map((f) => path.resolve(f));
  const nodes = new Map<string, Node>();
  const node = (folder: string) => {
    let n = nodes.get(folder);
    if (!n) nodes.set(folder, (n = { direct: 0, total: 0, children: new Set() }));
    return n;
  };
  for (const file of imageFiles) {
    const dir = path.dirname(path.resolve(file));
    const root = roots.find((r) => isInside(dir, r));
    if (!root || excluded.some((e) => isInside(dir, e))) continue;
    node(dir).direct++;
    for (let folder = dir; ; folder = path.dirname(folder)) {
      node(folder).total++;
      if (folder === root) break;
      node(path.dirname(folder)).children.add(folder);
    }
  }
  const candidates: DatasetCandidate[] = [];
  const visit = (folder: string) => {
    const n = nodes.get(folder)!;
    const kids = [...n.children].sort();
    if (n.direct > 0 || (kids.length > 1 && looksLikeOneDataset(kids, nodes))) {
      candidates.push({ folder, images: n.total, kind: 'root' });
      for (const part of datasetParts(folder, nodes))
        candidates.push({ folder: part, images: nodes.get(part)!.total, kind: 'part' });
      return;
    }
    for (const kid of kids) visit(kid);
  };
  for (const root of [...roots].reverse()) if (nodes.has(root)) visit(root);
  const max = options.maxCandidates ?? 30;
  return {
    candidates: candidates.slice(0, max),
    knownFolders: [...nodes.keys()].filter((f) => !roots.includes(f) || nodes.get(f)!.direct > 0).sort(),
  };
}

/**
 * Sibling folders are one dataset when they hold images themselves (class folders), when their names are
 * folds, splits or numbers, or when they repeat the same sub-folders (`fold_0/{all,hem}`, `fold_1/{all,hem}`).
 */
function looksLikeOneDataset(kids: string[], nodes: Map<string, Node>): boolean {
  if (kids.every((k) => nodes.get(k)!.direct > 0)) return true;
  const structural = kids.filter((k) => classifyName(path.basename(k)).kind !== 'class').length;
  if (structural * 2 >= kids.length) return true;
  const childNames = kids.map((k) => new Set([...nodes.get(k)!.children].map((c) => path.basename(c))));
  const shared = [...childNames[0]].filter((name) => childNames.every((names) => names.has(name)));
  return shared.length > 0;
}

/**
 * Folders one or two levels into a dataset that are nested datasets themselves: `training_data` with its folds.
 * A single fold of class folders is not offered: training on it alone is rarely what anyone wants.
 */
function datasetParts(root: string, nodes: Map<string, Node>): string[] {
  const parts: string[] = [];
  const walk = (folder: string, depth: number) => {
    for (const kid of [...nodes.get(folder)!.children].sort()) {
      const kids = [...nodes.get(kid)!.children].sort();
      const nested = kids.some((k) => nodes.get(k)!.direct === 0);
      if (kids.length > 1 && nested && looksLikeOneDataset(kids, nodes)) parts.push(kid);
      if (depth < 2) walk(kid, depth + 1);
    }
  };
  walk(root, 1);
  return parts;
}
