/** Reading and writing run.json: atomically, and refusing files of another schema or version. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../fsAtomic.js';
import {
  RUN_FILE,
  RUN_SCHEMA,
  RUN_SCHEMA_VERSION,
  type CheckpointState,
  type RunFile,
  type RunProgress,
} from './runFile.js';

export async function writeRunFile(runDir: string, run: RunFile): Promise<void> {
  run.updatedAt = new Date().toISOString();
  await writeFileAtomic(join(runDir, RUN_FILE), JSON.stringify(run, null, 2) + '\n');
}

export async function readRunFile(runDir: string): Promise<RunFile> {
  const file = join(runDir, RUN_FILE);
  let parsed: RunFile;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new Error(`${file} is not a readable run file: ${(error as Error).message}`, { cause: error });
  }
  if (parsed.schema !== RUN_SCHEMA)
    throw new Error(`${file} is not a leukemia-audit run (schema ${String(parsed.schema)})`);
  if (parsed.version !== RUN_SCHEMA_VERSION)
    throw new Error(`${file} has run schema version ${parsed.version}; this version reads ${RUN_SCHEMA_VERSION}`);
  return parsed;
}

/**
 * Marks a run that its trainer can no longer mark (killed as stuck) as failed, with the reason. A run that
 * already ended keeps its status.
 */
export async function markRunFailed(runDir: string, error: string): Promise<void> {
  const run = await readRunFile(runDir);
  if (run.status !== 'running') return;
  run.status = 'failed';
  run.error = error;
  await writeRunFile(runDir, run);
}

/** The checkpoint's metadata entries (safetensors metadata is string → string). */
export function checkpointMetadata(epoch: number, progress: RunProgress): Record<string, string> {
  return { epoch: String(epoch), progress: JSON.stringify(progress) };
}

/** Reads and checks a checkpoint's metadata; the error names the file and what is wrong with it. */
export function readCheckpointMetadata(metadata: Record<string, string>, file: string): CheckpointState {
  const epoch = Number(metadata.epoch);
  if (metadata.epoch === undefined || !Number.isInteger(epoch) || epoch < 1)
    throw new Error(
      `${file} cannot be resumed: its metadata has no valid epoch (${JSON.stringify(metadata.epoch ?? null)}). Start a new run, or replace this one with --force.`,
    );
  if (metadata.progress === undefined) return { epoch };
  let progress: RunProgress;
  try {
    progress = JSON.parse(metadata.progress);
  } catch (error) {
    throw new Error(`${file} cannot be resumed: its progress metadata is not JSON (${(error as Error).message}).`, {
      cause: error,
    });
  }
  const epochs = Array.isArray(progress?.history) ? progress.history.map((h) => h?.epoch) : undefined;
  const contiguous = epochs !== undefined && epochs.length === epoch && epochs.every((e, i) => e === i + 1);
  const best = progress?.bestEpoch;
  if (!contiguous || !(best === null || (Number.isInteger(best) && best >= 1 && best <= epoch)))
    throw new Error(
      `${file} cannot be resumed: its progress metadata does not describe epochs 1 to ${epoch} (history ${JSON.stringify(epochs)}, best epoch ${JSON.stringify(best)}).`,
    );
  return { epoch, progress };
}
