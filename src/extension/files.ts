/** Small file-system questions the extension asks in several places. */
import { stat } from 'node:fs/promises';

export async function isDirectory(folder: string): Promise<boolean> {
  try {
    return (await stat(folder)).isDirectory();
  } catch {
    return false;
  }
}
