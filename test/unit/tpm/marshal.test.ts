import { describe, expect, it } from 'vitest';
import { TPM_ALG, TPM_RH, TPM_SE, TPM_SU } from '../../../provisioning/tpm/constants.js';
import { decodeResponse, encodeCommand, passwordAuth, policyAuth } from '../../../provisioning/tpm/command.js';
import { Tpm2 } from '../../../provisioning/tpm/commands.js';
import { fromHex, hex } from '../../../provisioning/tpm/marshal.js';
import { objectName, parsePublic } from '../../../provisioning/tpm/structures.js';
import { DEVICE_KEY_TEMPLATE, EK_RSA2048_TEMPLATE, SRK_ECC_TEMPLATE } from '../../../provisioning/tpm/templates.js';

/**
 * Golden vectors: command bytes captured from tpm2-tools 5.4 talking to swtpm 0.7.1 (socat -x between
 * them), and from the field notes' working client. Our encoder must produce them byte for byte.
 */
const enc = (c: Parameters<typeof encodeCommand>[0]) => hex(encodeCommand(c));
const h = (s: string) => s.replace(/[\s|]/g, '');

const P256_SIGN = '0023000b00040072000000100018000b00030010 0000 0000';

describe('command encoding (golden vectors)', () => {
  it('Startup, Shutdown, GetRandom', () => {
    expect(enc(Tpm2.startup(TPM_SU.CLEAR))).toBe('80010000000c000001440000');
    expect(enc(Tpm2.shutdown(TPM_SU.STATE))).toBe('80010000000c000001450001');
    expect(enc(Tpm2.getRandom(8))).toBe('80010000000c0000017b0008');
  });

  it('GetCapability (tpm2-tools: properties from 0x100, handles from 0x80000000)', () => {
    expect(enc(Tpm2.getCapabilityProperties(0x100, 0x7f))).toBe('8001000000160000017a0000000600000100 0000007f'.replace(/ /g, ''));
    expect(enc(Tpm2.getCapabilityHandles(0x80000000, 0xfe))).toBe('8001000000160000017a0000000180000000000000fe');
  });

  it('ReadPublic, NV_ReadPublic, FlushContext, PolicyGetDigest', () => {
    expect(enc(Tpm2.readPublic(0x81010001))).toBe('80010000000e0000017381010001');
    expect(enc(Tpm2.nvReadPublic(0x01c00002))).toBe('80010000000e0000016901c00002');
    expect(enc(Tpm2.flushContext(0x80000000))).toBe('80010000000e0000016580000000');
    expect(enc(Tpm2.policyGetDigest(0x03000000))).toBe('80010000000e0000018903000000');
  });

  it('PCR_Read and PolicyPCR on sha256:23', () => {
    expect(enc(Tpm2.pcrRead([{ hash: TPM_ALG.SHA256, pcrs: [23] }]))).toBe('8001000000140000017e00000001000b03000080');
    expect(enc(Tpm2.pcrRead([{ hash: TPM_ALG.SHA256, pcrs: [0, 1, 2, 23] }]))).toBe('8001000000140000017e00000001000b03070080');
    const pcrDigest = fromHex('66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925');
    expect(enc(Tpm2.policyPCR(0x03000000, pcrDigest, [{ hash: TPM_ALG.SHA256, pcrs: [23] }]))).toBe(
      h('80010000003a0000017f 03000000 0020 66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925 00000001 000b 03 000080'),
    );
  });

  it('StartAuthSession (unbound, unsalted policy session, SHA-256)', () => {
    const nonce = fromHex('0118a0b394ddbfeb3b07f51738ad549d50a78829a88ee08a013632a8bd4f72ff');
    expect(enc(Tpm2.startAuthSession({ nonceCaller: nonce, type: TPM_SE.POLICY }))).toBe(
      h(`80010000003b00000176 40000007 40000007 0020 ${hex(nonce)} 0000 01 0010 000b`),
    );
  });

  it('CreatePrimary of an ECC P-256 signing key with a password session', () => {
    const template = { ...DEVICE_KEY_TEMPLATE, attributes: 0x00040072 };
    expect(enc(Tpm2.createPrimary(TPM_RH.OWNER, passwordAuth(), template))).toBe(
      h(`80020000004100000131 40000001 00000009 40000009 0000 01 0000 0004 0000 0000 0018 ${P256_SIGN} 0000 00000000`),
    );
  });

  it('Sign with ECDSA/SHA-256 and the null hash-check ticket', () => {
    const digest = Buffer.alloc(32, 0xab);
    expect(enc(Tpm2.sign(0x80000000, passwordAuth(), digest))).toBe(
      h(`8002000000490000015d 80000000 00000009 40000009 0000 01 0000 0020 ${hex(digest)} 0018 000b 8024 40000007 0000`),
    );
  });

  it('NV_DefineSpace of a counter, NV_Increment, NV_Read, EvictControl', () => {
    const pub = { nvIndex: 0x01000100, nameAlg: TPM_ALG.SHA256, attributes: 0x02020012, authPolicy: Buffer.alloc(0), dataSize: 8 };
    // the parameter area matches tpm2_nvdefine's: auth (empty), TPM2B_NV_PUBLIC
    expect(enc(Tpm2.nvDefineSpace(TPM_RH.OWNER, passwordAuth(), new Uint8Array(0), pub))).toBe(
      h('80020000002d0000012a 40000001 00000009 40000009 0000 01 0000 0000 000e 01000100 000b 02020012 0000 0008'),
    );
    expect(enc(Tpm2.nvIncrement(TPM_RH.OWNER, 0x01000100, passwordAuth()))).toBe(h('80020000001f00000134 40000001 01000100 00000009 40000009 0000 01 0000'));
    expect(enc(Tpm2.nvRead(0x01000100, 0x01000100, passwordAuth(), 8, 0))).toBe(h('8002000000230000014e 01000100 01000100 00000009 40000009 0000 01 0000 0008 0000'));
    expect(enc(Tpm2.evictControl(TPM_RH.OWNER, passwordAuth(), 0x80000000, 0x81000001))).toBe(
      h('80020000002300000120 40000001 80000000 00000009 40000009 0000 01 0000 81000001'),
    );
  });

  it('ActivateCredential with a password and a policy session; PolicySecret(endorsement)', () => {
    const c = Tpm2.activateCredential(0x81000002, 0x81010001, [passwordAuth(), policyAuth(0x03000000)], Buffer.from('aa', 'hex'), Buffer.from('bbcc', 'hex'));
    expect(hex(encodeCommand(c))).toBe(h('80020000002f00000147 81000002 81010001 00000012 40000009 0000 01 0000 03000000 0000 00 0000 0001 aa 0002 bbcc'));
    expect(enc(Tpm2.policySecret(TPM_RH.ENDORSEMENT, passwordAuth(), 0x03000000))).toBe(
      h('80020000002900000151 4000000b 03000000 00000009 40000009 0000 01 0000 0000 0000 0000 00000000'),
    );
  });

  it('the frozen templates marshal to their pinned bytes', () => {
    const t = (p: Parameters<typeof Tpm2.createPrimary>[2]) => hex(encodeCommand(Tpm2.createPrimary(TPM_RH.OWNER, passwordAuth(), p))).slice(2 * 35, -12);
    expect(t(SRK_ECC_TEMPLATE)).toBe(h(`0023 000b 00030472 0000 0006 0080 0043 0010 0003 0010 0020 ${'00'.repeat(32)} 0020 ${'00'.repeat(32)}`));
    expect(t(DEVICE_KEY_TEMPLATE)).toBe(h('0023 000b 00040472 0000 0010 0018 000b 0003 0010 0000 0000'));
    expect(t(EK_RSA2048_TEMPLATE)).toBe(
      h(`0001 000b 000300b2 0020 837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa 0006 0080 0043 0010 0800 00000000 0100 ${'00'.repeat(256)}`),
    );
  });
});

