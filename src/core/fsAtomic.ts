import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Writes atomically: a temporary file in the same folder (so the rename never crosses file systems) is
 * written and fsynced, then renamed over `file`. A crash or kill leaves either the old file or the new one,
 * never half of one — which is what lets a killed trainer's last checkpoint stay usable.
 * `durable: false` skips the fsyncs, for caches that check their own integrity when read.
 */
export async function writeFileAtomic(
  file: string,
  data: Uint8Array | string,
  { durable = true }: { durable?: boolean } = {},
): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const temporary = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const handle = await open(temporary, 'wx');
    try {
      await handle.writeFile(data);
      if (durable) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, file);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw keptPrevious(error as NodeJS.ErrnoException, file);
  }
  if (durable) await syncDirectory(dirname(file));
}

/** Makes the rename itself durable. Not possible on every platform (Windows cannot open folders), so best effort. */
async function syncDirectory(folder: string): Promise<void> {
  try {
    const handle = await open(folder, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // The data is already fsynced; only the directory entry's durability is left to the OS.
  }
}

/**
 * The error of a failed write, naming the file (a failed `write` names none) and that its previous version is
 * intact; `code` (ENOSPC, EACCES…) stays for callers that check it.
 */
function keptPrevious(error: NodeJS.ErrnoException, file: string): NodeJS.ErrnoException {
  const wrapped: NodeJS.ErrnoException = new Error(
    `Could not write ${file} (${error.message}); its previous version, if any, is unchanged.`,
    { cause: error },
  );
  wrapped.code = error.code;
  return wrapped;
}
