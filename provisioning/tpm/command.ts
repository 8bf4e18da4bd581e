import { OutpostError } from '../../src/errors/outpost-error.js';
import { TPM_RH, TPM_ST, TPMA_SESSION } from './constants.js';
import { TpmReader, TpmWriter } from './marshal.js';
import { tpmRcError } from './rc.js';

/** One TPMS_AUTH_COMMAND: a password, or an (unbound, unsalted) policy session. */
export interface AuthCommand {
  readonly sessionHandle: number;
  readonly nonce: Uint8Array;
  readonly attributes: number;
  readonly hmac: Uint8Array;
}

/** Password authorization (TPM_RS_PW); the empty password by default. continueSession is set, as tpm2-tss does. */
export function passwordAuth(password: Uint8Array = new Uint8Array(0)): AuthCommand {
  return { sessionHandle: TPM_RH.PW, nonce: new Uint8Array(0), attributes: TPMA_SESSION.continueSession, hmac: password };
}

/** A policy session used as authorization; without continueSession the TPM flushes it after the command. */
export function policyAuth(sessionHandle: number, continueSession = false): AuthCommand {
  return { sessionHandle, nonce: new Uint8Array(0), attributes: continueSession ? TPMA_SESSION.continueSession : 0, hmac: new Uint8Array(0) };
}

/**
 * A TPM command ready to marshal, with the parser of its response parameters.
 * Invariants: `sessions` is empty exactly when the tag is TPM_ST_NO_SESSIONS; `responseHandles`
 * is the number of handles the response carries before its parameters.
 */
export interface TpmCommand<R> {
  readonly code: number;
  readonly name: string;
  readonly handles: readonly number[];
  readonly sessions: readonly AuthCommand[];
  readonly params: Uint8Array;
  readonly responseHandles: number;
  parse(params: TpmReader, handles: readonly number[]): R;
}

export function encodeCommand(c: TpmCommand<unknown>): Buffer {
  const w = new TpmWriter(64 + c.params.length);
  w.u16(c.sessions.length > 0 ? TPM_ST.SESSIONS : TPM_ST.NO_SESSIONS).u32(0).u32(c.code);
  for (const h of c.handles) w.u32(h);
  if (c.sessions.length > 0) {
    const a = new TpmWriter();
    for (const s of c.sessions) a.u32(s.sessionHandle).tpm2b(s.nonce).u8(s.attributes).tpm2b(s.hmac);
    w.u32(a.length).bytes(a.toBuffer());
  }
  w.bytes(c.params);
  const out = w.toBuffer();
  out.writeUInt32BE(out.length, 2);
  return out;
}

/** Response code of a raw response, after checking its header. */
export function responseCode(name: string, res: Buffer): number {
  if (res.length < 10) throw new OutpostError('OUTPOST_E_TPM_PROTOCOL', 'TPM response is shorter than its header', { details: { command: name, length: res.length } });
  const size = res.readUInt32BE(2);
  if (size !== res.length) throw new OutpostError('OUTPOST_E_TPM_PROTOCOL', 'TPM response size field does not match its length', { details: { command: name, size, length: res.length } });
  return res.readUInt32BE(6);
}

/** Parses a successful response; a non-zero rc raises the named OutpostError. */
export function decodeResponse<R>(c: TpmCommand<R>, res: Buffer): R {
  const rc = responseCode(c.name, res);
  if (rc !== 0) throw tpmRcError(rc, c.name);
  const tag = res.readUInt16BE(0);
  const expected = c.sessions.length > 0 ? TPM_ST.SESSIONS : TPM_ST.NO_SESSIONS;
  if (tag !== expected) throw new OutpostError('OUTPOST_E_TPM_PROTOCOL', 'TPM response tag does not match the command tag', { details: { command: c.name, tag, expected } });
  const r = new TpmReader(res.subarray(10), c.name);
  const handles: number[] = [];
  for (let i = 0; i < c.responseHandles; i++) handles.push(r.u32());
  if (c.sessions.length === 0) {
    const v = c.parse(r, handles);
    r.end();
    return v;
  }
  const paramSize = r.u32();
  const params = new TpmReader(r.bytes(paramSize), c.name);
  const v = c.parse(params, handles);
  params.end();
  for (let i = 0; i < c.sessions.length; i++) {
    r.tpm2b(); // nonceTPM
    r.u8(); // session attributes
    r.tpm2b(); // hmac
  }
  r.end();
  return v;
}

/** Builds a command from its parts; `params` is written by `fill`. */
export function command<R>(
  code: number,
  name: string,
  parts: { handles?: readonly number[]; sessions?: readonly AuthCommand[]; responseHandles?: number; params?: (w: TpmWriter) => void },
  parse: (r: TpmReader, handles: readonly number[]) => R,
): TpmCommand<R> {
  const w = new TpmWriter();
  parts.params?.(w);
  return { code, name, handles: parts.handles ?? [], sessions: parts.sessions ?? [], responseHandles: parts.responseHandles ?? 0, params: w.toBuffer(), parse };
}

export const noResult = (): void => undefined;