describe('response decoding', () => {
  it('parses ReadPublic of a primary key captured from swtpm and recomputes its Name', () => {
    const res = fromHex(
      '8001000000ac0000000000580023000b00040072000000100018000b0003001000200bd4fc176e9fcd7fe563795663ead345b305de5702ef4812fe4fe20382ee880f002076854b1daa0469d64594050f40a8e9280f0f43b051751d989fc55008922f69950022000ba1d8f8c6996c9e1cf735369e6fa09ba3abd28ecd019089854fd113719d65e31c0022000b69ec56f176d8eccd24bc8e5363a230f39ece755efe8470e1a082a3c5fbd83cae',
    );
    const out = decodeResponse(Tpm2.readPublic(0x80000000), res);
    expect(hex(out.name)).toBe('000ba1d8f8c6996c9e1cf735369e6fa09ba3abd28ecd019089854fd113719d65e31c');
    expect(hex(objectName(out.raw))).toBe(hex(out.name));
    const p = parsePublic(out.raw);
    expect(p.type).toBe(TPM_ALG.ECC);
    expect(p.attributes).toBe(0x00040072);
  });

  it('parses CreatePrimary (tpm2-tools capture) with its handle, skipping creation data and the session area', () => {
    const res = fromHex(
      '80020000017800000000800000000000012100580023000b00040072000000100018000b0003001000200bd4fc176e9fcd7fe563795663ead345b305de5702ef4812fe4fe20382ee880f002076854b1daa0469d64594050f40a8e9280f0f43b051751d989fc55008922f69950037000000000020e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855010010000440000001000440000001000000205da041bac0ee3135aebb0cadfba497c6a1877fae832dd3d1f8f7a871b825e85480214000000100405b4cf950a892b595535167df3ac337ef4c2b4e5f9fbb527fce33e4a02158a442c7d06b671d16d4e79a221250c3ec6b3bf8b3171fec500a0f7c302d581f5ee6b50022000ba1d8f8c6996c9e1cf735369e6fa09ba3abd28ecd019089854fd113719d65e31c002095660b72c5394e6764ee2f0768b65926c653944d62c1ff011cd5b4d9dea5df020100208f0db38aaf8ce847cd7b35c7fd716eb2da8d1fbd62c2a7d94a45b64aa6b43cb1',
    );
    // captured from tpm2_createprimary (an HMAC session: the response auth carries a nonce and an HMAC)
    const out = decodeResponse(Tpm2.createPrimary(TPM_RH.OWNER, passwordAuth(), DEVICE_KEY_TEMPLATE), res);
    expect(out.handle).toBe(0x80000000);
    expect(hex(out.name)).toBe('000ba1d8f8c6996c9e1cf735369e6fa09ba3abd28ecd019089854fd113719d65e31c');
  });

  it('raises named errors for error responses and protocol errors for malformed ones', () => {
    expect(() => decodeResponse(Tpm2.getRandom(8), fromHex('80010000000a0000018b'))).toThrow(expect.objectContaining({ code: 'OUTPOST_E_TPM_HANDLE' }));
    expect(() => decodeResponse(Tpm2.getRandom(8), fromHex('80010000000b00000000'))).toThrow(expect.objectContaining({ code: 'OUTPOST_E_TPM_PROTOCOL' }));
    expect(() => decodeResponse(Tpm2.getRandom(8), fromHex('80010000000e000000000008abcd'))).toThrow(expect.objectContaining({ code: 'OUTPOST_E_TPM_PROTOCOL' }));
    expect(() => decodeResponse(Tpm2.getRandom(2), fromHex('80010000000f000000000002abcdef'))).toThrow(expect.objectContaining({ code: 'OUTPOST_E_TPM_PROTOCOL' }));
    expect(hex(decodeResponse(Tpm2.getRandom(8), fromHex('800100000014000000000008c695d8cffcadf508')))).toBe('c695d8cffcadf508');
  });
});
