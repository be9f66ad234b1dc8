/**
 * Owning a run folder: create it exclusively (two trainings started in the same second get two folders),
 * hold a lock while training (a second trainer on the same folder is refused, naming the first one's pid),
 * refuse to overwrite a finished run by accident, and clear what a killed trainer left behind.
 */
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { CHECKPOINT_FILE, MODEL_FILE, RUN_FILE } from './runFile.js';

export const LOCK_FILE = '.lock';

/** Locks this process holds (trainings run in-process too: the CLI, tests). */
const heldHere = new Set<string>();

/** Files a trainer writes under its own pid: the frozen prefix's features and atomic writes in flight. */
const LEFTOVER = /^(?:\.features-(\d+)\.f32|\..+\.(\d+)\.[0-9a-f]+\.tmp)$/;

export class RunFolderError extends Error {}

/**
 * Creates `<parent>/<name>`, or `<name>-2`, `<name>-3`… when it exists, with a non-recursive mkdir so that
 * exactly one caller gets each folder.
 */
export async function createRunFolder(parent: string, name: string): Promise<string> {
  await mkdir(parent, { recursive: true });
  for (let attempt = 1; ; attempt++) {
    const folder = join(parent, attempt === 1 ? name : `${name}-${attempt}`);
    try {
      await mkdir(folder);
      return folder;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 1000) throw error;
    }
  }
}

export interface OutFolderOptions {
  resume: boolean;
  force: boolean;
}

/**
 * The folder named by `--out`: created if missing; an existing run is continued with `resume`, replaced with
 * `force` (its run files are removed once the lock is held, see `clearRun`), and refused otherwise.
 */
export async function openOutFolder(folder: string, options: OutFolderOptions): Promise<void> {
  if (!options.resume && !options.force && existsSync(join(folder, RUN_FILE)))
    throw new RunFolderError(
      `${folder} already holds a run (${RUN_FILE}); pass --resume to continue it or --force to replace it.`,
    );
  await mkdir(folder, { recursive: true });
}

/** Removes the run files of a replaced run, so none of them can be mistaken for the new run's. */
export async function clearRun(folder: string): Promise<void> {
  for (const name of [RUN_FILE, MODEL_FILE, CHECKPOINT_FILE, 'explanations'])
    await rm(join(folder, name), { recursive: true, force: true });
}

export interface ClaimedRunFolder {
  runDir: string;
  /** Folders this call made, innermost (the run folder) first: what to remove when the run never starts. */
  made: string[];
  lock: RunLock;
  /** Leftovers of dead trainers that were removed, relative to the run folder. */
  removed: string[];
}

export interface ClaimOptions extends OutFolderOptions {
  /** `--out`: this folder exactly. */
  out?: string;
  /** Otherwise a new folder `<runsFolder>/<name>` (suffixed when taken). */
  runsFolder: string;
  name: string;
}

/**
 * The folder a training writes to, locked for it and cleared of what killed trainers left. On `force`, the
 * replaced run's files are removed only once the lock is held, so a live training's files are never touched.
 */
export async function claimRunFolder(options: ClaimOptions): Promise<ClaimedRunFolder> {
  let runDir: string;
  const made: string[] = [];
  if (options.out) {
    if (!existsSync(options.out)) made.push(options.out);
    await openOutFolder(options.out, options);
    runDir = options.out;
  } else {
    const parentExisted = existsSync(options.runsFolder);
    runDir = await createRunFolder(options.runsFolder, options.name);
    made.push(runDir);
    if (!parentExisted) made.push(options.runsFolder);
  }
  const lock = await acquireRunLock(runDir);
  try {
    if (options.force && !options.resume) await clearRun(runDir);
    return { runDir, made, lock, removed: await removeLeftovers(runDir) };
  } catch (error) {
    await lock.release();
    throw error;
  }
}

/** A held lock; `release` removes it (only if it is still ours). */
export interface RunLock {
  readonly file: string;
  release(): Promise<void>;
}

/**
 * Takes `<folder>/.lock` for this process. A lock whose pid is alive is refused with a message naming it; one
 * left by a dead process (a killed trainer) is taken over.
 */
export async function acquireRunLock(folder: string): Promise<RunLock> {
  const file = join(folder, LOCK_FILE);
  const pid = process.pid;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const handle = await open(file, 'wx');
      try {
        await handle.writeFile(`${pid}\n`);
      } finally {
        await handle.close();
      }
      heldHere.add(file);
      return {
        file,
        release: async () => {
          heldHere.delete(file);
          if ((await lockOwner(file)) === pid) await unlink(file).catch(() => undefined);
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = await lockOwner(file);
    // Our own pid: a training in this process holds it, or a killed process with the pid we now have left it.
    const held = owner === pid ? heldHere.has(file) : owner !== undefined && isAlive(owner);
    if (held)
      throw new RunFolderError(
        `${folder} is in use by another training (pid ${owner}); wait for it to end or cancel it.`,
      );
    // Dead, unreadable or our own: a lock nobody holds. Removing it races only with another taker, and then
    // exactly one of the two wins the exclusive create above.
    await unlink(file).catch(() => undefined);
  }
  throw new RunFolderError(`Could not take the lock ${file}: another process keeps replacing it.`);
}

async function lockOwner(file: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(file, 'utf8')).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a process with this pid exists (EPERM: it exists but belongs to someone else). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Deletes feature files and unfinished atomic writes of trainers that are no longer running. Only names this
 * program writes, only dead pids: a live trainer's files, and anything else in the folder, are left alone.
 */
export async function removeLeftovers(folder: string): Promise<string[]> {
  const removed: string[] = [];
  for (const sub of ['', 'explanations']) {
    const names = await readdir(join(folder, sub)).catch(() => [] as string[]);
    for (const name of names) {
      const match = LEFTOVER.exec(name);
      if (!match) continue;
      const pid = Number(match[1] ?? match[2]);
      if (pid === process.pid || isAlive(pid)) continue;
      await rm(join(folder, sub, name), { force: true });
      removed.push(join(sub, name));
    }
  }
  return removed;
}
