/** Error codes of the TPM client (provisioning/tpm), device identity (provisioning/identity) and factory provisioning (provisioning/factory). */
export const TPM_CODES = {
  OUTPOST_E_TPM_SPEC: {
    area: 'tpm',
    summary: 'A TPM address is malformed; use /dev/tpmrm0, /dev/tpm0, device:<path> or swtpm:<host>:<port>.',
    input: true,
  },
  OUTPOST_E_TPM_TRANSPORT: {
    area: 'tpm',
    summary: 'The TPM could not be reached: the device node is missing or busy, permissions (group tss), swtpm not listening, or the connection closed mid-command.',
    input: false,
  },
  OUTPOST_E_TPM_TIMEOUT: { area: 'tpm', summary: 'The TPM did not answer a command within the timeout; details name the command.', input: false },
  OUTPOST_E_TPM_PROTOCOL: {
    area: 'tpm',
    summary: 'A TPM response was malformed (truncated, wrong size or tag, trailing bytes); details name the command.',
    input: false,
  },
  OUTPOST_E_TPM_COMMAND: {
    area: 'tpm',
    summary: 'The TPM refused a command; details carry the response code (rc, rcName) and which handle, session or parameter it names.',
    input: false,
  },
  OUTPOST_E_TPM_AUTH_FAIL: {
    area: 'tpm',
    summary: 'The TPM rejected an authorization value (TPM_RC_AUTH_FAIL or TPM_RC_BAD_AUTH); repeated failures on DA-protected objects lead to lockout.',
    input: false,
  },
  OUTPOST_E_TPM_LOCKOUT: {
    area: 'tpm',
    summary: 'The TPM is in dictionary-attack lockout (TPM_RC_LOCKOUT); wait for the recovery time or clear it with the lockout authorization.',
    input: false,
  },
  OUTPOST_E_TPM_OBJECT_MEMORY: {
    area: 'tpm',
    summary: 'The TPM has no room for another object or session (TPM_RC_OBJECT_MEMORY/SESSION_MEMORY): transient objects leaked without a resource manager.',
    input: false,
  },
  OUTPOST_E_TPM_HANDLE: { area: 'tpm', summary: 'A handle named in a command does not exist in the TPM (TPM_RC_HANDLE); details name the handle.', input: false },
  OUTPOST_E_TPM_NV_UNINITIALIZED: { area: 'tpm', summary: 'An NV index was read before it was ever written or incremented (TPM_RC_NV_UNINITIALIZED).', input: false },
  OUTPOST_E_TPM_NV_DEFINED: { area: 'tpm', summary: 'An NV index is already defined (TPM_RC_NV_DEFINED).', input: false },
  OUTPOST_E_TPM_POLICY_FAIL: {
    area: 'tpm',
    summary: 'A policy session did not satisfy the object\'s policy (TPM_RC_POLICY_FAIL, e.g. a PCR changed since sealing).',
    input: false,
  },
  OUTPOST_E_TPM_INTEGRITY: {
    area: 'tpm',
    summary: 'The TPM found an integrity check failed (TPM_RC_INTEGRITY): a key blob or credential made for another TPM or another key.',
    input: false,
  },
  OUTPOST_E_TPM_FAILURE: { area: 'tpm', summary: 'The TPM is in failure mode or not initialised (TPM_RC_FAILURE); it needs a reset.', input: false },
  OUTPOST_E_TPM_RETRY_EXHAUSTED: {
    area: 'tpm',
    summary: 'The TPM kept answering RETRY, YIELDED, TESTING or NV_RATE beyond the retry budget.',
    input: false,
  },
  OUTPOST_E_IDENTITY_TPM_STATE: {
    area: 'identity',
    summary: 'The TPM is in a state provisioning refuses: dictionary-attack lockout, an owner or endorsement password set by someone else, or a required algorithm missing.',
    input: false,
  },
  OUTPOST_E_IDENTITY_EK_CERT_MISSING: {
    area: 'identity',
    summary: 'No endorsement-key certificate was found in the TPM\'s NV indices that matches its EK; configure an EK allow-list to accept such units.',
    input: false,
  },
  OUTPOST_E_IDENTITY_EK_MISMATCH: { area: 'identity', summary: 'The EK certificate\'s public key is not the TPM\'s endorsement key.', input: false },
  OUTPOST_E_IDENTITY_EK_CHAIN: {
    area: 'identity',
    summary: 'The EK certificate does not chain to a configured vendor root (unknown issuer, bad signature, expired); details name the certificate.',
    input: false,
  },
  OUTPOST_E_IDENTITY_EK_NOT_ALLOWED: { area: 'identity', summary: 'The TPM\'s endorsement key is not on the configured EK allow-list.', input: false },
  OUTPOST_E_IDENTITY_TRUST_CONFIG: {
    area: 'identity',
    summary: 'Neither vendor EK roots nor an EK allow-list is configured, or a roots/allow-list file is unreadable or malformed.',
    input: true,
  },
  OUTPOST_E_IDENTITY_HANDLE_TAKEN: {
    area: 'identity',
    summary: 'A persistent handle Outpost needs holds another object (a different template, or a key not recorded as ours); nothing was overwritten.',
    input: false,
  },
  OUTPOST_E_IDENTITY_RECORD: {
    area: 'identity',
    summary: 'The identity files on the data partition are missing, unreadable or inconsistent (record, key blob, certificate).',
    input: false,
  },
  OUTPOST_E_IDENTITY_COUNTER: {
    area: 'identity',
    summary: 'The anti-rollback NV counter was asked to move backwards, too far at once, or its index holds something that is not a counter.',
    input: true,
  },
  OUTPOST_E_IDENTITY_SEAL: { area: 'identity', summary: 'A secret could not be sealed or unsealed (too long, wrong PCR state, foreign object).', input: false },
  OUTPOST_E_IDENTITY_TUNNEL: {
    area: 'identity',
    summary: 'The identity TLS tunnel could not start: bad listen/remote address, missing identity files, or the tpm2 OpenSSL provider is not installed.',
    input: true,
  },
  OUTPOST_E_FACTORY_CA: {
    area: 'factory',
    summary: 'The factory CA directory is missing, incomplete, already initialised (ca init) or its keys do not match its certificates.',
    input: true,
  },
  OUTPOST_E_FACTORY_SERIAL: { area: 'factory', summary: 'A serial number is empty or has characters other than A-Z a-z 0-9 . _ -.', input: true },
  OUTPOST_E_FACTORY_BATCH: { area: 'factory', summary: 'A batch file line is malformed; the message names the line.', input: true },
  OUTPOST_E_FACTORY_KEY_POLICY: {
    area: 'factory',
    summary: 'The device key presented to the CA does not have the required attributes (fixedTPM, fixedParent, sensitiveDataOrigin, sign, noDA, ECC P-256).',
    input: false,
  },
  OUTPOST_E_FACTORY_CHALLENGE: { area: 'factory', summary: 'A credential challenge is unknown, expired or already used.', input: false },
  OUTPOST_E_FACTORY_ACTIVATION: {
    area: 'factory',
    summary: 'The device did not prove that its key lives in the TPM holding the EK (wrong or missing activated secret).',
    input: false,
  },
  OUTPOST_E_FACTORY_CSR: { area: 'factory', summary: 'The certificate request is malformed, badly signed, or not for the activated device key.', input: false },
  OUTPOST_E_FACTORY_DUPLICATE: {
    area: 'factory',
    summary: 'The serial is already recorded with another TPM, or this TPM is already recorded under another serial.',
    input: false,
  },
  OUTPOST_E_FACTORY_LEDGER: { area: 'factory', summary: 'The manufacturing ledger could not be read or appended (permissions, disk full, corrupt line).', input: false },
} as const;
