/**
 * The ways a model's outputs can be read as the dataset's classes, for the editor's "map outputs" pick: each
 * one-to-one assignment with the share of images it would call right, read off the output × label
 * contingency table, best first. Pure: the quick pick and its test use the same list.
 */
import type { OutputAssociation } from '../evaluate/association.js';

export interface OutputMapping {
  /** Output name → class name, as `evaluateModel`'s class map takes it. */
  classMap: Record<string, string>;
  /** Images whose true label is the class this mapping gives their output. */
  agreement: number;
  /** "fold_0 → all, fold_1 → hem". */
  label: string;
}

/** Beyond this many outputs the K! assignments are too many to list; the CLI's --class-map takes any. */
export const MAX_LISTED_OUTPUTS = 5;

export function outputMappings(association: OutputAssociation): OutputMapping[] {
  const { outputs, classes, table, n } = association;
  if (outputs.length !== classes.length || outputs.length > MAX_LISTED_OUTPUTS || n === 0) return [];
  return permutations(classes.length)
    .map((assignment) => {
      const correct = assignment.reduce((sum, c, o) => sum + (table[o]?.[c] ?? 0), 0);
      return {
        classMap: Object.fromEntries(outputs.map((output, o) => [output, classes[assignment[o]]])),
        agreement: correct / n,
        label: outputs.map((output, o) => `${output} → ${classes[assignment[o]]}`).join(', '),
      };
    })
    .sort((a, b) => b.agreement - a.agreement);
}

function permutations(k: number): number[][] {
  if (k === 0) return [[]];
  return permutations(k - 1).flatMap((rest) =>
    Array.from({ length: k }, (_, at) => [...rest.slice(0, at), k - 1, ...rest.slice(at)]),
  );
}
