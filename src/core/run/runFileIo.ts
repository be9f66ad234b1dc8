/** Reading and writing run.json: atomically, and refusing files of another schema or version. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../fsAtomic.js';
import { RUN_FILE, RUN_SCHEMA, RUN_SCHEMA_VERSION, type RunFile } from './runFile.js';

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
