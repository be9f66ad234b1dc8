/**
 * Which model output is which dataset class. A model trained on the same classes names them (run.json,
 * our safetensors metadata, a checkpoint's `class_to_idx`): those names are matched case-insensitively.
 * Otherwise the user says it (`--class-map 0=all,1=hem`). A model whose outputs are something else (folds)
 * stays unmapped: it is judged by association (association.ts), not accuracy.
 */

/** Dataset class index for each output index. */
export type OutputMapping = number[];

export class ClassMapError extends Error {}

/** `out=class,out=class`: output names (or indices) to class names. */
export function parseClassMap(text: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const pair of text
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)) {
    const [output, className, ...rest] = pair.split('=').map((part) => part.trim());
    if (!output || !className || rest.length > 0)
      throw new ClassMapError(`--class-map takes out=class pairs separated by commas, got "${pair}"`);
    if (map.has(output)) throw new ClassMapError(`--class-map names output "${output}" twice`);
    map.set(output, className);
  }
  if (map.size === 0) throw new ClassMapError('--class-map is empty');
  return map;
}

/**
 * The output → class mapping, from an explicit map or else by name. Undefined when the outputs are not the
 * dataset's classes. An explicit map must cover every output and every class once (a permutation), so the
 * model can be rewritten with its outputs in class order.
 */
export function mapOutputs(
  outputs: readonly string[],
  classes: readonly string[],
  explicit?: ReadonlyMap<string, string>,
): { mapping: OutputMapping; by: 'names' | 'class-map' } | undefined {
  if (explicit) {
    const mapping = outputs.map((output, index) => {
      const target = explicit.get(output) ?? explicit.get(String(index));
      if (target === undefined)
        throw new ClassMapError(`--class-map does not say which class output "${output}" (index ${index}) is`);
      const c = classIndex(target, classes);
      if (c < 0)
        throw new ClassMapError(
          `--class-map maps "${output}" to "${target}", which is not one of ${classes.join(', ')}`,
        );
      return c;
    });
    const unknown = [...explicit.keys()].filter((key) => !outputs.includes(key) && !(Number(key) in outputs));
    if (unknown.length > 0)
      throw new ClassMapError(
        `--class-map names ${unknown.join(', ')}, which the model does not output (${outputs.join(', ')})`,
      );
    checkPermutation(mapping, outputs, classes);
    return { mapping, by: 'class-map' };
  }
  if (outputs.length !== classes.length) return undefined;
  const mapping = outputs.map((output) => classIndex(output, classes));
  if (mapping.some((c) => c < 0) || new Set(mapping).size !== mapping.length) return undefined;
  return { mapping, by: 'names' };
}

function classIndex(name: string, classes: readonly string[]): number {
  const exact = classes.indexOf(name);
  return exact >= 0 ? exact : classes.findIndex((c) => c.toLowerCase() === name.toLowerCase());
}

function checkPermutation(mapping: OutputMapping, outputs: readonly string[], classes: readonly string[]): void {
  const missing = classes.filter((_, c) => !mapping.includes(c));
  if (outputs.length !== classes.length || missing.length > 0 || new Set(mapping).size !== mapping.length) {
    throw new ClassMapError(
      `--class-map must give each of the model's ${outputs.length} outputs a different class of ${classes.join(', ')}` +
        (missing.length > 0 ? ` (no output is ${missing.join(', ')})` : ''),
    );
  }
}
