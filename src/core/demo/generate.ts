/**
 * Writes a small synthetic dataset that mirrors the folder layout and file naming of Kaggle's
 * "leukemia-classification" (C-NMC 2019), so the audit, the trainer and the extension can be tried and
 * tested without the 10 GB download. Everything is derived from one seed; known defects can be planted
 * so tests can check that the audit finds exactly them.
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createRng, type Rng } from '../random.js';
import { forEachBounded } from '../concurrency.js';
import { encodeBmp24 } from '../image/bmpEncode.js';
import type { RawImage } from '../types.js';

export type DemoLabel = 'all' | 'hem';
export type DemoFold = number | 'validation';

export interface DemoOptions {
  /** Whole number ≥ 0; all options are whole numbers ≥ 0. */
  seed?: number;
  /** Side of the square images in pixels, 16–450 (the original is 450). */
  imageSize?: number;
  imagesPerFold?: number;
  folds?: number;
  allSubjectsPerFold?: number;
  hemSubjectsPerFold?: number;
  /** Images in the numbered preliminary test set, taken from subjects that are in no training fold. */
  validationImages?: number;
  /** Subjects whose images are split over two folds (subject leakage). */
  leakSubjects?: number;
  /** Training images copied, exactly or with one pixel changed, into another fold and/or class. */
  duplicates?: number;
  /** Unusable files with a valid-looking name: zero bytes, a truncated BMP, text saved as .bmp. */
  corruptFiles?: number;
  /** Replace an existing `C-NMC_Leukemia` folder instead of refusing to write into it. */
  overwrite?: boolean;
}

export type ResolvedDemoOptions = Required<Omit<DemoOptions, 'overwrite'>>;

export interface DemoImage {
  /** Relative to the `C-NMC_Leukemia` folder, `/` separators. */
  path: string;
  subject: string;
  /** The class the file is filed under (for validation: the CSV label). */
  label: DemoLabel;
  fold: DemoFold;
  /** Validation only: the UID name the CSV's Patient_ID column gives for this numbered file. */
  originalName?: string;
}

export interface LeakedSubject {
  subject: string;
  label: DemoLabel;
  homeFold: number;
  leakedToFold: number;
  movedPaths: string[];
}

export interface PlantedDuplicate {
  /** `exact`: byte-identical copy; `near`: re-encoded with one pixel changed. */
  kind: 'exact' | 'near';
  originalPath: string;
  copyPath: string;
  crossFold: boolean;
  crossClass: boolean;
}

export type CorruptKind = 'empty' | 'truncated' | 'text';

export interface PlantedCorruptFile {
  path: string;
  kind: CorruptKind;
}

export interface DemoManifest {
  /** Absolute path of the written `C-NMC_Leukemia` folder. */
  root: string;
  options: ResolvedDemoOptions;
  /** Every decodable image written, planted duplicates included; corrupt files are listed only in `defects`. */
  images: DemoImage[];
  /** Relative path of the preliminary test set's label CSV. */
  labelsCsv: string;
  defects: {
    leakedSubjects: LeakedSubject[];
    duplicates: PlantedDuplicate[];
    corruptFiles: PlantedCorruptFile[];
  };
}

/** Multipliers on red, green and blue: each subject's slides were stained in a slightly different batch. */
export interface StainTint {
  red: number;
  green: number;
  blue: number;
}

export const DEMO_DATASET_FOLDER = 'C-NMC_Leukemia';
const VALIDATION_IMAGE_FOLDER = 'validation_data/C-NMC_test_prelim_phase_data';
const VALIDATION_LABELS_CSV = 'validation_data/C-NMC_test_prelim_phase_data_labels.csv';
/** Image ratio of the real training folds (7,272 ALL to 3,389 HEM cells). */
const ALL_PER_HEM = 2.1;
const WRITE_CONCURRENCY = 8;
const MIN_IMAGE_SIZE = 16;
const MAX_IMAGE_SIZE = 450;

const DEFAULTS: ResolvedDemoOptions = {
  seed: 1,
  imageSize: 64,
  imagesPerFold: 200,
  folds: 3,
  allSubjectsPerFold: 5,
  hemSubjectsPerFold: 5,
  validationImages: 60,
  leakSubjects: 0,
  duplicates: 0,
  corruptFiles: 0,
};

