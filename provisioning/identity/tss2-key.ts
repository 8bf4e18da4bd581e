import { DerError, children, decodeOid, der, integerBytes, pemDecodeAll, pemEncode, readTlv } from '../x509/der.js';

/**
 * The "TSS2 PRIVATE KEY" file (OID 2.23.133.10.1.3, loadable key) that tpm2-openssl reads:
 * the key's TPM2B_PUBLIC and TPM2B_PRIVATE (wrapped by its parent, useless on any other TPM)
 * and the parent's persistent handle.
 */
export interface Tss2Key {
  readonly parent: number;
  readonly emptyAuth: boolean;
  /** TPM2B_PUBLIC contents (the TPMT_PUBLIC bytes). */
  readonly publicArea: Buffer;
  /** TPM2B_PRIVATE contents. */
  readonly privateBlob: Buffer;
}

const LOADABLE_KEY = '2.23.133.10.1.3';

function tpm2b(b: Buffer): Buffer {
  const h = Buffer.alloc(2);
  h.writeUInt16BE(b.length);
  return Buffer.concat([h, b]);
}

export function encodeTss2Key(k: Tss2Key): string {
  const body = der.seq(
    der.oid(LOADABLE_KEY),
    ...(k.emptyAuth ? [der.explicit(0, der.bool(true))] : []),
    der.int(k.parent),
    der.octet(tpm2b(k.publicArea)),
    der.octet(tpm2b(k.privateBlob)),
  );
  return pemEncode('TSS2 PRIVATE KEY', body);
}

function unwrap(b: Buffer, what: string): Buffer {
  if (b.length < 2 || b.readUInt16BE(0) !== b.length - 2) throw new DerError(`${what} is not a TPM2B`);
  return Buffer.from(b.subarray(2));
}

export function decodeTss2Key(pem: string): Tss2Key {
  const [body] = pemDecodeAll(pem, 'TSS2 PRIVATE KEY');
  if (body === undefined) throw new DerError('no TSS2 PRIVATE KEY block');
  const parts = children(readTlv(body));
  const [type, ...rest] = parts;
  if (type === undefined || decodeOid(type.content) !== LOADABLE_KEY) throw new DerError('not a loadable TSS2 key');
  let emptyAuth = false;
  const tail = rest.filter((p) => {
    if (p.tag === 0xa0) emptyAuth = children(p)[0]?.content[0] === 0xff;
    return (p.tag & 0xe0) !== 0xa0;
  });
  const [parent, pub, priv] = tail;
  if (parent === undefined || pub === undefined || priv === undefined) throw new DerError('TSS2 key lacks parent, public or private part');
  return {
    emptyAuth,
    parent: Number.parseInt(integerBytes(parent.content).toString('hex') || '0', 16),
    publicArea: unwrap(pub.content, 'public part'),
    privateBlob: unwrap(priv.content, 'private part'),
  };
}
