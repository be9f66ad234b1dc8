/** Number formatting shared by tables, charts and captions; `null` (undefined metric) shows as a dash. */

export const DASH = '–';

export function fixed(value: number | null | undefined, digits = 3): string {
  return value === null || value === undefined || !Number.isFinite(value) ? DASH : value.toFixed(digits);
}

/** With a no-break space, so "12 %" never wraps between the number and its sign. */
export function percent(value: number | null | undefined, digits = 1): string {
  return value === null || value === undefined || !Number.isFinite(value)
    ? DASH
    : `${(value * 100).toFixed(digits)}\u00a0%`;
}

export function count(value: number | null | undefined): string {
  return value === null || value === undefined || !Number.isFinite(value) ? DASH : value.toLocaleString('en-US');
}

/** Evidence numbers: counts as counts, tiny p-values in exponent form, everything else to 4 significant digits. */
export function number(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return count(value);
  if (value !== 0 && Math.abs(value) < 1e-3) return value.toExponential(2);
  return String(Number(value.toPrecision(4)));
}

/** "1 image", "3 images". */
export function plural(n: number, word: string): string {
  return `${count(n)} ${word}${n === 1 ? '' : 's'}`;
}

export function dateTime(iso: string | undefined): string {
  if (!iso) return DASH;
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'short' });
}

export const SPLIT_NAMES: Record<string, string> = { train: 'training', val: 'validation', test: 'test' };