export async function generateDemoDataset(outDir: string, options: DemoOptions = {}): Promise<DemoManifest> {
  const resolved = resolveOptions(options);
  const root = path.resolve(outDir, DEMO_DATASET_FOLDER);
  await prepareEmptyRoot(root, options.overwrite ?? false);

  const plan = planDataset(resolved);
  const directories = new Set(plan.files.map((file) => path.posix.dirname(file.path)));
  directories.add(path.posix.dirname(VALIDATION_LABELS_CSV));
  directories.add(VALIDATION_IMAGE_FOLDER);
  for (const directory of [...directories].sort()) {
    await mkdir(path.join(root, ...directory.split('/')), { recursive: true });
  }

  // Pixels are rendered inside the workers, not up front: at 450 px a default dataset would hold ~400 MB.
  await forEachBounded(plan.files, WRITE_CONCURRENCY, async (file) => {
    await writeFile(path.join(root, ...file.path.split('/')), materialise(file.content, resolved));
  });
  await writeFile(path.join(root, ...VALIDATION_LABELS_CSV.split('/')), plan.labelsCsvText);

  return {
    root,
    options: resolved,
    images: plan.images,
    labelsCsv: VALIDATION_LABELS_CSV,
    defects: plan.defects,
  };
}

function resolveOptions(options: DemoOptions): ResolvedDemoOptions {
  const resolved: ResolvedDemoOptions = { ...DEFAULTS };
  for (const key of Object.keys(DEFAULTS) as (keyof ResolvedDemoOptions)[]) {
    const value = options[key];
    if (value === undefined) continue;
    if (!Number.isInteger(value) || value < 0) {
      throw new RangeError(`Demo option ${key} must be a whole number ≥ 0, got ${value}`);
    }
    resolved[key] = value;
  }
  const { imageSize, folds, allSubjectsPerFold, hemSubjectsPerFold, imagesPerFold, leakSubjects } = resolved;
  if (imageSize < MIN_IMAGE_SIZE || imageSize > MAX_IMAGE_SIZE) {
    throw new RangeError(`imageSize must be ${MIN_IMAGE_SIZE}–${MAX_IMAGE_SIZE} px, got ${imageSize}`);
  }
  if (folds < 1 || allSubjectsPerFold < 1 || hemSubjectsPerFold < 1) {
    throw new RangeError('A demo needs at least one fold and one ALL and one HEM subject per fold');
  }
  const [allImages, hemImages] = splitByClassRatio(imagesPerFold);
  if (allImages < allSubjectsPerFold || hemImages < hemSubjectsPerFold) {
    throw new RangeError(
      `imagesPerFold=${imagesPerFold} gives ${allImages} ALL and ${hemImages} HEM images per fold, ` +
        `too few for ${allSubjectsPerFold} ALL and ${hemSubjectsPerFold} HEM subjects with one image each`,
    );
  }
  if (leakSubjects > 0 && folds < 2) {
    throw new RangeError('Subject leakage needs at least two folds');
  }
  return resolved;
}

