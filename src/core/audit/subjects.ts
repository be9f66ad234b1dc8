/**
 * Subject leakage: the same patient in two folds or splits lets a model recognise the patient (stain,
 * microscope day, cell morphology) instead of the disease, and inflates every validation metric.
 */
import { folderAt, type DatasetSpec } from '../datasetSpec.js';
import { MAX_EXAMPLE_PATHS, formatCount, listNames, type Finding } from './findings.js';

export function findLeakage(
  paths: string[],
  subjectOf: (path: string) => string | undefined,
  groups: DatasetSpec['groups'],
  splits: DatasetSpec['splits'],
): Finding | undefined {
  const partitions: { kind: 'split' | 'fold'; depth: number; names: Set<string> }[] = [];
  if (splits) partitions.push({ kind: 'split', depth: splits.depth, names: new Set(splits.splits.map((s) => s.name)) });
  if (groups) partitions.push({ kind: 'fold', depth: groups.depth, names: new Set(groups.groups.map((g) => g.name)) });
  if (partitions.length === 0) return undefined;

  const leaks: { subject: string; across: 'split' | 'fold'; where: Record<string, number>; example: string[] }[] = [];
  for (const partition of partitions) {
    const placements = new Map<string, Map<string, string[]>>();
    for (const path of paths) {
      const subject = subjectOf(path);
      const place = folderAt(path, partition.depth);
      if (subject === undefined || place === undefined || !partition.names.has(place)) continue;
      if (!placements.has(subject)) placements.set(subject, new Map());
      const byPlace = placements.get(subject)!;
      if (!byPlace.has(place)) byPlace.set(place, []);
      byPlace.get(place)!.push(path);
    }
    for (const [subject, byPlace] of placements) {
      if (byPlace.size < 2) continue;
      if (leaks.some((l) => l.subject === subject)) continue; // already reported across splits
      leaks.push({
        subject,
        across: partition.kind,
        where: Object.fromEntries([...byPlace].map(([place, ps]) => [place, ps.length])),
        example: [...byPlace.values()].map((ps) => ps[0]),
      });
    }
  }
  if (leaks.length === 0) return undefined;
  leaks.sort((a, b) => (a.subject < b.subject ? -1 : 1));
  const acrossSplits = leaks.some((l) => l.across === 'split');
  const first = leaks[0];
  return {
    code: 'subject-leakage',
    severity: 'error',
    message:
      `${formatCount(leaks.length)} subject${leaks.length === 1 ? ' appears' : 's appear'} in more than one ${acrossSplits ? 'split' : 'fold'} ` +
      `(e.g. ${first.subject} in ${listNames(Object.keys(first.where))}). Validation on them measures recognising the patient, not the disease. ` +
      'Use a subject-disjoint split.',
    evidence: {
      subjects: leaks.map(({ subject, across, where }) => ({ subject, across, where })),
      count: leaks.length,
      recommendedSplit: 'subject-disjoint',
    },
    paths: leaks.flatMap((l) => l.example).slice(0, MAX_EXAMPLE_PATHS),
  };
}
