import { open, type FileHandle } from 'node:fs/promises';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { MAX_RESPONSE_SIZE, expectedResponseSize, type TpmTransport } from './transport.js';

/**
 * A TPM character device: /dev/tpmrm0 (kernel resource manager) or /dev/tpm0 (raw, exclusive).
 * One write() per command, then reads until the response's header size is in (a real device
 * returns it in one read; a pty bridge may split it).
 * Invariants: at most one command in flight; after a timeout or I/O error the file is closed
 * and the transport refuses further commands (the device state is unknown). A read blocked on a
 * hung device keeps one libuv thread until the device answers or goes away.
 */
export class DeviceTransport implements TpmTransport {
  readonly resourceManaged: boolean;
  readonly description: string;
  private broken: OutpostError | undefined;
  private busy = false;

  private constructor(
    private readonly path: string,
    private readonly fh: FileHandle,
  ) {
    this.description = path;
    this.resourceManaged = /tpmrm\d+$/.test(path);
  }

  static async open(path: string): Promise<DeviceTransport> {
    try {
      return new DeviceTransport(path, await open(path, 'r+'));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const hint =
        code === 'EBUSY'
          ? 'the TPM device is busy (another process, or tpm2-abrmd, holds /dev/tpm0; use /dev/tpmrm0)'
          : code === 'EACCES'
            ? 'permission denied on the TPM device (add the service user to group tss)'
            : 'cannot open the TPM device';
      throw new OutpostError('OUTPOST_E_TPM_TRANSPORT', hint, { cause: e, details: { tpm: path, errno: code } });
    }
  }

  async transmit(command: Buffer, timeoutMs: number): Promise<Buffer> {
    if (this.broken) throw this.broken;
    if (this.busy) throw new OutpostError('OUTPOST_E_TPM_TRANSPORT', 'a TPM command is already in flight on this transport', { details: { tpm: this.path } });
    this.busy = true;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new OutpostError('OUTPOST_E_TPM_TIMEOUT', 'the TPM device did not answer in time', { details: { tpm: this.path, timeoutMs } })), timeoutMs);
      });
      return await Promise.race([this.exchange(command), timeout]);
    } catch (e) {
      this.broken =
        e instanceof OutpostError ? e : new OutpostError('OUTPOST_E_TPM_TRANSPORT', 'I/O error on the TPM device', { cause: e, details: { tpm: this.path } });
      // not awaited: FileHandle.close waits for the blocked read, which returns only if the device ever answers
      void this.fh.close().catch(() => undefined);
      throw this.broken;
    } finally {
      clearTimeout(timer);
      this.busy = false;
    }
  }

  private async exchange(command: Buffer): Promise<Buffer> {
    const { bytesWritten } = await this.fh.write(command, 0, command.length, null);
    if (bytesWritten !== command.length) throw new OutpostError('OUTPOST_E_TPM_TRANSPORT', 'short write to the TPM device', { details: { tpm: this.path, bytesWritten } });
    const buf = Buffer.alloc(4096);
    const chunks: Buffer[] = [];
    let have = 0;
    for (;;) {
      const { bytesRead } = await this.fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) throw new OutpostError('OUTPOST_E_TPM_TRANSPORT', 'the TPM device returned end-of-file', { details: { tpm: this.path } });
      chunks.push(Buffer.from(buf.subarray(0, bytesRead)));
      have += bytesRead;
      const all = Buffer.concat(chunks, have);
      const size = expectedResponseSize(all);
      if (size === undefined) continue;
      if (size < 10 || size > MAX_RESPONSE_SIZE || have > size) {
        throw new OutpostError('OUTPOST_E_TPM_PROTOCOL', 'TPM response size does not match the bytes read', { details: { tpm: this.path, size, have } });
      }
      if (have === size) return all;
    }
  }

  async close(): Promise<void> {
    if (this.broken) return;
    this.broken = new OutpostError('OUTPOST_E_TPM_TRANSPORT', 'the TPM transport is closed', { details: { tpm: this.path } });
    await this.fh.close().catch(() => undefined);
  }
}