async function prepareEmptyRoot(root: string, overwrite: boolean): Promise<void> {
  let existing: string[];
  try {
    existing = await readdir(root);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (existing.length === 0) return;
  if (!overwrite) {
    throw new Error(
      `${root} already exists and is not empty; choose another folder or allow replacing it (the overwrite option, --overwrite on the command line)`,
    );
  }
  await rm(root, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------------
// Planning: decides every file's name and content recipe before anything is written.

interface Subject {
  id: string;
  label: DemoLabel;
  /** Where the subject's images live before any leakage is planted. */
  fold: DemoFold;
  tint: StainTint;
  nextImageNumber: number;
}

/** Enough to re-render a cell bit-for-bit: copies and truncations reuse the original's recipe. */
interface CellRecipe {
  /** Forks the pixel stream; the original UID name, which survives moves and renumbering. */
  pixelsKey: string;
  label: DemoLabel;
  tint: StainTint;
}

type FileContent =
  | { kind: 'cell'; recipe: CellRecipe; nudgeOnePixel: boolean }
  | { kind: 'truncated-cell'; recipe: CellRecipe }
  | { kind: 'bytes'; bytes: Uint8Array };

interface PlannedFile {
  path: string;
  content: FileContent;
}

interface TrainingImage {
  image: DemoImage;
  recipe: CellRecipe;
  owner: Subject;
}

interface DatasetPlan {
  files: PlannedFile[];
  images: DemoImage[];
  labelsCsvText: string;
  defects: DemoManifest['defects'];
}

function planDataset(options: ResolvedDemoOptions): DatasetPlan {
  const rng = createRng(options.seed);
  const [validationAll, validationHem] = splitByClassRatio(options.validationImages);
  const validationSubjectCounts = {
    all: Math.min(options.allSubjectsPerFold, validationAll),
    hem: Math.min(options.hemSubjectsPerFold, validationHem),
  };
  const subjects = createSubjects(rng.fork('subjects'), options, validationSubjectCounts);

  const training: TrainingImage[] = [];
  const [allPerFold, hemPerFold] = splitByClassRatio(options.imagesPerFold);
  for (let fold = 0; fold < options.folds; fold++) {
    for (const [label, count] of [
      ['all', allPerFold],
      ['hem', hemPerFold],
    ] as const) {
      const owners = subjects.filter((subject) => subject.fold === fold && subject.label === label);
      for (const [owner, name] of nameCellsOfSubjects(rng.fork(`cells/${fold}/${label}`), owners, count)) {
        training.push({
          image: { path: trainingPath(fold, label, name), subject: owner.id, label, fold },
          recipe: { pixelsKey: name, label, tint: owner.tint },
          owner,
        });
      }
    }
  }

  const validation: { name: string; owner: Subject }[] = [];
  for (const [label, count] of [
    ['all', validationAll],
    ['hem', validationHem],
  ] as const) {
    const owners = subjects.filter((subject) => subject.fold === 'validation' && subject.label === label);
    for (const [owner, name] of nameCellsOfSubjects(rng.fork(`cells/validation/${label}`), owners, count)) {
      validation.push({ name, owner });
    }
  }
  // The prelim set hides each cell's class behind its number, so the numbering must not follow class.
  rng.fork('validation-order').shuffle(validation);

  const files: PlannedFile[] = [];
  const images: DemoImage[] = [];
  const csvLines = ['Patient_ID,new_names,labels'];
  const leakedSubjects = plantLeakage(rng.fork('leakage'), training, options);
  for (const { image, recipe } of training) {
    files.push({ path: image.path, content: { kind: 'cell', recipe, nudgeOnePixel: false } });
    images.push(image);
  }
  validation.forEach(({ name, owner }, index) => {
    const numberedName = `${index + 1}.bmp`;
    const image: DemoImage = {
      path: `${VALIDATION_IMAGE_FOLDER}/${numberedName}`,
      subject: owner.id,
      label: owner.label,
      fold: 'validation',
      originalName: name,
    };
    files.push({ path: image.path, content: { kind: 'cell', recipe: recipeFor(owner, name), nudgeOnePixel: false } });
    images.push(image);
    csvLines.push(`${name},${numberedName},${owner.label === 'all' ? 1 : 0}`);
  });

  const leakedPaths = new Set(leakedSubjects.flatMap((leak) => leak.movedPaths));
  const duplicateSources = training.filter(({ image }) => !leakedPaths.has(image.path));
  const duplicates = plantDuplicates(rng.fork('duplicates'), duplicateSources, subjects, options, files, images);
  const corruptFiles = plantCorruptFiles(rng.fork('corrupt'), training, subjects, options, files);

  return {
    files,
    images,
    labelsCsvText: `${csvLines.join('\n')}\n`,
    defects: { leakedSubjects, duplicates, corruptFiles },
  };
}

function recipeFor(owner: Subject, name: string): CellRecipe {
  return { pixelsKey: name, label: owner.label, tint: owner.tint };
}

function trainingPath(fold: number, label: DemoLabel, name: string): string {
  return `training_data/fold_${fold}/${label}/${name}`;
}

function createSubjects(
  rng: Rng,
  options: ResolvedDemoOptions,
  validationCounts: Record<DemoLabel, number>,
): Subject[] {
  const folds: DemoFold[] = Array.from({ length: options.folds }, (_, fold) => fold);
  const homes = (label: DemoLabel, perFold: number): DemoFold[] => [
    ...folds.flatMap((fold) => Array<DemoFold>(perFold).fill(fold)),
    ...Array<DemoFold>(validationCounts[label]).fill('validation'),
  ];
  const allHomes = homes('all', options.allSubjectsPerFold);
  const hemHomes = homes('hem', options.hemSubjectsPerFold);

  // Real ids are sparse (e.g. ALL 1–~90, HEM H1–~50), so draw them from a wider range than needed.
  const allNumbers = rng.fork('all-ids').shuffle(rangeFrom1(Math.ceil(allHomes.length * 1.5)));
  const hemNumbers = rng.fork('hem-ids').shuffle(rangeFrom1(Math.ceil(hemHomes.length * 1.5)));
  // C-NMC spells a few healthy subjects with a lower-case h (UID_h3_…); about one in six, at least one.
  const lowerCaseCount = Math.max(1, Math.round(hemHomes.length / 6));
  const lowerCaseSlots = new Set(rng.fork('lower-case').shuffle(rangeFrom1(hemHomes.length)).slice(0, lowerCaseCount));

  const tintRng = rng.fork('tints');
  const subject = (id: string, label: DemoLabel, fold: DemoFold): Subject => ({
    id,
    label,
    fold,
    tint: randomStainTint(tintRng.fork(id)),
    nextImageNumber: 1,
  });
  return [
    ...allHomes.map((fold, index) => subject(String(allNumbers[index]), 'all', fold)),
    ...hemHomes.map((fold, index) =>
      subject(`${lowerCaseSlots.has(index + 1) ? 'h' : 'H'}${hemNumbers[index]}`, 'hem', fold),
    ),
  ];
}

function rangeFrom1(count: number): number[] {
  return Array.from({ length: count }, (_, index) => index + 1);
}

export function randomStainTint(rng: Rng): StainTint {
  const channel = () => Math.min(1.2, Math.max(0.8, rng.normal(1, 0.06)));
  return { red: channel(), green: channel(), blue: channel() };
}

/** [ALL, HEM] image counts for `total` images at the real dataset's class ratio. */
function splitByClassRatio(total: number): [number, number] {
  const all = Math.round((total * ALL_PER_HEM) / (ALL_PER_HEM + 1));
  return [all, total - all];
}

/**
 * Shares `count` cells among `owners` unevenly (real subjects contribute very different numbers of
 * cells), each at least one, and names them as C-NMC does: UID_<subject>_<image>_<cell>_<class>.bmp,
 * where one microscope image yields one to a few cells.
 */
function nameCellsOfSubjects(rng: Rng, owners: Subject[], count: number): [Subject, string][] {
  if (owners.length === 0) return [];
  const weights = owners.map(() => rng.uniform(0.5, 1.5));
  const shares = shareProportionally(count - owners.length, weights).map((share) => share + 1);
  const named: [Subject, string][] = [];
  owners.forEach((owner, index) => {
    let remaining = shares[index];
    owner.nextImageNumber += rng.int(4);
    while (remaining > 0) {
      const cellsInImage = Math.min(remaining, 1 + rng.int(3));
      for (let cell = 1; cell <= cellsInImage; cell++) {
        named.push([owner, cellFileName(owner, owner.nextImageNumber, cell)]);
      }
      remaining -= cellsInImage;
      owner.nextImageNumber += 1 + rng.int(3);
    }
  });
  return named;
}

function cellFileName(owner: Subject, imageNumber: number, cell: number): string {
  return `UID_${owner.id}_${imageNumber}_${cell}_${owner.label}.bmp`;
}

/** Largest-remainder apportionment, so shares sum to exactly `total`. */
function shareProportionally(total: number, weights: number[]): number[] {
  const weightSum = weights.reduce((sum, weight) => sum + weight, 0);
  const exact = weights.map((weight) => (total * weight) / weightSum);
  const shares = exact.map(Math.floor);
  const byRemainder = exact.map((value, index) => ({ index, remainder: value - shares[index] }));
  byRemainder.sort((a, b) => b.remainder - a.remainder || a.index - b.index);
  let leftover = total - shares.reduce((sum, share) => sum + share, 0);
  for (const { index } of byRemainder) {
    if (leftover-- <= 0) break;
    shares[index] += 1;
  }
  return shares;
}

/** Moves about half of each chosen subject's images into another fold's folder of the same class. */
function plantLeakage(rng: Rng, training: TrainingImage[], options: ResolvedDemoOptions): LeakedSubject[] {
  if (options.leakSubjects === 0) return [];
  const imagesBySubject = new Map<Subject, TrainingImage[]>();
  for (const item of training) {
    imagesBySubject.set(item.owner, [...(imagesBySubject.get(item.owner) ?? []), item]);
  }
  const eligible = [...imagesBySubject.keys()].filter((owner) => imagesBySubject.get(owner)!.length >= 2);
  if (options.leakSubjects > eligible.length) {
    throw new RangeError(
      `leakSubjects=${options.leakSubjects} but only ${eligible.length} subjects have two or more images to split`,
    );
  }
  return rng
    .shuffle(eligible)
    .slice(0, options.leakSubjects)
    .map((owner) => {
      const homeFold = owner.fold as number;
      const leakedToFold = (homeFold + 1 + rng.int(options.folds - 1)) % options.folds;
      const items = rng.shuffle([...imagesBySubject.get(owner)!]);
      const moved = items.slice(0, Math.floor(items.length / 2));
      for (const item of moved) {
        const name = path.posix.basename(item.image.path);
        item.image.path = trainingPath(leakedToFold, owner.label, name);
        item.image.fold = leakedToFold;
      }
      return {
        subject: owner.id,
        label: owner.label,
        homeFold,
        leakedToFold,
        movedPaths: moved.map((item) => item.image.path),
      };
    });
}

const DUPLICATE_PLACEMENTS = [
  { crossFold: true, crossClass: false },
  { crossFold: false, crossClass: true },
  { crossFold: true, crossClass: true },
] as const;

/**
 * Cycles through placements and exact/near copies so even two or three planted duplicates cover the
 * cases an audit must tell apart. Each copy is named as a new cell of a subject that really lives in the
 * target folder, so only the content — not the name — gives it away.
 */
function plantDuplicates(
  rng: Rng,
  sources: TrainingImage[],
  subjects: Subject[],
  options: ResolvedDemoOptions,
  files: PlannedFile[],
  images: DemoImage[],
): PlantedDuplicate[] {
  if (options.duplicates > sources.length) {
    throw new RangeError(`duplicates=${options.duplicates} but only ${sources.length} training images can be copied`);
  }
  const originals = rng.shuffle([...sources]).slice(0, options.duplicates);
  return originals.map((original, index) => {
    const kind = index % 2 === 0 ? 'exact' : 'near';
    const wanted = DUPLICATE_PLACEMENTS[index % DUPLICATE_PLACEMENTS.length];
    // With a single fold every copy has to cross class instead.
    const placement = options.folds > 1 ? wanted : { crossFold: false, crossClass: true };
    const sourceFold = original.image.fold as number;
    const fold = placement.crossFold ? (sourceFold + 1 + rng.int(options.folds - 1)) % options.folds : sourceFold;
    const label = placement.crossClass ? otherLabel(original.image.label) : original.image.label;
    const owner = rng.pick(subjects.filter((subject) => subject.fold === fold && subject.label === label));
    const copyPath = trainingPath(fold, label, takeNextCellName(owner));
    files.push({ path: copyPath, content: { kind: 'cell', recipe: original.recipe, nudgeOnePixel: kind === 'near' } });
    images.push({ path: copyPath, subject: owner.id, label, fold });
    return { kind, originalPath: original.image.path, copyPath, ...placement };
  });
}

const CORRUPT_KINDS: readonly CorruptKind[] = ['empty', 'truncated', 'text'];

function plantCorruptFiles(
  rng: Rng,
  training: TrainingImage[],
  subjects: Subject[],
  options: ResolvedDemoOptions,
  files: PlannedFile[],
): PlantedCorruptFile[] {
  const trainingSubjects = subjects.filter((subject) => subject.fold !== 'validation');
  return Array.from({ length: options.corruptFiles }, (_, index) => {
    const kind = CORRUPT_KINDS[index % CORRUPT_KINDS.length];
    const owner = rng.pick(trainingSubjects);
    const filePath = trainingPath(owner.fold as number, owner.label, takeNextCellName(owner));
    const content: FileContent =
      kind === 'empty'
        ? { kind: 'bytes', bytes: new Uint8Array(0) }
        : kind === 'truncated'
          ? { kind: 'truncated-cell', recipe: rng.pick(training).recipe }
          : { kind: 'bytes', bytes: gitLfsPointer(rng) };
    files.push({ path: filePath, content });
    return { path: filePath, kind };
  });
}

function takeNextCellName(owner: Subject): string {
  const name = cellFileName(owner, owner.nextImageNumber, 1);
  owner.nextImageNumber += 1;
  return name;
}

function otherLabel(label: DemoLabel): DemoLabel {
  return label === 'all' ? 'hem' : 'all';
}

/** The text file most often found under an image's name: a Git LFS pointer from a clone without LFS. */
function gitLfsPointer(rng: Rng): Uint8Array {
  const oid = Array.from({ length: 64 }, () => rng.int(16).toString(16)).join('');
  const text = `version https://git-lfs.github.com/spec/v1\noid sha256:${oid}\nsize ${600_000 + rng.int(10_000)}\n`;
  return new TextEncoder().encode(text);
}

function materialise(content: FileContent, options: ResolvedDemoOptions): Uint8Array {
  if (content.kind === 'bytes') return content.bytes;
  const image = renderFromRecipe(content.recipe, options);
  if (content.kind === 'truncated-cell') {
    const bmp = encodeBmp24(image);
    const headerBytes = 54;
    return bmp.subarray(0, headerBytes + Math.floor((bmp.length - headerBytes) / 3));
  }
  if (content.nudgeOnePixel) {
    // The centre always lies inside the cell (jitter < smallest radius), so the change is on foreground.
    const centre = (Math.floor(image.height / 2) * image.width + Math.floor(image.width / 2)) * image.channels;
    image.data[centre] ^= 0x20;
  }
  return encodeBmp24(image);
}

function renderFromRecipe(recipe: CellRecipe, options: ResolvedDemoOptions): RawImage {
  const rng = createRng(options.seed).fork(`pixels/${recipe.pixelsKey}`);
  return renderCell(rng, recipe.label, options.imageSize, recipe.tint);
}

// ---------------------------------------------------------------------------------------------------
// Rendering one segmented cell.

interface CellLook {
  /** Nucleus radius as a fraction of the image side. */
  radius: [number, number];
  /** Largest relative amplitude of the outline's harmonics k = 2, 3, …: many large ones make lobes. */
  outlineHarmonics: number[];
  brightness: [number, number];
  /** Size of chromatin grains as a fraction of the radius. */
  grainSize: number;
  grainContrast: [number, number];
  /** Pixel-level noise: fine chromatin that only blasts show clearly. */
  speckleContrast: [number, number];
}

/**
 * ALL blasts are larger, with fine, irregular chromatin and lobed outlines; normal (HEM) lymphocytes
 * are smaller, rounder, smoother and denser. Every range overlaps the other class's, so no single
 * feature separates them but size, outline and texture together do.
 */
const CELL_LOOKS: Record<DemoLabel, CellLook> = {
  all: {
    radius: [0.28, 0.4],
    outlineHarmonics: [0.05, 0.045, 0.04, 0.03, 0.025],
    brightness: [0.88, 1.05],
    grainSize: 0.18,
    grainContrast: [0.06, 0.22],
    speckleContrast: [0.04, 0.13],
  },
  hem: {
    radius: [0.22, 0.33],
    outlineHarmonics: [0.045, 0.012],
    brightness: [0.8, 0.97],
    grainSize: 0.6,
    grainContrast: [0.02, 0.1],
    speckleContrast: [0.01, 0.06],
  },
};

/** May-Grünwald-Giemsa-like purple of a stained nucleus, and the paler rim of cytoplasm. */
const NUCLEUS_RGB = [132, 72, 168] as const;
const CYTOPLASM_RGB = [150, 128, 182] as const;
const CYTOPLASM_CHANCE = 0.5;

/**
 * Renders one segmented cell on black, as C-NMC ships them. `rng` decides everything about this cell;
 * `tint` is the subject's stain batch, shared by all its cells.
 */
export function renderCell(rng: Rng, label: DemoLabel, size: number, tint: StainTint): RawImage {
  const look = CELL_LOOKS[label];
  const radius = size * rng.uniform(...look.radius);
  const harmonics = look.outlineHarmonics.map((maxAmplitude, index) => ({
    order: index + 2,
    amplitude: rng.uniform(0, maxAmplitude),
    phase: rng.uniform(0, 2 * Math.PI),
  }));
  const cytoplasmWidth = rng.chance(CYTOPLASM_CHANCE) ? radius * rng.uniform(0.05, 0.12) : 0;
  const outlineBulge = harmonics.reduce((sum, harmonic) => sum + harmonic.amplitude, 0);
  const extent = radius * (1 + outlineBulge) + cytoplasmWidth;
  const maxShift = Math.max(0, Math.min(0.06 * size, size / 2 - extent - 1));
  const centreX = size / 2 + rng.uniform(-maxShift, maxShift);
  const centreY = size / 2 + rng.uniform(-maxShift, maxShift);
  const brightness = rng.uniform(...look.brightness);
  const grainContrast = rng.uniform(...look.grainContrast);
  const speckleContrast = rng.uniform(...look.speckleContrast);
  const grain = valueNoise(rng.fork('grain'), size, Math.max(1, look.grainSize * radius));
  const speckleRng = rng.fork('speckle');
  const tintRgb = [tint.red, tint.green, tint.blue];

  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const dx = x + 0.5 - centreX;
      const dy = y + 0.5 - centreY;
      const distance = Math.hypot(dx, dy);
      if (distance > extent + 1) continue;
      const angle = Math.atan2(dy, dx);
      let edge = radius;
      for (const { order, amplitude, phase } of harmonics) edge += radius * amplitude * Math.cos(order * angle + phase);
      // Coverage of a one-pixel-wide soft edge, so outlines are anti-aliased rather than stair-stepped.
      const nucleusCover = clamp01(edge - distance + 0.5);
      const cellCover = clamp01(edge + cytoplasmWidth - distance + 0.5);
      if (cellCover === 0) continue;
      // Chromatin condenses along the nuclear envelope, so stained nuclei look darker towards their rim.
      const shading = 1 - 0.15 * Math.min(1, (distance / edge) ** 2);
      const texture = 1 + grainContrast * grain(x, y) + speckleContrast * speckleRng.normal();
      const nucleusGain = brightness * shading * texture;
      const offset = (y * size + x) * 3;
      for (let channel = 0; channel < 3; channel++) {
        const nucleus = NUCLEUS_RGB[channel] * nucleusGain;
        const cytoplasm = CYTOPLASM_RGB[channel] * brightness;
        const value = (nucleus * nucleusCover + cytoplasm * (cellCover - nucleusCover)) * tintRgb[channel];
        data[offset + channel] = Math.max(0, Math.min(255, Math.round(value)));
      }
    }
  }
  return { width: size, height: size, channels: 3, data };
}

function clamp01(value: number): number {
  return value < 0 ? 0 : value > 1 ? 1 : value;
}

/** Smooth random field (bilinear value noise) with features about `step` pixels across, roughly in [-2, 2]. */
function valueNoise(rng: Rng, size: number, step: number): (x: number, y: number) => number {
  const cells = Math.ceil(size / step) + 2;
  const lattice = Float64Array.from({ length: cells * cells }, () => rng.normal());
  return (x, y) => {
    const gx = x / step;
    const gy = y / step;
    const x0 = Math.floor(gx);
    const y0 = Math.floor(gy);
    const fx = gx - x0;
    const fy = gy - y0;
    const at = (ix: number, iy: number) => lattice[iy * cells + ix];
    const top = at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx;
    const bottom = at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx;
    return top * (1 - fy) + bottom * fy;
  };
}
