/**
 * What a folder (or would-be class) name says about itself. The fold-label mistake happens because
 * `ImageFolder` takes whatever folders it finds as classes; names like `fold_0`, `train`, `batch_3` or
 * `2019-04-01` describe how the data was organised, not what the cell is.
 */

export type SplitRole = 'train' | 'val' | 'test';

export type NameKind =
  /** Cross-validation folds and other numbered partitions: fold_0, cv4, split2, part-1, shard00, batch_3. */
  | 'partition'
  /** A named split: train, val, validation_data, testing_data, C-NMC_test_prelim_phase_data. */
  | 'split'
  /** Acquisition site, scanner, centre. */
  | 'site'
  | 'date'
  /** A patient/subject folder: a grouping, never a diagnosis. */
  | 'subject'
  /** One of a few numbered acquisitions of a kind not known to be folds (`smear_1`, `smear_2`, `acq2`). */
  | 'series'
  /** A kind of file, not of cell: `images` beside `masks`, `annotations`, `overlays`, `thumbnails`. */
  | 'artifact'
  /** A plain number: a common, legitimate class encoding (0 = HEM, 1 = ALL), but also a plain index. */
  | 'numeric'
  /** Anything else: a candidate diagnosis. */
  | 'class';

export interface NameClassification {
  kind: NameKind;
  role?: SplitRole;
}

const SPLIT_WORDS: Record<string, SplitRole> = {
  train: 'train',
  training: 'train',
  trn: 'train',
  trainval: 'train',
  val: 'val',
  valid: 'val',
  validation: 'val',
  validate: 'val',
  dev: 'val',
  tune: 'val',
  test: 'test',
  testing: 'test',
  tst: 'test',
  holdout: 'test',
  eval: 'test',
  evaluation: 'test',
  prelim: 'test',
};
const PARTITION =
  /^(?:fold|folds|kfold|k|cv|split|part|partition|shard|chunk|batch|subset|set|group|grp|run|round|rep|replicate|repeat|seed|bag|piece|block|slice|bucket|iter|iteration|trial)[\s_\-.]?\d+$/i;
const SITE =
  /^(?:site|center|centre|hospital|clinic|scanner|lab|institution|institute|source|domain|cohort|device|machine|microscope|camera|operator)[\s_\-.]?[a-z0-9]+$/i;
const DATE = /^(?:19|20)\d{2}(?:[-_.]?(?:0[1-9]|1[0-2]))(?:[-_.]?(?:0[1-9]|[12]\d|3[01]))?$/;
const SUBJECT =
  /^(?:(?:patient|subject|case|uid|pt|pat|p|donor|sample|slide|person|individual|id)[\s_\-.]?[a-z]?\d+[a-z0-9]*|(?:patient|subject|donor|case|individual|person)[\s_\-.]?[a-z0-9]+)$/i;
const NUMBER = /^\d+$/;
const ARTIFACT =
  /^(?:images?|imgs?|pictures?|photos?|masks?|segmentations?|segmented|seg|overlays?|annotations?|labels?|gt|ground[\s_-]?truth|thumbnails?|thumbs|previews?|crops?|patches|tiles|raw|originals?|data|dataset)$/i;

export function classifyName(name: string): NameClassification {
  const trimmed = name.trim();
  if (NUMBER.test(trimmed)) return { kind: 'numeric' };
  if (PARTITION.test(trimmed)) return { kind: 'partition' };
  if (DATE.test(trimmed)) return { kind: 'date' };
  if (SITE.test(trimmed)) return { kind: 'site' };
  if (SUBJECT.test(trimmed)) return { kind: 'subject' };
  if (ARTIFACT.test(trimmed)) return { kind: 'artifact' };
  const role = splitRoleOf(trimmed);
  if (role) return { kind: 'split', role };
  return { kind: 'class' };
}

/** A name is a split when one of its words is a split word: `testing_data`, `C-NMC_test_prelim_phase_data`. */
function splitRoleOf(name: string): SplitRole | undefined {
  const words = name
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
  for (const word of words) {
    const role = SPLIT_WORDS[word];
    if (role) return role;
  }
  return undefined;
}

/** Kinds that describe how data was organised rather than what it shows. */
export function isStructuralKind(kind: NameKind): boolean {
  return kind !== 'class' && kind !== 'numeric';
}

/** A name with its digit runs replaced: `P07` and `P12` share the pattern `p#`, `fold_0` is `fold_#`. */
export function numberPattern(name: string): string {
  return name.trim().toLowerCase().replace(/\d+/g, '#');
}

/** More names than this that differ only by their number are an id series, never classes. */
const ID_SERIES_MIN_NAMES = 9;
const PURE_NUMBER_SERIES_MIN_NAMES = 12;
/** Words that number classes (`grade_2`, `type1`, `class_0`); one letter too (FAB `L1`–`L3`, `M0`–`M7`). */
const CLASS_SERIES_WORD = /^(?:[a-z]|class|label|type|subtype|grade|stage|category|cat|level|risk|score|cls)$/;

/**
 * What a level of names that differ only by their number is. Many of them (`P01 … P30`, `slide-007 …`,
 * `001 … 040`), or zero-padded ones, are an id series: patients, slides, images — groupings ('subject').
 * A few named by a word that does not number classes (`smear_1`, `smear_2`; `acq2`) are partitions of the
 * data ('series'). Otherwise undefined: `L1/L2/L3` and `grade_1/grade_2` stay candidate classes.
 */
export function numberedSeriesKind(names: string[]): 'subject' | 'series' | undefined {
  const patterns = new Set(names.map(numberPattern));
  if (patterns.size !== 1 || names.length < 2) return undefined;
  const [pattern] = patterns;
  if (!pattern.includes('#')) return undefined;
  const zeroPadded = names.some((n) => /(^|\D)0\d/.test(n));
  if (pattern === '#') return names.length >= PURE_NUMBER_SERIES_MIN_NAMES ? 'subject' : undefined;
  if (names.length >= ID_SERIES_MIN_NAMES || (zeroPadded && names.length >= 3)) return 'subject';
  const word = /^[a-z]+/.exec(pattern)?.[0];
  return word && !CLASS_SERIES_WORD.test(word) ? 'series' : undefined;
}
