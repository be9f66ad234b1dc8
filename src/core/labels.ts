/**
 * One labeler for every label source, so the audit, training and the editor read labels the same way.
 */
import type { CsvLabelTable } from './audit/csvLabels.js';
import { fileNameOf, fileNameTokens, folderAt, tokenAt, type LabelSource } from './datasetSpec.js';

export type Labeler = (path: string) => string | undefined;

export function labelerFor(source: LabelSource, tables: CsvLabelTable[] = []): Labeler {
  switch (source.kind) {
    case 'folder':
      return (path) => {
        const name = folderAt(path, source.depth);
        return name === undefined ? undefined : (source.valueToClass?.[name] ?? name);
      };
    case 'filename':
      return (path) => {
        const token = tokenAt(fileNameTokens(fileNameOf(path)), source.tokenIndex);
        return token === undefined ? undefined : source.valueToClass[token];
      };
    case 'csv': {
      const table = tables.find((t) => t.file === source.file && t.labelColumn === source.labelColumn);
      if (!table) return () => undefined;
      return (path) => {
        const raw = table.labelByPath.get(path);
        return raw === undefined ? undefined : source.valueToClass[raw];
      };
    }
  }
}

/** Sources in priority order: the first that labels an image wins. */
export function combinedLabeler(sources: LabelSource[], tables: CsvLabelTable[] = []): Labeler {
  const labelers = sources.map((source) => labelerFor(source, tables));
  return (path) => {
    for (const labeler of labelers) {
      const label = labeler(path);
      if (label !== undefined) return label;
    }
    return undefined;
  };
}
