/** How TpmClient reaches a TPM: one command in, one response out. */
export interface TpmTransport {
  /** For logs and errors: "/dev/tpmrm0", "swtpm 127.0.0.1:2321". */
  readonly description: string;
  /**
   * True when a resource manager sits between us and the TPM (/dev/tpmrm0, tpm2-abrmd): it
   * virtualises handles and flushes our transient objects and sessions when we disconnect.
   * False for /dev/tpm0 and a bare swtpm socket, where the client must flush strictly.
   */
  readonly resourceManaged: boolean;
  /** Sends one marshalled command and resolves with the complete response. One at a time. */
  transmit(command: Buffer, timeoutMs: number): Promise<Buffer>;
  close(): Promise<void>;
}

/** Extracts the response size from a partial buffer once the header is in, or undefined. */
export function expectedResponseSize(buf: Buffer): number | undefined {
  return buf.length >= 6 ? buf.readUInt32BE(2) : undefined;
}

/** Responses above this are refused: no TPM response is larger (MAX_RESPONSE_SIZE is 4096 on every known part). */
export const MAX_RESPONSE_SIZE = 64 * 1024;
