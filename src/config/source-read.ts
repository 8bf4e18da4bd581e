import { constants } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';

/** Largest configuration file read (main file or drop-in); a larger one is refused before parsing. */
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024;
/** Largest sum of the sizes of the main file and its drop-ins. */
export const MAX_CONFIG_TOTAL_BYTES = 4 * 1024 * 1024;
/** Most drop-ins read from config.d/. */
export const MAX_DROP_INS = 256;

/**
 * Which names in config.d/ are drop-ins: `*.yaml`, `*.yml`, `*.json`, not starting with a dot.
 * Editor files stay out: `.#x.yaml` (Emacs lock), `.x.yaml.swp` (Vim), `x.yaml~`, `#x.yaml#`, hidden files.
 */
export const DROP_IN_NAME = /^[^.].*\.(ya?ml|json)$/;

/** What reading a configuration file gave: its bytes, or why there are none. */
export type FileRead = { readonly kind: 'bytes'; readonly bytes: Uint8Array } | { readonly kind: 'too-large'; readonly size: number } | { readonly kind: 'not-a-file'; readonly what: string };

/** What is at a path (for checks of gateway.dataDir that change nothing). */
export type PathKind = 'dir' | 'file' | 'other' | null;

/** File access used by the loader; injected so tests and tools can load from memory. */
export interface ConfigFiles {
  /** A regular file's bytes if it holds at most `limit`; throws (with an errno `code`) when it cannot be opened. */
  read(file: string, limit: number): Promise<FileRead>;
  /** Names in a directory; an absent directory yields []. */
  list(dir: string): Promise<string[]>;
  /** What is at `p` (following symlinks), or null when nothing is. */
  kind(p: string): Promise<PathKind>;
}

function describeMode(mode: { isDirectory(): boolean; isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isSocket(): boolean }): string {
  if (mode.isDirectory()) return 'a directory';
  if (mode.isFIFO()) return 'a named pipe';
  if (mode.isCharacterDevice()) return 'a character device';
  if (mode.isBlockDevice()) return 'a block device';
  if (mode.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * The real file system. Files are opened non-blocking (a named pipe must not hang the loader) and
 * checked with fstat before any byte is read: only regular files are read, and only up to the limit.
 */
export const nodeConfigFiles: ConfigFiles = {
  read: async (file, limit) => {
    const fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
    try {
      const st = await fh.stat();
      if (!st.isFile()) return { kind: 'not-a-file', what: describeMode(st) };
      if (st.size > limit) return { kind: 'too-large', size: st.size };
      // Read until end of file but never past limit + 1 bytes (the file may grow, /proc files say size 0).
      const chunks: Buffer[] = [];
      let got = 0;
      for (let i = 0; got <= limit && i < limit / 4096 + 2; i++) {
        const chunk = Buffer.alloc(Math.min(64 * 1024, limit + 1 - got));
        const { bytesRead } = await fh.read(chunk, 0, chunk.length, null);
        if (bytesRead === 0) break;
        chunks.push(chunk.subarray(0, bytesRead));
        got += bytesRead;
      }
      if (got > limit) return { kind: 'too-large', size: Math.max(got, st.size) };
      return { kind: 'bytes', bytes: Buffer.concat(chunks, got) };
    } finally {
      await fh.close();
    }
  },
  list: async (dir) => {
    try {
      return await readdir(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
  },
  kind: async (p) => {
    try {
      const st = await stat(p);
      return st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // ENOTDIR: a component above is a file, so nothing is at `p` itself.
      if (code === 'ENOENT' || code === 'ENOTDIR') return null;
      throw e;
    }
  },
};
