import { spawn } from 'node:child_process';
import { open, stat } from 'node:fs/promises';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { writeFileAtomic } from '../atomic-file.js';
import type { BootloaderView } from './bootloader-view.js';

/** Serialises read-modify-write of boot state across the OTA processes (ota/flow/state-lock.ts). */
export interface EnvGuard {
  with<T>(fn: () => Promise<T>): Promise<T>;
}

/** No cross-process serialisation (tools that edit one file alone, unit tests). */
export const NO_GUARD: EnvGuard = { with: (fn) => fn() };

/** Resolves the bootloader's view of a file once, when first needed; null: no read-back. */
export type ViewFactory = (() => Promise<BootloaderView>) | null;

function envError(message: string, details: Record<string, unknown>, cause?: unknown): OutpostError {
  return new OutpostError('OUTPOST_E_OTA_BOOT_ENV', message, { details, ...(cause !== undefined ? { cause } : {}) });
}

/** `sync -f <file>`: syncfs(2) of the file system holding it (no Node binding exists). */
function syncfs(file: string): Promise<void> {
  return new Promise((resolve) => {
    const c = spawn('sync', ['-f', file], { stdio: 'ignore' });
    c.once('error', () => resolve());
    c.once('exit', () => resolve());
  });
}

/**
 * Writes a file a bootloader reads (grubenv, autoboot.txt) so that what the bootloader will read after a
 * reboot is `data`, and proves it. A file of the same size is rewritten in place and fdatasync'ed: its
 * clusters and directory entry stay where they are, as GRUB's own save_env does. (Replacing it by
 * rename, as before, left the FAT directory entry pointing at the old, freed clusters until Linux wrote
 * the inode back, up to 30 s later — a reboot or power cut in that window loses the write, see
 * docs/ota.md.) A new or resized file is replaced atomically and then fsync'ed once more, which writes its
 * FAT directory entry. Then the file is read back through `view` (the partition device, O_DIRECT) and
 * compared; a mismatch is flushed harder (fsync, syncfs) and read again, and still different is
 * OUTPOST_E_OTA_BOOT_ENV_UNVERIFIED: the caller must not report the switch as done.
 */
export async function writeBootFile(file: string, data: Buffer, view: BootloaderView | null): Promise<void> {
  const size = await stat(file).then((s) => s.size, () => -1);
  try {
    if (size === data.length) {
      const fh = await open(file, 'r+');
      try {
        const { bytesWritten } = await fh.write(data, 0, data.length, 0);
        if (bytesWritten !== data.length) throw envError(`short write to ${file}`, { file, bytesWritten });
        await fh.datasync();
      } finally {
        await fh.close();
      }
    } else {
      await writeFileAtomic(file, data);
      const fh = await open(file, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
  } catch (e) {
    if (e instanceof OutpostError) throw e;
    throw envError(`cannot write ${file}`, { file }, e);
  }
  if (view === null) return;
  let seen: Buffer | null = null;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      seen = await view.read();
    } catch (e) {
      if (attempt === 2) throw new OutpostError('OUTPOST_E_OTA_BOOT_ENV_UNVERIFIED', `cannot read ${file} back as the bootloader does`, { cause: e, details: { file, view: view.describe } });
      seen = null;
    }
    if (seen !== null && seen.equals(data)) return;
    if (attempt === 0) {
      const fh = await open(file, 'r');
      await fh.sync().finally(() => fh.close());
    } else if (attempt === 1) {
      await syncfs(file);
    }
  }
  throw new OutpostError('OUTPOST_E_OTA_BOOT_ENV_UNVERIFIED', `${file} reads back differently through ${view.describe} than it was written`, {
    details: { file, view: view.describe, expectedBytes: data.length, seenBytes: seen?.length ?? null },
  });
}
